package controlplane

import (
	"context"
	"fmt"
	"sort"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/moby/swarmkit/v2/api"

	"github.com/swarmbackup/swarmbackup/shared/swarmstate"
)

// Kinds a selective restore handles, in the order they are re-created: services refer to
// the others.
var RestoreKinds = []string{KindNetwork, KindSecret, KindConfig, KindService}

// Step is one object of a restore plan.
type Step struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"` // "create", or "keep" for objects that exist
	Reason string `json:"reason,omitempty"`
}

// Selection says what to restore.
type Selection struct {
	Kinds map[string]bool
	Names map[string]bool // empty: every name
}

func (s Selection) wants(kind, name string) bool {
	return s.Kinds[kind] && (len(s.Names) == 0 || s.Names[name])
}

// Live is what the cluster holds now, by kind and name.
type Live map[string]map[string]string // kind -> name -> ID

// ReadLive lists the IDs of the cluster's secrets, configs, networks and services by name.
func ReadLive(ctx context.Context, c client.APIClient) (Live, error) {
	objects, err := readLive(ctx, c)
	if err != nil {
		return nil, err
	}
	live := Live{KindSecret: {}, KindConfig: {}, KindNetwork: {}, KindService: {}}
	for kind := range live {
		for name, o := range objects[kind] {
			live[kind][name] = o.id
		}
	}
	return live, nil
}

// liveObject is what restore and diff look at of one object in the cluster.
type liveObject struct {
	id     string
	labels map[string]string
	spec   []byte // services: specKey of the engine's spec
	scope  string // networks: "swarm", "local"
}

