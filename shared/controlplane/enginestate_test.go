package controlplane

import (
	"os"
	"path/filepath"
	"testing"
)

func TestEngineStateIsTakenOutOfTheRestoredDirectory(t *testing.T) {
	dir := t.TempDir()
	state := `{"LocalAddr":"10.0.0.1","ListenAddr":"10.0.0.1:2377","AdvertiseAddr":"10.0.0.1:2377","DataPathAddr":"10.0.0.1","DataPathPort":4789}`
	if err := os.WriteFile(filepath.Join(dir, engineStateFile), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := takeEngineState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, engineStateFile)); !os.IsNotExist(err) {
		t.Errorf("the state file is still there (%v): the engine would wait for a quorum at start", err)
	}
	want := engineState{ListenAddr: "10.0.0.1:2377", AdvertiseAddr: "10.0.0.1:2377", DataPathAddr: "10.0.0.1", DataPathPort: 4789}
	if st != want {
		t.Errorf("recorded state %+v, want %+v", st, want)
	}

	moved := st.movedTo("10.0.0.9:2377")
	want = engineState{ListenAddr: "0.0.0.0:2377", AdvertiseAddr: "10.0.0.9:2377", DataPathAddr: "10.0.0.9", DataPathPort: 4789}
	if moved != want {
		t.Errorf("moved to another host: %+v, want %+v", moved, want)
	}
	// Addresses not bound to the old host stay as they are.
	other := engineState{ListenAddr: "0.0.0.0:2400", AdvertiseAddr: "10.0.0.1:2400", DataPathAddr: "192.168.9.1"}.movedTo("eth1")
	if other.ListenAddr != "0.0.0.0:2400" || other.DataPathAddr != "192.168.9.1" || other.AdvertiseAddr != "eth1" {
		t.Errorf("moved with unbound addresses: %+v", other)
	}

	if st, err := takeEngineState(t.TempDir()); err != nil || st != (engineState{}) {
		t.Errorf("a directory without a state file: %+v, %v", st, err)
	}
}

// A manager that joined without --advertise-addr recorded no address: the restore advertises
// the one the cluster knew it by, since a new host with several interfaces (docker_gwbridge
// among them) makes the engine refuse to choose.
func TestARestoredManagerAdvertisesTheAddressTheClusterKnewItBy(t *testing.T) {
	joinedPlain := engineState{ListenAddr: "0.0.0.0:2377"}
	if got := joinedPlain.addressed("", "192.168.213.11"); got.AdvertiseAddr != "192.168.213.11" || got.ListenAddr != "0.0.0.0:2377" {
		t.Errorf("no address recorded: %+v, want the known one", got)
	}
	if got := joinedPlain.addressed("10.0.0.9", "192.168.213.11"); got.AdvertiseAddr != "10.0.0.9" {
		t.Errorf("an address given: %+v, want it", got)
	}
	recorded := engineState{ListenAddr: "10.0.0.1:2377", AdvertiseAddr: "10.0.0.1:2377"}
	if got := recorded.addressed("", "192.168.213.11"); got != recorded {
		t.Errorf("an address recorded: %+v, want it kept", got)
	}
}
