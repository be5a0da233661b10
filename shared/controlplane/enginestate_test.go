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
