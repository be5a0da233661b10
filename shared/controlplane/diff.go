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

// liveObject is what the diff compares of a live object.
type liveObject struct {
	labels map[string]string
	spec   []byte // services: the engine's spec, as JSON
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
	live, err := readLiveObjects(ctx, c)
	if err != nil {
		return nil, err
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

func readLiveObjects(ctx context.Context, c client.APIClient) (map[string]map[string]liveObject, error) {
	live := map[string]map[string]liveObject{KindSecret: {}, KindConfig: {}, KindNetwork: {}, KindService: {}, KindNode: {}}
	secrets, err := c.SecretList(ctx, client.SecretListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	for _, s := range secrets.Items {
		live[KindSecret][s.Spec.Name] = liveObject{labels: s.Spec.Labels}
	}
	configs, err := c.ConfigList(ctx, client.ConfigListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list configs: %w", err)
	}
	for _, o := range configs.Items {
		live[KindConfig][o.Spec.Name] = liveObject{labels: o.Spec.Labels}
	}
	networks, err := c.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range networks.Items {
		if n.Scope == "swarm" {
			live[KindNetwork][n.Name] = liveObject{labels: n.Labels}
		}
	}
	services, err := c.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	for _, s := range services.Items {
		live[KindService][s.Spec.Name] = liveObject{labels: s.Spec.Labels, spec: specKey(s.Spec)}
	}
	nodes, err := c.NodeList(ctx, client.NodeListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	for _, n := range nodes.Items {
		name := n.Spec.Name
		if name == "" {
			name = n.Description.Hostname
		}
		live[KindNode][name] = liveObject{labels: n.Spec.Labels}
	}
	return live, nil
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
