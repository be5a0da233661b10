package backupset

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/swarmbackup/swarmbackup/shared/repository"
)

// ArmFile holds a restored cluster's armed set: when a set is restored with --full, every
// volume of the set is filled from the set's own snapshot on whichever node its task lands,
// whatever the volume's driver options say. The agents read the record when the engine
// creates a volume.
const ArmFile repository.FileKind = "armed"

// DefaultArmFor is how long a restore stays armed: long enough for every new machine to
// join and every task to land, short enough that a volume created weeks later is not
// filled with old data.
const DefaultArmFor = 7 * 24 * time.Hour

// Armed is a set armed for a restored cluster.
type Armed struct {
	Set     string    `json:"set"`
	Cluster string    `json:"cluster"`
	Time    time.Time `json:"time"`    // when the restore armed it
	Expires time.Time `json:"expires"` // after this the volumes are created as their options say
	Members []Member  `json:"members"`
}

// Arm records that the cluster's volumes are to be filled from set s, replacing whatever
// restore was armed for the cluster before.
func Arm(ctx context.Context, repo *repository.Repository, s *Set, now time.Time, armFor time.Duration) (*Armed, error) {
	a := &Armed{Set: s.ID, Cluster: s.Cluster, Time: now.UTC(), Expires: now.Add(armFor).UTC(), Members: s.Members}
	if err := repo.SaveNamedFile(ctx, ArmFile, s.Cluster, a); err != nil {
		return nil, fmt.Errorf("arm the restore of set %s: %w", short(s.ID), err)
	}
	return a, nil
}

// LoadArmed returns the set armed for a cluster, nil when none is, or it expired.
func LoadArmed(ctx context.Context, repo *repository.Repository, cluster string, now time.Time) (*Armed, error) {
	var a Armed
	err := repo.LoadNamedFile(ctx, ArmFile, cluster, &a)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the armed restore: %w", err)
	}
	if a.Cluster != cluster || !now.Before(a.Expires) {
		return nil, nil
	}
	return &a, nil
}

// ArmedAny returns the only set armed for any cluster, for a node that cannot tell which
// cluster it is in yet; nil when none is, an error when several clusters have one.
func ArmedAny(ctx context.Context, repo *repository.Repository, now time.Time) (*Armed, error) {
	var armed []*Armed
	if _, err := repository.LoadFiles(ctx, repo, ArmFile, func(_ repository.ID, a *Armed) {
		if now.Before(a.Expires) {
			armed = append(armed, a)
		}
	}); err != nil {
		return nil, fmt.Errorf("list armed restores: %w", err)
	}
	switch len(armed) {
	case 0:
		return nil, nil
	case 1:
		return armed[0], nil
	}
	return nil, fmt.Errorf("restores are armed for %d clusters and this node cannot tell which it is in yet", len(armed))
}

// Disarm removes a cluster's armed restore.
func Disarm(ctx context.Context, repo *repository.Repository, cluster string) error {
	err := repo.DeleteNamedFile(ctx, ArmFile, cluster)
	if notFound(err) {
		return nil
	}
	return err
}

// For returns the member a volume created on host is filled from; ok is false when the set
// holds no volume of that name. Volumes of one name on several nodes (node-scoped) go to
// the node of the same host name; with none, it is an error, since guessing would put one
// node's data in another's volume.
func (a *Armed) For(volume, host string) (m Member, ok bool, err error) {
	var found []Member
	for _, m := range a.Members {
		if m.Volume == volume {
			found = append(found, m)
		}
	}
	switch len(found) {
	case 0:
		return Member{}, false, nil
	case 1:
		return found[0], true, nil
	}
	hosts := make([]string, 0, len(found))
	for _, m := range found {
		if m.Host == host {
			return m, true, nil
		}
		hosts = append(hosts, m.Host)
	}
	sort.Strings(hosts)
	return Member{}, false, fmt.Errorf("set %s holds volume %s of several nodes (%s) and none is this host (%s): restore it by hand with `docker swarmbackup volume restore`",
		short(a.Set), volume, strings.Join(hosts, ", "), host)
}
