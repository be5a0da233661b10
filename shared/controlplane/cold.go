package controlplane

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// EngineControl stops and starts the engine of this manager, for cold backups and full
// restores: systemd by default, or the operator's commands for engines run otherwise.
type EngineControl struct {
	Stop, Start string // shell commands
}

// DefaultEngineControl reads SWARMBACKUP_ENGINE_STOP_CMD and _START_CMD, else systemd.
func DefaultEngineControl(stopFlag, startFlag string) EngineControl {
	pick := func(flag, env, def string) string {
		if flag != "" {
			return flag
		}
		if v := os.Getenv(env); v != "" {
			return v
		}
		return def
	}
	return EngineControl{
		Stop:  pick(stopFlag, "SWARMBACKUP_ENGINE_STOP_CMD", "systemctl stop docker"),
		Start: pick(startFlag, "SWARMBACKUP_ENGINE_START_CMD", "systemctl start docker"),
	}
}

func run(ctx context.Context, command string) error {
	out, err := exec.CommandContext(ctx, "sh", "-c", command).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%q failed: %v: %s", command, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// CheckColdSafe refuses a cold backup that would hurt the cluster: on the leader (an
// election follows) unless allowed, and when stopping this manager would lose quorum.
func CheckColdSafe(ctx context.Context, c client.APIClient, nodeID string, allowLeader bool) error {
	nodes, err := c.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	managers, reachable := 0, 0
	for _, n := range nodes.Items {
		if n.ManagerStatus == nil {
			continue
		}
		managers++
		if n.ManagerStatus.Reachability == swarm.ReachabilityReachable {
			reachable++
		}
		if n.ID == nodeID && n.ManagerStatus.Leader && !allowLeader {
			return fmt.Errorf("this manager is the leader: stopping it forces an election; run the cold backup on another manager, or add --allow-leader")
		}
	}
	if !QuorumSurvives(managers, reachable) {
		return fmt.Errorf("stopping this manager would lose quorum (%d of %d managers reachable, %d needed): take a hot backup instead", reachable, managers, managers/2+1)
	}
	return nil
}

// QuorumSurvives reports whether the managers keep a majority with one reachable one down.
func QuorumSurvives(managers, reachable int) bool {
	return reachable-1 >= managers/2+1
}

// StopEngine stops the engine and waits until its API is gone.
func (e EngineControl) StopEngine(ctx context.Context, c client.APIClient) error {
	if err := run(ctx, e.Stop); err != nil {
		return fmt.Errorf("stop the engine: %w", err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if _, err := c.Ping(ctx, client.PingOptions{}); err != nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("the engine still answers two minutes after %q", e.Stop)
}

// StartEngine starts the engine and waits until this node is a manager in the swarm again.
func (e EngineControl) StartEngine(ctx context.Context, c client.APIClient) error {
	if err := run(ctx, e.Start); err != nil {
		return fmt.Errorf("start the engine: %w", err)
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		info, err := c.Info(ctx, client.InfoOptions{})
		if err == nil && info.Info.Swarm.ControlAvailable && info.Info.Swarm.LocalNodeState == swarm.LocalNodeStateActive {
			return nil
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("the engine did not come back as a manager within three minutes of %q", e.Start)
}
