package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
	"github.com/moby/swarmkit/v2/api"
)

// Kinds a selective restore handles, in the order they are re-created: services refer to
// the others.
var RestoreKinds = []string{KindNetwork, KindSecret, KindConfig, KindService}

// Step is one object of a restore plan.
type Step struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Action string `json:"action"` // "create", "replace", or "keep" for objects left as they are
	Reason string `json:"reason,omitempty"`
}

// Selection says what to restore.
type Selection struct {
	Kinds map[string]bool
	Names map[string]bool // empty: every name
	// Replace puts the backup's version in place of objects that exist and differ from it.
	Replace bool
}

func (s Selection) wants(kind, name string) bool {
	return s.Kinds[kind] && (len(s.Names) == 0 || s.Names[name])
}

// Live is what the cluster holds now.
type Live struct {
	objects map[string]map[string]liveObject // kind -> name -> object
}

// ReadLive reads the cluster's secrets, configs, networks and services through the engine API.
func ReadLive(ctx context.Context, c client.APIClient) (*Live, error) {
	objects, err := readLive(ctx, c)
	if err != nil {
		return nil, err
	}
	return &Live{objects: objects}, nil
}

func (l *Live) id(kind, name string) (string, bool) {
	o, ok := l.objects[kind][name]
	return o.id, ok
}

// users names the live services that refer to a secret, config or network.
func (l *Live) users(kind, name string) []string {
	var users []string
	for svc, o := range l.objects[KindService] {
		if slices.Contains(o.uses[kind], name) {
			users = append(users, svc)
		}
	}
	sort.Strings(users)
	return users
}

