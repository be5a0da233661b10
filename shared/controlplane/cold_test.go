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
