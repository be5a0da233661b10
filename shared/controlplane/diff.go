package controlplane

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"

	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// Change is one difference between a backup and the live cluster.
type Change struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Change string `json:"change"` // "added" (live only), "removed" (backup only), "changed"
	Detail string `json:"detail,omitempty"`
}

// Diff compares a swarm backup with the live cluster, by kind and name, for services,
// networks, secrets, configs and nodes.
func Diff(ctx context.Context, repo *repository.Repository, sn *snapshot.Snapshot, c client.APIClient) ([]Change, error) {
	objects, err := ReadInventory(ctx, repo, sn)
	if err != nil {
		return nil, err
	}
	data, err := snapshot.ReadFile(ctx, repo, sn.Tree, ServicesFile)
	if err != nil {
		return nil, err
	}
	var backupServices []swarm.Service
	if err := json.Unmarshal(data, &backupServices); err != nil {
		return nil, fmt.Errorf("%s: %w", ServicesFile, err)
	}
	backupSpecs := map[string][]byte{}
	for _, s := range backupServices {
		backupSpecs[s.Spec.Name] = specKey(s.Spec)
	}
	live, err := readLive(ctx, c)
	if err != nil {
		return nil, err
	}
	// The swarm holds swarm-scoped networks only; a node's own ones are not its business.
	for name, n := range live[KindNetwork] {
		if n.scope != "swarm" {
			delete(live[KindNetwork], name)
		}
	}
	var out []Change
	seen := map[string]map[string]bool{}
	for _, o := range objects {
		if o.Labels["com.docker.swarm.predefined"] == "true" {
			continue // the engine's own host and bridge networks
		}
		if seen[o.Kind] == nil {
			seen[o.Kind] = map[string]bool{}
		}
		seen[o.Kind][o.Name] = true
		l, ok := live[o.Kind][o.Name]
		switch {
		case !ok:
			out = append(out, Change{Kind: o.Kind, Name: o.Name, Change: "removed"})
		case !maps.Equal(nonNil(o.Labels), nonNil(l.labels)):
			out = append(out, Change{Kind: o.Kind, Name: o.Name, Change: "changed", Detail: "labels"})
		case o.Kind == KindService && string(backupSpecs[o.Name]) != string(l.spec):
			out = append(out, Change{Kind: o.Kind, Name: o.Name, Change: "changed", Detail: "spec"})
		}
	}
	for kind, byName := range live {
		for name := range byName {
			if !seen[kind][name] {
				out = append(out, Change{Kind: kind, Name: name, Change: "added"})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// specKey is a service spec as JSON without the IDs of the objects it refers to, which a
// restore changes: a restored service equals its backup.
func specKey(spec swarm.ServiceSpec) []byte {
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		c := *cs
		c.Secrets = make([]*swarm.SecretReference, len(cs.Secrets))
		for i, r := range cs.Secrets {
			ref := *r
			ref.SecretID = ""
			c.Secrets[i] = &ref
		}
		c.Configs = make([]*swarm.ConfigReference, len(cs.Configs))
		for i, r := range cs.Configs {
			ref := *r
			ref.ConfigID = ""
			c.Configs[i] = &ref
		}
		spec.TaskTemplate.ContainerSpec = &c
	}
	nets := make([]swarm.NetworkAttachmentConfig, len(spec.TaskTemplate.Networks))
	for i, n := range spec.TaskTemplate.Networks {
		n.Target = ""
		nets[i] = n
	}
	spec.TaskTemplate.Networks = nets
	b, _ := json.Marshal(spec)
	return b
}