// liveObject is what restore and diff look at of one object in the cluster.
type liveObject struct {
	id      string
	labels  map[string]string
	spec    []byte // services: specKey of the engine's spec; configs: their data
	scope   string // networks: "swarm", "local"
	network network.Summary
	service swarm.Service
	uses    map[string][]string // services: kind -> names of the objects they refer to
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
		live[KindConfig][o.Spec.Name] = liveObject{id: o.ID, labels: o.Spec.Labels, spec: o.Spec.Data}
	}
	networks, err := c.NetworkList(ctx, client.NetworkListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	networkNames := map[string]string{}
	for _, n := range networks.Items {
		live[KindNetwork][n.Name] = liveObject{id: n.ID, labels: n.Labels, scope: n.Scope, network: n}
		networkNames[n.ID] = n.Name
	}
	services, err := c.ServiceList(ctx, client.ServiceListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	for _, s := range services.Items {
		o := liveObject{id: s.ID, labels: s.Spec.Labels, spec: specKey(s.Spec), service: s, uses: map[string][]string{}}
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			for _, r := range cs.Secrets {
				o.uses[KindSecret] = append(o.uses[KindSecret], r.SecretName)
			}
			for _, r := range cs.Configs {
				o.uses[KindConfig] = append(o.uses[KindConfig], r.ConfigName)
			}
		}
		for _, n := range s.Spec.TaskTemplate.Networks {
			o.uses[KindNetwork] = append(o.uses[KindNetwork], orDefault(networkNames[n.Target], n.Target))
		}
		live[KindService][s.Spec.Name] = o
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

// Plan lists what a restore of sel would do: create what is missing; keep what exists, or
// with Replace, put the backup's version in place of what differs from it. A secret, config
// or network that live services use cannot be replaced (the engine refuses to remove it and
// cannot change its data): it is kept, with the services named.
func (b *Backup) Plan(live *Live, sel Selection) []Step {
	var steps []Step
	add := func(kind, name string, same func(liveObject) bool) {
		if !sel.wants(kind, name) {
			return
		}
		l, ok := live.objects[kind][name]
		switch {
		case !ok:
			steps = append(steps, Step{Kind: kind, Name: name, Action: "create"})
		case !sel.Replace:
			steps = append(steps, Step{Kind: kind, Name: name, Action: "keep", Reason: "exists"})
		case same(l):
			steps = append(steps, Step{Kind: kind, Name: name, Action: "keep", Reason: "same as the backup"})
		case kind == KindService:
			steps = append(steps, Step{Kind: kind, Name: name, Action: "replace"})
		default:
			if users := live.users(kind, name); len(users) > 0 {
				steps = append(steps, Step{Kind: kind, Name: name, Action: "keep", Reason: "in use by service " + strings.Join(users, ", ")})
			} else {
				steps = append(steps, Step{Kind: kind, Name: name, Action: "replace"})
			}
		}
	}
	for _, n := range b.Networks {
		if !n.Ingress {
			add(KindNetwork, n.Name, func(l liveObject) bool { return sameNetwork(n, l.network) })
		}
	}
	for _, s := range b.State.Secrets {
		// The engine never shows a secret's data, so an existing one cannot be proven equal.
		add(KindSecret, s.Spec.Annotations.Name, func(liveObject) bool { return false })
	}
	for _, c := range b.State.Configs {
		add(KindConfig, c.Spec.Annotations.Name, func(l liveObject) bool {
			return bytes.Equal(c.Spec.Data, l.spec) && maps.Equal(nonNil(c.Spec.Annotations.Labels), nonNil(l.labels))
		})
	}
	for _, s := range b.Services {
		add(KindService, s.Spec.Name, func(l liveObject) bool { return bytes.Equal(specKey(s.Spec), l.spec) })
	}
	sort.SliceStable(steps, func(i, j int) bool {
		if steps[i].Kind != steps[j].Kind {
			return kindOrder(steps[i].Kind) < kindOrder(steps[j].Kind)
		}
		return steps[i].Name < steps[j].Name
	})
	return steps
}

func sameNetwork(b, l network.Summary) bool {
	return b.Driver == l.Driver && b.Internal == l.Internal && b.Attachable == l.Attachable &&
		maps.Equal(nonNil(b.Labels), nonNil(l.Labels)) && maps.Equal(userOptions(b.Options), userOptions(l.Options))
}

// userOptions leaves out what the engine assigns itself (an overlay's VXLAN IDs), which a
// re-created network gets anew.
func userOptions(opts map[string]string) map[string]string {
	out := maps.Clone(nonNil(opts))
	delete(out, "com.docker.network.driver.overlay.vxlanid_list")
	return out
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
func (b *Backup) Apply(ctx context.Context, c client.APIClient, steps []Step, live *Live) error {
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
	restored := map[string]bool{} // the kinds this restore may create
	for _, st := range steps {
		restored[st.Kind] = true
	}
	// recreate creates an object of the backup anew, by kind and name.
	recreate := func(kind, name string) (string, error) {
		switch kind {
		case KindNetwork:
			return createNetwork(ctx, c, networks[name])
		case KindSecret:
			return createSecret(ctx, c, secrets[name])
		case KindConfig:
			return createConfig(ctx, c, configs[name])
		}
		return b.createService(ctx, c, services[name], live)
	}
	// withFreshReferences runs a service step; when the engine says something it refers to
	// is not found, the view it was planned on is stale (a `docker stack rm` still under
	// way, for one): the cluster is read again, what the service needs and vanished is
	// created again from the backup, and the step runs once more.
	withFreshReferences := func(name string, step func() error) error {
		err := step()
		if !vanished(err) {
			return err
		}
		if rerr := b.refreshReferences(ctx, c, services[name], live, restored, recreate); rerr != nil {
			return fmt.Errorf("%w (and after reading the cluster again: %v)", err, rerr)
		}
		return step()
	}
	for _, st := range steps {
		if st.Action == "keep" {
			continue
		}
		if st.Action == "replace" && st.Kind == KindService {
			err := withFreshReferences(st.Name, func() error { return b.updateService(ctx, c, services[st.Name], live) })
			if err != nil {
				return fmt.Errorf("replace service %q: %w", st.Name, err)
			}
			continue
		}
		if st.Action == "replace" {
			if err := remove(ctx, c, st.Kind, live.objects[st.Kind][st.Name].id); err != nil {
				return fmt.Errorf("replace %s %q: remove the live one: %w", st.Kind, st.Name, err)
			}
		}
		var id string
		var err error
		if st.Kind == KindService {
			err = withFreshReferences(st.Name, func() (err error) {
				id, err = recreate(st.Kind, st.Name)
				return err
			})
		} else {
			id, err = recreate(st.Kind, st.Name)
		}
		if err != nil {
			return fmt.Errorf("restore %s %q: %w", st.Kind, st.Name, err)
		}
		live.objects[st.Kind][st.Name] = liveObject{id: id}
	}
	return nil
}

// vanished reports whether the engine refused a step because an object it names is gone.
// Not every engine version marks that as not-found: its words count too.
func vanished(err error) bool {
	return err != nil && (cerrdefs.IsNotFound(err) || strings.Contains(err.Error(), "not found"))
}

// refreshReferences reads the cluster again into live and creates, from the backup, what
// service s refers to and the cluster no longer holds, when its kind is being restored.
func (b *Backup) refreshReferences(ctx context.Context, c client.APIClient, s swarm.Service, live *Live,
	restored map[string]bool, recreate func(kind, name string) (string, error)) error {
	fresh, err := readLive(ctx, c)
	if err != nil {
		return err
	}
	live.objects = fresh
	for kind, names := range b.references(s) {
		for _, name := range names {
			if _, ok := live.id(kind, name); ok || !restored[kind] {
				continue
			}
			id, err := recreate(kind, name)
			if err != nil {
				return fmt.Errorf("re-create %s %q: %w", kind, name, err)
			}
			live.objects[kind][name] = liveObject{id: id}
		}
	}
	return nil
}

// references names the secrets, configs and networks a service of the backup refers to.
func (b *Backup) references(s swarm.Service) map[string][]string {
	refs := map[string][]string{}
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		for _, r := range cs.Secrets {
			refs[KindSecret] = append(refs[KindSecret], r.SecretName)
		}
		for _, r := range cs.Configs {
			refs[KindConfig] = append(refs[KindConfig], r.ConfigName)
		}
	}
	names := b.networkNames()
	for _, att := range s.Spec.TaskTemplate.Networks {
		refs[KindNetwork] = append(refs[KindNetwork], orDefault(names[att.Target], att.Target))
	}
	return refs
}

// networkNames maps the backup's network IDs to their names.
func (b *Backup) networkNames() map[string]string {
	names := map[string]string{}
	for _, n := range b.Networks {
		names[n.ID] = n.Name
	}
	for _, o := range b.State.Networks {
		names[o.ID] = o.Spec.Annotations.Name
	}
	return names
}

func remove(ctx context.Context, c client.APIClient, kind, id string) error {
	var err error
	switch kind {
	case KindSecret:
		_, err = c.SecretRemove(ctx, id, client.SecretRemoveOptions{})
	case KindConfig:
		_, err = c.ConfigRemove(ctx, id, client.ConfigRemoveOptions{})
	case KindNetwork:
		_, err = c.NetworkRemove(ctx, id, client.NetworkRemoveOptions{})
	}
	return err
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

// createService re-creates a service from the engine's spec of it.
func (b *Backup) createService(ctx context.Context, c client.APIClient, s swarm.Service, live *Live) (string, error) {
	spec, err := b.serviceSpec(s, live)
	if err != nil {
		return "", err
	}
	res, err := c.ServiceCreate(ctx, client.ServiceCreateOptions{Spec: spec})
	return res.ID, err
}

// updateService puts the backup's spec in place of a live service's; the engine rolls its
// tasks as it would for `docker service update`.
func (b *Backup) updateService(ctx context.Context, c client.APIClient, s swarm.Service, live *Live) error {
	spec, err := b.serviceSpec(s, live)
	if err != nil {
		return err
	}
	current := live.objects[KindService][s.Spec.Name].service
	_, err = c.ServiceUpdate(ctx, current.ID, client.ServiceUpdateOptions{Version: current.Version, Spec: spec})
	return err
}

// serviceSpec is a service's spec from the backup with its references pointed at the live
// objects of the same names.
func (b *Backup) serviceSpec(s swarm.Service, live *Live) (swarm.ServiceSpec, error) {
	spec := s.Spec
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		c := *cs
		c.Secrets = make([]*swarm.SecretReference, len(cs.Secrets))
		for i, r := range cs.Secrets {
			ref := *r
			id, ok := live.id(KindSecret, ref.SecretName)
			if !ok {
				return spec, fmt.Errorf("it uses secret %q, which is neither in the cluster nor restored (add secrets to --only)", ref.SecretName)
			}
			ref.SecretID = id
			c.Secrets[i] = &ref
		}
		c.Configs = make([]*swarm.ConfigReference, len(cs.Configs))
		for i, r := range cs.Configs {
			ref := *r
			id, ok := live.id(KindConfig, ref.ConfigName)
			if !ok {
				return spec, fmt.Errorf("it uses config %q, which is neither in the cluster nor restored (add configs to --only)", ref.ConfigName)
			}
			ref.ConfigID = id
			c.Configs[i] = &ref
		}
		spec.TaskTemplate.ContainerSpec = &c
	}
	names := b.networkNames()
	nets := make([]swarm.NetworkAttachmentConfig, len(spec.TaskTemplate.Networks))
	for i, att := range spec.TaskTemplate.Networks {
		name := orDefault(names[att.Target], att.Target) // or given by name
		id, ok := live.id(KindNetwork, name)
		if !ok {
			return spec, fmt.Errorf("it is attached to network %q, which is neither in the cluster nor restored (add networks to --only)", name)
		}
		att.Target = id
		nets[i] = att
	}
	spec.TaskTemplate.Networks = nets
	return spec, nil
}
