package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestVersionNamesTheCLIPluginTheVolumePluginAndTheEngine(t *testing.T) {
	l := newLab(t)
	for i := 1; i <= l.nodes; i++ {
		out := l.node(i).docker("swarmbackup", "version", "--format", "json")
		var v struct {
			CLIPlugin    string
			VolumePlugin struct{ Version, Problem string }
			Engine       struct{ Version, APIVersion, NegotiatedAPIVersion string }
		}
		if err := json.Unmarshal([]byte(out), &v); err != nil {
			t.Fatalf("version --format json on node%d: %v\n%s", i, err, out)
		}
		if v.CLIPlugin == "" || v.VolumePlugin.Version != v.CLIPlugin {
			t.Errorf("node%d: CLI plugin %q, volume plugin %q (%s): want the same version", i, v.CLIPlugin, v.VolumePlugin.Version, v.VolumePlugin.Problem)
		}
		if !strings.HasPrefix(v.Engine.Version, "20.10.") || v.Engine.NegotiatedAPIVersion != "1.41" {
			t.Errorf("node%d: engine %+v: want 20.10 spoken to with API 1.41", i, v.Engine)
		}
	}
	table := l.node(1).docker("swarmbackup", "version")
	for _, want := range []string{"CLI plugin:", "Volume plugin:", "Engine:"} {
		if !strings.Contains(table, want) {
			t.Errorf("version table lacks %q:\n%s", want, table)
		}
	}
}

func TestDockerInfoListsTheCLIPluginWithoutWarnings(t *testing.T) {
	l := newLab(t)
	r := l.node(1).try("info")
	if r.err != nil {
		t.Fatal(r)
	}
	if !strings.Contains(r.stdout, "swarmbackup: ") {
		t.Errorf("docker info does not list the swarmbackup plugin:\n%s", r.stdout)
	}
	for _, line := range strings.Split(r.stdout+"\n"+r.stderr, "\n") {
		if strings.Contains(line, "swarmbackup") && strings.Contains(strings.ToLower(line), "warn") {
			t.Errorf("docker info warns about the plugin: %s", line)
		}
	}
}

func TestUnknownSubcommandFailsWithOneLine(t *testing.T) {
	l := newLab(t)
	stderr := l.node(1).dockerFails("swarmbackup", "frobnicate")
	if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
		t.Errorf("unknown subcommand printed a stack trace:\n%s", stderr)
	}
}

func TestDockerSwarmBackupPointsAtTheRightCommand(t *testing.T) {
	l := newLab(t)
	// The CLI runs hooks only for a terminal: script gives the command one.
	cmd := exec.Command("script", "-qc", "docker swarm backup", "/dev/null")
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+l.node(1).host(), "DOCKER_CLI_HOOKS=true")
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), "docker swarmbackup backup") {
		t.Errorf("docker swarm backup does not point at docker swarmbackup backup:\n%s", out)
	}
}