// readLive lists the cluster's objects by kind and name, through the engine API.
func readLive(ctx context.Context, c client.APIClient) (map[string]map[string]liveObject, error) {
	live := map[string]map[string]liveObject{KindSecret: {}, KindConfig: {}, KindNetwork: {}, KindService: {}, KindNode: {}}
	secrets, err := c.SecretList(ctx, client.SecretListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	for _, s := range secrets.Items {
		live[KindSecret][s.Spec.Name] = liveObject{id: s.ID, labels: s.Spec.Labels}
	}
	configs, err := c.ConfigList(ctx, client.ConfigListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list configs: %w", err)
	}
	for _, o := range configs.Items {
		live[KindConfig][o.Spec.Name] = liveObject{id: o.ID, labels: o.Spec.Labels}
	}
	networks, err := c.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range networks.Items {
		live[KindNetwork][n.Name] = liveObject{id: n.ID, labels: n.Labels, scope: n.Scope}
	}
	services, err := c.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	for _, s := range services.Items {
		live[KindService][s.Spec.Name] = liveObject{id: s.ID, labels: s.Spec.Labels, spec: specKey(s.Spec)}
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
		live[KindNode][name] = liveObject{id: n.ID, labels: n.Spec.Labels}
	}
	return live, nil
}

// Plan lists what a restore of sel would do: create what is missing, keep what exists.
func (b *Backup) Plan(live Live, sel Selection) []Step {
	var steps []Step
	add := func(kind, name string) {
		if !sel.wants(kind, name) {
			return
		}
		if _, ok := live[kind][name]; ok {
			steps = append(steps, Step{Kind: kind, Name: name, Action: "keep", Reason: "exists"})
			return
		}
		steps = append(steps, Step{Kind: kind, Name: name, Action: "create"})
	}
	for _, n := range b.Networks {
		if !n.Ingress {
			add(KindNetwork, n.Name)
		}
	}
	for _, name := range swarmstate.Names(b.State.Secrets, func(s *api.Secret) string { return s.Spec.Annotations.Name }) {
		add(KindSecret, name)
	}
	for _, name := range swarmstate.Names(b.State.Configs, func(c *api.Config) string { return c.Spec.Annotations.Name }) {
		add(KindConfig, name)
	}
	for _, s := range b.Services {
		add(KindService, s.Spec.Name)
	}
	sort.SliceStable(steps, func(i, j int) bool { return kindOrder(steps[i].Kind) < kindOrder(steps[j].Kind) })
	return steps
}

func kindOrder(kind string) int {
	for i, k := range RestoreKinds {
		if k == kind {
			return i
		}
	}
	return len(RestoreKinds)
}

// Apply carries out the create steps through the engine API, with the same names, labels
// and data; services get their references to secrets, configs and networks pointed at the
// objects' IDs in the live cluster.
func (b *Backup) Apply(ctx context.Context, c client.APIClient, steps []Step, live Live) error {
	secrets := map[string]*api.Secret{}
	for _, s := range b.State.Secrets {
		secrets[s.Spec.Annotations.Name] = s
	}
	configs := map[string]*api.Config{}
	for _, c := range b.State.Configs {
		configs[c.Spec.Annotations.Name] = c
	}
	networks := map[string]network.Summary{}
	for _, n := range b.Networks {
		networks[n.Name] = n
	}
	services := map[string]swarm.Service{}
	for _, s := range b.Services {
		services[s.Spec.Name] = s
	}
	for _, st := range steps {
		if st.Action != "create" {
			continue
		}
		var id string
		var err error
		switch st.Kind {
		case KindNetwork:
			id, err = createNetwork(ctx, c, networks[st.Name])
		case KindSecret:
			id, err = createSecret(ctx, c, secrets[st.Name])
		case KindConfig:
			id, err = createConfig(ctx, c, configs[st.Name])
		case KindService:
			id, err = b.createService(ctx, c, services[st.Name], live)
		}
		if err != nil {
			return fmt.Errorf("restore %s %q: %w", st.Kind, st.Name, err)
		}
		live[st.Kind][st.Name] = id
	}
	return nil
}

func createSecret(ctx context.Context, c client.APIClient, s *api.Secret) (string, error) {
	spec := swarm.SecretSpec{
		Annotations: swarm.Annotations{Name: s.Spec.Annotations.Name, Labels: s.Spec.Annotations.Labels},
		Data:        s.Spec.Data,
	}
	if d := s.Spec.Driver; d != nil {
		spec.Driver = &swarm.Driver{Name: d.Name, Options: d.Options}
	}
	if t := s.Spec.Templating; t != nil {
		spec.Templating = &swarm.Driver{Name: t.Name, Options: t.Options}
	}
	res, err := c.SecretCreate(ctx, client.SecretCreateOptions{Spec: spec})
	return res.ID, err
}

func createConfig(ctx context.Context, c client.APIClient, cfg *api.Config) (string, error) {
	spec := swarm.ConfigSpec{
		Annotations: swarm.Annotations{Name: cfg.Spec.Annotations.Name, Labels: cfg.Spec.Annotations.Labels},
		Data:        cfg.Spec.Data,
	}
	if t := cfg.Spec.Templating; t != nil {
		spec.Templating = &swarm.Driver{Name: t.Name, Options: t.Options}
	}
	res, err := c.ConfigCreate(ctx, client.ConfigCreateOptions{Spec: spec})
	return res.ID, err
}

func createNetwork(ctx context.Context, c client.APIClient, n network.Summary) (string, error) {
	ipv4, ipv6 := n.EnableIPv4, n.EnableIPv6
	res, err := c.NetworkCreate(ctx, n.Name, client.NetworkCreateOptions{
		Driver: n.Driver, Scope: n.Scope, EnableIPv4: &ipv4, EnableIPv6: &ipv6, IPAM: &n.IPAM,
		Internal: n.Internal, Attachable: n.Attachable, Ingress: n.Ingress,
		ConfigOnly: n.ConfigOnly, ConfigFrom: n.ConfigFrom.Network, Options: n.Options, Labels: n.Labels,
	})
	return res.ID, err
}

// createService re-creates a service from the engine's spec of it, with its references
// pointed at the live objects of the same names.
func (b *Backup) createService(ctx context.Context, c client.APIClient, s swarm.Service, live Live) (string, error) {
	spec := s.Spec
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		for _, ref := range cs.Secrets {
			id, ok := live[KindSecret][ref.SecretName]
			if !ok {
				return "", fmt.Errorf("it uses secret %q, which is neither in the cluster nor restored (add secrets to --only)", ref.SecretName)
			}
			ref.SecretID = id
		}
		for _, ref := range cs.Configs {
			id, ok := live[KindConfig][ref.ConfigName]
			if !ok {
				return "", fmt.Errorf("it uses config %q, which is neither in the cluster nor restored (add configs to --only)", ref.ConfigName)
			}
			ref.ConfigID = id
		}
	}
	names := map[string]string{} // backup network ID -> name
	for _, n := range b.Networks {
		names[n.ID] = n.Name
	}
	for _, o := range b.State.Networks {
		names[o.ID] = o.Spec.Annotations.Name
	}
	for i, att := range spec.TaskTemplate.Networks {
		name, ok := names[att.Target]
		if !ok {
			name = att.Target // given by name
		}
		id, ok := live[KindNetwork][name]
		if !ok {
			return "", fmt.Errorf("it is attached to network %q, which is neither in the cluster nor restored (add networks to --only)", name)
		}
		spec.TaskTemplate.Networks[i].Target = id
	}
	res, err := c.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	return res.ID, err
}
