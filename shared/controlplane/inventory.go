package controlplane

import (
	"sort"
	"strconv"

	"github.com/moby/swarmkit/v2/api"

	"github.com/swarmbackup/swarmbackup/shared/swarmstate"
)

// Layout of a swarm backup's tree.
const (
	SwarmDir      = "swarm"                // the copy of <DockerRootDir>/swarm
	InventoryFile = "inventory.json"       // []Object, decoded from the copy
	ServicesFile  = "engine/services.json" // the engine's view of services, for re-creating them
	NetworksFile  = "engine/networks.json" // likewise for networks
)

// Object kinds.
const (
	KindService = "service"
	KindNetwork = "network"
	KindSecret  = "secret"
	KindConfig  = "config"
	KindNode    = "node"
)

// Metadata describes a swarm backup; it is stored with the snapshot record.
type Metadata struct {
	ClusterID       string `json:"cluster_id"`
	NodeID          string `json:"node_id"`
	NodeName        string `json:"node_name"`
	NodeAddr        string `json:"node_addr"`
	Role            string `json:"role"`
	Leader          bool   `json:"leader"`
	EngineVersion   string `json:"engine_version"`
	Mode            string `json:"mode"` // hot or cold
	Autolock        bool   `json:"autolock"`
	Decoded         bool   `json:"decoded"` // false for an autolocked swarm backed up without its unlock key
	RaftCommitIndex uint64 `json:"raft_commit_index"`
	RaftLastIndex   uint64 `json:"raft_last_index"`
	Attempts        int    `json:"attempts"`
	CaptureMillis   int64  `json:"capture_ms"`
	// EngineDowntimeMillis is how long a cold backup kept the engine stopped.
	EngineDowntimeMillis int64          `json:"engine_downtime_ms"`
	Counts               map[string]int `json:"counts,omitempty"`
}

// Object is one object of the backup, by kind and name; secret and config values stay in
// the copy and are read only when asked for.
type Object struct {
	Kind   string            `json:"kind"`
	ID     string            `json:"id"`
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	Detail map[string]string `json:"detail,omitempty"`
}

// InventoryOf lists the objects of a decoded store, sorted by kind and name.
func InventoryOf(st *swarmstate.State) []Object {
	var out []Object
	for _, s := range st.Services {
		d := map[string]string{}
		if c := s.Spec.Task.GetContainer(); c != nil {
			d["image"] = c.Image
		}
		if r := s.Spec.GetReplicated(); r != nil {
			d["replicas"] = strconv.FormatUint(r.Replicas, 10)
		} else if s.Spec.GetGlobal() != nil {
			d["mode"] = "global"
		}
		out = append(out, Object{Kind: KindService, ID: s.ID, Name: s.Spec.Annotations.Name, Labels: s.Spec.Annotations.Labels, Detail: d})
	}
	for _, n := range st.Networks {
		d := map[string]string{}
		if n.Spec.DriverConfig != nil {
			d["driver"] = n.Spec.DriverConfig.Name
		}
		if n.Spec.Ingress {
			d["ingress"] = "true"
		}
		out = append(out, Object{Kind: KindNetwork, ID: n.ID, Name: n.Spec.Annotations.Name, Labels: n.Spec.Annotations.Labels, Detail: d})
	}
	for _, s := range st.Secrets {
		out = append(out, Object{Kind: KindSecret, ID: s.ID, Name: s.Spec.Annotations.Name, Labels: s.Spec.Annotations.Labels})
	}
	for _, c := range st.Configs {
		out = append(out, Object{Kind: KindConfig, ID: c.ID, Name: c.Spec.Annotations.Name, Labels: c.Spec.Annotations.Labels})
	}
	for _, n := range st.Nodes {
		name := n.Spec.Annotations.Name
		if name == "" && n.Description != nil {
			name = n.Description.Hostname
		}
		d := map[string]string{
			"role":         roleName(n.Role),
			"availability": availabilityName(n.Spec.Availability),
			"state":        n.Status.State.String(),
		}
		out = append(out, Object{Kind: KindNode, ID: n.ID, Name: name, Labels: n.Spec.Annotations.Labels, Detail: d})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Count tallies objects by kind.
func Count(objects []Object) map[string]int {
	c := map[string]int{}
	for _, o := range objects {
		c[o.Kind]++
	}
	return c
}

func roleName(r api.NodeRole) string {
	if r == api.NodeRoleManager {
		return "manager"
	}
	return "worker"
}

func availabilityName(a api.NodeSpec_Availability) string {
	switch a {
	case api.NodeAvailabilityPause:
		return "pause"
	case api.NodeAvailabilityDrain:
		return "drain"
	}
	return "active"
}
