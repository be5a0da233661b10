package controlplane

import (
	"context"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmbackup/swarmbackup/shared/swarmstate"
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

// staleEngine answers listings from a view that a concurrent `docker stack rm` overtakes:
// the networks it lists vanish before the restore uses them.
type staleEngine struct {
	client.APIClient // the calls a restore does not make panic
	networks         map[string]network.Summary
	services         map[string]swarm.ServiceSpec
	vanish           []string // removed right after the first listing
	listed           bool
}

func (e *staleEngine) NetworkList(context.Context, client.NetworkListOptions) (client.NetworkListResult, error) {
	var out client.NetworkListResult
	for _, n := range e.networks {
		out.Items = append(out.Items, n)
	}
	if !e.listed {
		e.listed = true
		for _, id := range e.vanish {
			delete(e.networks, id)
		}
	}
	return out, nil
}

func (e *staleEngine) NetworkCreate(_ context.Context, name string, opts client.NetworkCreateOptions) (client.NetworkCreateResult, error) {
	id := "net-" + name + "-new"
	e.networks[id] = network.Summary{Network: network.Network{ID: id, Name: name, Driver: opts.Driver, Scope: "swarm"}}
	return client.NetworkCreateResult{ID: id}, nil
}

func (e *staleEngine) ServiceCreate(_ context.Context, opts client.ServiceCreateOptions) (client.ServiceCreateResult, error) {
	for _, att := range opts.Spec.TaskTemplate.Networks {
		if _, ok := e.networks[att.Target]; !ok {
			return client.ServiceCreateResult{}, cerrdefs.ErrNotFound.WithMessage("network " + att.Target + " not found")
		}
	}
	e.services[opts.Spec.Name] = opts.Spec
	return client.ServiceCreateResult{ID: "svc-" + opts.Spec.Name}, nil
}

func (e *staleEngine) SecretList(context.Context, client.SecretListOptions) (client.SecretListResult, error) {
	return client.SecretListResult{}, nil
}

func (e *staleEngine) ConfigList(context.Context, client.ConfigListOptions) (client.ConfigListResult, error) {
	return client.ConfigListResult{}, nil
}

func (e *staleEngine) ServiceList(context.Context, client.ServiceListOptions) (client.ServiceListResult, error) {
	return client.ServiceListResult{}, nil
}

func (e *staleEngine) NodeList(context.Context, client.NodeListOptions) (client.NodeListResult, error) {
	return client.NodeListResult{}, nil
}

// A stack's restore right after `docker stack rm`: the plan keeps the stack's network, which
// the engine still listed; by the time the service is created the network is gone. The
// restore reads the cluster again and puts the network back instead of failing.
func TestARestoreOutrunByStackRmPutsBackWhatVanished(t *testing.T) {
	ctx := context.Background()
	b := &Backup{
		State:    &swarmstate.State{},
		Networks: []network.Summary{{Network: network.Network{ID: "net-backup", Name: "test_default", Driver: "overlay", Scope: "swarm"}}},
		Services: []swarm.Service{{Spec: swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Name: "test_backup"},
			TaskTemplate: swarm.TaskSpec{Networks: []swarm.NetworkAttachmentConfig{{Target: "net-backup"}}},
		}}},
	}
	engine := &staleEngine{
		networks: map[string]network.Summary{"net-live": {Network: network.Network{ID: "net-live", Name: "test_default", Driver: "overlay", Scope: "swarm"}}},
		services: map[string]swarm.ServiceSpec{},
		vanish:   []string{"net-live"},
	}
	live, err := ReadLive(ctx, engine)
	if err != nil {
		t.Fatal(err)
	}
	sel := Selection{Kinds: map[string]bool{KindNetwork: true, KindService: true}}
	steps := b.Plan(live, sel)
	if err := b.Apply(ctx, engine, steps, live); err != nil {
		t.Fatalf("restore: %v", err)
	}
	spec, ok := engine.services["test_backup"]
	if !ok {
		t.Fatal("the service was not restored")
	}
	if got := spec.TaskTemplate.Networks[0].Target; got != "net-test_default-new" {
		t.Errorf("the service is attached to %s, want the re-created network", got)
	}
}
