package controlplane

import (
	"testing"

	"github.com/moby/moby/api/types/network"
)

func TestANetworkDiffersOnlyInWhatItsOwnerChose(t *testing.T) {
	backup := network.Summary{Network: network.Network{Driver: "overlay", Labels: map[string]string{"team": "a"},
		Options: map[string]string{"com.docker.network.driver.overlay.vxlanid_list": "4097", "encrypted": ""}}}
	recreated := backup
	recreated.Options = map[string]string{"com.docker.network.driver.overlay.vxlanid_list": "4113", "encrypted": ""}
	if !sameNetwork(backup, recreated) {
		t.Error("a network re-created with another VXLAN ID counts as different")
	}
	plain := recreated
	plain.Options = map[string]string{"com.docker.network.driver.overlay.vxlanid_list": "4113"}
	if sameNetwork(backup, plain) {
		t.Error("a network that lost its encryption option counts as the same")
	}
}
