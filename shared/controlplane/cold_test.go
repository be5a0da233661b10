package controlplane

import "testing"

func TestQuorumSurvivesOneManagerDown(t *testing.T) {
	for _, c := range []struct {
		managers, reachable int
		want                bool
	}{
		{3, 3, true}, {3, 2, false}, {5, 5, true}, {5, 4, true}, {5, 3, false}, {1, 1, false}, {2, 2, false},
	} {
		if got := QuorumSurvives(c.managers, c.reachable); got != c.want {
			t.Errorf("%d managers, %d reachable: %v, want %v", c.managers, c.reachable, got, c.want)
		}
	}
}

func TestABackupFromANewerEngineLineIsRefused(t *testing.T) {
	for _, c := range []struct {
		backup, live string
		newer        bool
	}{
		{"20.10.24+dfsg1", "20.10.24+dfsg1", false},
		{"20.10.5", "20.10.24", false},
		{"23.0.1", "20.10.24", true},
		{"20.10.24", "24.0.7", false},
		{"20.10.1", "20.9.3", true},
		{"weird", "20.10.1", false},
	} {
		if got := newerLine(c.backup, c.live); got != c.newer {
			t.Errorf("backup %s on engine %s: newer=%v, want %v", c.backup, c.live, got, c.newer)
		}
	}
}
