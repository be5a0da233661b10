package commands

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/docker/cli/cli"
	"github.com/docker/cli/cli/command"
	units "github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/cli-plugin/progress"
	"github.com/swarmbackup/swarmbackup/shared/backupset"
	"github.com/swarmbackup/swarmbackup/shared/checker"
	"github.com/swarmbackup/swarmbackup/shared/controlplane"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

type verifyOptions struct {
	repo          repoOptions
	all           bool
	readData      bool
	format        string
	unlockKeyFile string
}

func newVerifyCommand(dockerCli command.Cli) *cobra.Command {
	var opts verifyOptions
	cmd := &cobra.Command{
		Use:   "verify [OPTIONS] [ID|--all]",
		Short: "Check that backups are intact: present, authenticated, decodable",
		Long: "Check that backups are intact. Without --read-data, every record, index and listing is\n" +
			"read and authenticated and every pack is found; with it, all data is read back and re-hashed.\n" +
			"Exits 0 only when everything checked is intact.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && opts.all {
				return fmt.Errorf("give a backup ID or --all, not both")
			}
			id := ""
			if len(args) == 1 {
				id = args[0]
			}
			return runVerify(cmd.Context(), dockerCli, opts, id)
		},
	}
	cmd.ValidArgsFunction = completeIDs(&opts.repo, snapshot.KindSwarm, snapshot.KindVolume, kindSet)
	opts.repo.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&opts.all, "all", false, "Verify every backup (the default without an ID)")
	cmd.Flags().BoolVar(&opts.readData, "read-data", false, "Read back and re-hash all data")
	cmd.Flags().StringVar(&opts.format, "format", "", formatFlagUsage)
	cmd.Flags().StringVar(&opts.unlockKeyFile, "unlock-key-file", "", "Unlock key of autolocked swarm backups, to decode them too")
	return cmd
}

func runVerify(ctx context.Context, dockerCli command.Cli, opts verifyOptions, id string) error {
	repo, err := opts.repo.open(ctx)
	if err != nil {
		return err
	}
	unlockKey, err := readUnlockKey(opts.unlockKeyFile)
	if err != nil {
		return err
	}
	copts := checker.Options{ReadData: opts.readData}
	list, _, err := snapshot.List(ctx, repo)
	if err != nil {
		return err
	}
	var setProblems []checker.Problem
	if s, err := findSet(ctx, repo, id); err != nil {
		return err
	} else if s != nil {
		// A set is checked whole: every snapshot it names must be there and intact.
		copts.Snapshots, setProblems = setSnapshots(s, list)
		list = copts.Snapshots
	} else if id != "" {
		sn, err := snapshot.Find(list, id)
		if err != nil {
			return err
		}
		copts.Snapshots = []*snapshot.Snapshot{sn}
		list = copts.Snapshots
	}
	bar := progress.New(dockerCli.Err(), !opts.readData || opts.format != "", "verify", 0, false)
	copts.Progress = func(done, total int) { bar.Set(int64(done), int64(total)) }
	var rep *checker.Report
	if len(copts.Snapshots) > 0 || id == "" {
		rep, err = checker.Check(ctx, repo, copts)
	} else {
		rep = &checker.Report{} // a set whose every snapshot is gone
	}
	bar.Done()
	if err != nil {
		return err
	}
	rep.Problems = append(setProblems, rep.Problems...)
	if rep.OK() {
		rep.Problems = append(rep.Problems, decodeSwarmBackups(ctx, repo, list, unlockKey)...)
	}
	err = writeFormatted(dockerCli.Out(), opts.format, rep, func(w io.Writer) error {
		for _, p := range rep.Problems {
			fmt.Fprintln(w, p.String())
		}
		if rep.UnindexedPacks > 0 {
			fmt.Fprintf(w, "%d pack(s) (%s) that no index lists, left by interrupted backups: prune removes them\n",
				rep.UnindexedPacks, units.BytesSize(float64(rep.UnindexedBytes)))
		}
		what := "structure"
		if opts.readData {
			what = fmt.Sprintf("structure and data (%d packs read)", rep.PacksRead)
		}
		if rep.OK() {
			_, err := fmt.Fprintf(w, "%d backup(s) intact: %s checked\n", rep.Snapshots, what)
			return err
		}
		_, err := fmt.Fprintf(w, "%d problem(s) in %d backup(s): %s checked\n", len(rep.Problems), rep.Snapshots, what)
		return err
	})
	if err != nil {
		return err
	}
	if !rep.OK() {
		return cli.StatusError{StatusCode: 1, Status: "verify found damage"}
	}
	return nil
}

// decodeSwarmBackups brings each swarm backup back and decodes it offline, as a restore
// would: keys, raft snapshot, log and store.
func decodeSwarmBackups(ctx context.Context, repo *repository.Repository, list []*snapshot.Snapshot, unlockKey string) []checker.Problem {
	var problems []checker.Problem
	for _, sn := range list {
		if sn.Kind != snapshot.KindSwarm {
			continue
		}
		meta, err := controlplane.ReadMeta(sn)
		if err != nil {
			problems = append(problems, checker.Problem{Snapshot: sn.ID.Short(), What: err.Error()})
			continue
		}
		if meta.Autolock && unlockKey == "" {
			continue // its structure was checked; decoding needs --unlock-key-file
		}
		b, err := controlplane.Open(ctx, repo, sn, os.TempDir(), unlockKey)
		if err != nil {
			problems = append(problems, checker.Problem{Snapshot: sn.ID.Short(), What: "decode: " + err.Error()})
			continue
		}
		b.Close()
	}
	return problems
}

// setSnapshots returns the snapshots a set names, and a problem for each one that is gone.
func setSnapshots(s *backupset.Set, list []*snapshot.Snapshot) ([]*snapshot.Snapshot, []checker.Problem) {
	byID := map[string]*snapshot.Snapshot{}
	for _, sn := range list {
		byID[sn.ID.String()] = sn
	}
	var found []*snapshot.Snapshot
	var problems []checker.Problem
	for _, id := range s.Snapshots() {
		if sn, ok := byID[id]; ok {
			found = append(found, sn)
		} else {
			problems = append(problems, checker.Problem{Snapshot: shorten(id, 8), What: "set " + shorten(s.ID, 12) + " names it, and it is gone"})
		}
	}
	return found, problems
}
