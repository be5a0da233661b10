package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// hookReceiver is a webhook endpoint on the lab's bridge, which every engine reaches.
type hookReceiver struct {
	mu     sync.Mutex
	titles []string
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]string
	data, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(data, &body)
	h.mu.Lock()
	h.titles = append(h.titles, body["title"])
	h.mu.Unlock()
}

func (h *hookReceiver) has(title string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.titles {
		if t == title {
			return true
		}
	}
	return false
}

// listenOnTheBridge serves h on the lab bridge's address and returns the generic webhook URL.
func listenOnTheBridge(t *testing.T, h http.Handler) string {
	t.Helper()
	endpoint, _ := labMinIO(t)
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort(u.Hostname(), "0"))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return "generic://" + l.Addr().String() + "/hook?template=json&disabletls=yes"
}

func TestThePluginsMetricsAreScrapedAndItsJobsNotified(t *testing.T) {
	l := newLab(t)
	n := l.node(2)
	hooks := &hookReceiver{}
	hook := listenOnTheBridge(t, hooks)
	n.configurePlugin("SWARMBACKUP_METRICS_ADDR=:9464", "SWARMBACKUP_NOTIFY_URL="+hook, "SWARMBACKUP_NOTIFY_ON=always")

	vol := unique("metered")
	n.createVolume(vol)
	n.run(vol, "head -c 300000 /dev/urandom > /data/a && mkdir /data/d && echo hi > /data/d/b")
	n.snapshot(vol)

	host := n.docker("info", "--format", "{{.Name}}")
	scrape := "http://" + net.JoinHostPort(n.docker("info", "--format", "{{.Swarm.NodeAddr}}"), "9464") + "/metrics"
	page := ""
	want := []string{
		fmt.Sprintf(`swarmbackup_volume_runs_total{volume=%q} 1`, vol),
		fmt.Sprintf(`swarmbackup_volume_failures_total{volume=%q} 0`, vol),
		fmt.Sprintf(`swarmbackup_volume_last_size_bytes{volume=%q} 300003`, vol),
		fmt.Sprintf(`swarmbackup_volume_last_files{volume=%q} 2`, vol),
		fmt.Sprintf(`swarmbackup_volume_last_success_timestamp_seconds{volume=%q} 1.`, vol),
		`swarmbackup_agent_last_report_timestamp_seconds 1.`,
		`process_resident_memory_bytes `,
	}
	l.eventually("the snapshot in the plugin's metrics", 30*time.Second, func() bool {
		resp, err := http.Get(scrape)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		page = string(b)
		for _, w := range want {
			if !strings.Contains(page, w) {
				return false
			}
		}
		return true
	})
	l.eventually("the snapshot's notification", 30*time.Second, func() bool {
		return hooks.has(fmt.Sprintf("swarmbackup: snapshot of volume %s on %s succeeded", vol, host))
	})

	// The repository becomes unreachable: the next snapshot fails, and says so.
	_, secrets := labMinIO(t)
	n.configurePlugin("SWARMBACKUP_REPO=s3:http://127.0.0.1:1/gone", "etc.source="+filepath.Clean(secrets))
	if r := n.try("swarmbackup", "volume", "snapshot", vol); r.err == nil {
		t.Fatalf("a snapshot into an unreachable repository succeeded: %s", r)
	}
	l.eventually("the failed snapshot's notification", 60*time.Second, func() bool {
		return hooks.has(fmt.Sprintf("swarmbackup: snapshot of volume %s on %s FAILED", vol, host))
	})
}
