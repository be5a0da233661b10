package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

type statusReport struct {
	Agents []struct {
		Host  string `json:"host"`
		State string `json:"state"`
	} `json:"agents"`
	Volumes []struct {
		Volume string `json:"volume"`
		Host   string `json:"host"`
		State  string `json:"state"`
	} `json:"volumes"`
	Problems []string `json:"problems"`
}

// status runs `docker swarmbackup status --format json` on a node and returns the report
// and whether it exited zero.
func (n *node) status() (statusReport, bool) {
	n.lab.t.Helper()
	r := n.try("swarmbackup", "status", "--format", "json")
	var rep statusReport
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		n.lab.t.Fatalf("status --format json: %v\n%s", err, r)
	}
	return rep, r.err == nil
}

func (r statusReport) agentState(host string) string {
	for _, a := range r.Agents {
		if a.Host == host {
			return a.State
		}
	}
	return ""
}

func (r statusReport) volumeState(volume string) string {
	for _, v := range r.Volumes {
		if v.Volume == volume {
			return v.State
		}
	}
	return ""
}

func TestStatusReportsEveryAgentAFailingVolumeAndASilentNode(t *testing.T) {
	l := newLab(t)
	node1, node3 := l.node(1), l.node(3)
	node3.configurePlugin("SWARMBACKUP_HEARTBEAT=2s")
	host3 := node3.docker("info", "--format", "{{.Name}}")

	ok := unique("status-ok")
	node3.createVolume(ok)
	node3.snapshot(ok)
	bad := unique("status-bad")
	node3.createVolume(bad, "quiesce=exec", "pre="+preFails)
	node3.startContainer(bad, "sleep 3600")
	node3.dockerFails("swarmbackup", "volume", "snapshot", bad)

	var rep statusReport
	var exitedZero bool
	l.eventually("status to report the failing volume", 30*time.Second, func() bool {
		rep, exitedZero = node1.status()
		return rep.volumeState(bad) == "failing"
	})
	if exitedZero {
		t.Error("status exited zero with a failing volume")
	}
	if !strings.Contains(strings.Join(rep.Problems, "\n"), bad) {
		t.Errorf("the problems do not name volume %s: %q", bad, rep.Problems)
	}
	if got := rep.volumeState(ok); got != "ok" {
		t.Errorf("volume %s is %q, want ok", ok, got)
	}
	for i := 1; i <= l.nodes; i++ {
		host := l.node(i).docker("info", "--format", "{{.Name}}")
		if got := rep.agentState(host); got != "ok" {
			t.Errorf("the agent on %s is %q, want ok", host, got)
		}
	}

	// An agent that stops reporting goes stale.
	node3.docker("plugin", "disable", "--force", "swarmbackup")
	l.eventually("status to call node3's agent stale", 30*time.Second, func() bool {
		rep, exitedZero = node1.status()
		return rep.agentState(host3) == "stale"
	})
	if exitedZero {
		t.Error("status exited zero with a stale agent")
	}
}
