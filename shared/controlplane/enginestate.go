package controlplane

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// engineStateFile is where the engine keeps how it takes part in the swarm. When it is
// present at start, the engine starts the swarm node and waits up to 20 s for it to be
// ready: a restored manager whose peers are lost never is.
const engineStateFile = "docker-state.json"

// engineState holds the addresses the engine recorded in its state file.
type engineState struct {
	ListenAddr    string
	AdvertiseAddr string
	DataPathAddr  string
	DataPathPort  uint32
}

// takeEngineState reads the state file of a swarm directory and removes it, so that the
// engine starts outside the swarm at once; force-new-cluster starts the node from the
// restored raft data with these addresses. A directory without the file gives defaults.
func takeEngineState(swarmDir string) (engineState, error) {
	var st engineState
	path := filepath.Join(swarmDir, engineStateFile)
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("read the engine's swarm state: %w", err)
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("read the engine's swarm state %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return st, fmt.Errorf("set the engine's swarm state aside: %w", err)
	}
	return st, nil
}

// addressed is the state the restored manager starts with: moved to the address given, or,
// when the backup recorded none (a manager that joined without --advertise-addr, whose
// engine chose then), the address the cluster knew it by: on a new host with several
// interfaces the engine cannot choose by itself.
func (st engineState) addressed(given, known string) engineState {
	switch {
	case given != "" && given != st.AdvertiseAddr:
		return st.movedTo(given)
	case st.AdvertiseAddr == "" && known != "":
		st.AdvertiseAddr = known
	}
	return st
}

// movedTo is the state for a host that advertises another address than the backup's: a
// listen or data path address bound to the old host follows the advertised one.
func (st engineState) movedTo(advertise string) engineState {
	oldHost, newHost := hostOf(st.AdvertiseAddr), hostOf(advertise)
	if h, port, err := net.SplitHostPort(st.ListenAddr); err == nil && h == oldHost {
		st.ListenAddr = net.JoinHostPort("0.0.0.0", port)
	}
	if st.DataPathAddr != "" && hostOf(st.DataPathAddr) == oldHost {
		st.DataPathAddr = newHost
	}
	st.AdvertiseAddr = advertise
	return st
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
