// Command swarmbackup-volume-plugin is the managed Docker plugin `swarmbackup`: the volume
// driver and the agent of swarmbackup on each node.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/docker/go-plugins-helpers/sdk"
	"github.com/docker/go-plugins-helpers/volume"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/buildinfo"
	"github.com/swarmbackup/swarmbackup/shared/notify"
	"github.com/swarmbackup/swarmbackup/volume-plugin/agent"
	"github.com/swarmbackup/swarmbackup/volume-plugin/driver"
	"github.com/swarmbackup/swarmbackup/volume-plugin/metrics"
	"github.com/swarmbackup/swarmbackup/volume-plugin/quiesce"
)

// Paths inside the plugin's rootfs, as config.json declares them.
const (
	dataDir      = "/data"
	mountDir     = "/mnt/volumes"
	socketDir    = "/run/docker/plugins"
	secretsDir   = "/etc/swarmbackup"
	swarmDir     = "/swarm" // the engine's swarm directory, read-only
	engineSocket = "/run/docker.sock"
)

// Collect garbage before the heap doubles: the plugin shares every node with its workloads.
// Below the 192 MiB the plugin is given: the page cache it fills (the index's mapped table,
// files it reads) counts against that limit too.
const memoryLimit = 160 << 20

func main() {
	log := newLogger(os.Getenv("SWARMBACKUP_LOG_LEVEL"))
	if err := run(log); err != nil {
		log.Error("plugin stopped", "err", err)
		os.Exit(1)
	}
}

// interval reads a duration setting of at least a second: SWARMBACKUP_HEARTBEAT (how often
// the agent reports to the repository; `status` calls it stale after three missed reports)
// or SWARMBACKUP_POLL (how often it looks for set requests: one small read each time).
func interval(name string, fallback time.Duration, log *slog.Logger) time.Duration {
	setting := os.Getenv(name)
	if setting == "" {
		return fallback
	}
	d, err := time.ParseDuration(setting)
	if err != nil || d < time.Second {
		log.Error(name+" is not a duration of at least 1s; using the default", "value", setting, "default", fallback.String())
		return fallback
	}
	return d
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.TrimSpace(level))); err != nil || level == "" {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

func run(log *slog.Logger) error {
	debug.SetMemoryLimit(memoryLimit)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	d, err := driver.New(dataDir, mountDir, log)
	if err != nil {
		return err
	}
	h := volume.NewHandler(d)
	h.HandleFunc(agentapi.VersionPath, func(w http.ResponseWriter, _ *http.Request) {
		sdk.EncodeResponse(w, agentapi.VersionResponse{Version: buildinfo.String()}, false)
	})
	engine := agent.NewEngine(engineSocket)
	repos := agent.NewRepos(secretsDir)
	repos.UseCache(filepath.Join(dataDir, "cache"))
	holder := quiesce.New(engine.API(), filepath.Join(dataDir, "quiesce.json"), d.HoldMounts, log)
	go func() {
		if err := holder.Heal(ctx); err != nil {
			log.Error("release containers held by a stopped plugin", "err", err)
		}
	}()
	a := agent.New(ctx, d, repos, engine, holder, log)
	notifier, err := notify.FromSettings(os.Getenv, secretsDir, log)
	if err != nil {
		// A mistyped URL must not stop backups: the plugin runs, and says so at every start.
		log.Error("notifications are off", "err", err)
	}
	var m *metrics.Metrics
	if addr := os.Getenv(metrics.Setting); addr != "" {
		m = metrics.New(buildinfo.String())
		go func() {
			if err := m.Serve(ctx, addr, log); err != nil {
				log.Error("metrics are off", "err", err)
			}
		}()
	}
	a.Observe(m, notifier)
	a.Handlers(h.HandleFunc)
	d.SetFiller(a.Fill)
	d.SetArmed(a.Armed(swarmDir))
	d.SetStatus(a.VolumeStatus)
	go a.RunSchedules(ctx, d)
	go a.RunHeartbeat(ctx, d, interval("SWARMBACKUP_HEARTBEAT", time.Minute, log))
	go a.RunRequests(ctx, d, interval("SWARMBACKUP_POLL", 5*time.Second, log), swarmDir)
	go a.RunClusterSchedule(ctx, swarmDir)

	sock := filepath.Join(socketDir, agentapi.SocketName)
	if err := os.MkdirAll(socketDir, 0o755); err != nil {
		return err
	}
	_ = os.Remove(sock) // a stale socket from a killed predecessor
	l, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", sock, err)
	}
	log.Info("swarmbackup plugin serving", "version", buildinfo.String(), "socket", sock)

	errc := make(chan error, 1)
	go func() { errc <- h.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Every state change is written atomically, so stopping between requests loses nothing.
	l.Close()
	log.Info("swarmbackup plugin stopped")
	return nil
}
