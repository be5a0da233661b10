package main

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/minio/minio-go/v7"
	"golang.org/x/sync/errgroup"

	"github.com/swarmbackup/swarmbackup/shared/backup"
	"github.com/swarmbackup/swarmbackup/shared/config"
	"github.com/swarmbackup/swarmbackup/shared/pruner"
	"github.com/swarmbackup/swarmbackup/shared/repository"
	"github.com/swarmbackup/swarmbackup/shared/restorer"
	"github.com/swarmbackup/swarmbackup/shared/retention"
	"github.com/swarmbackup/swarmbackup/shared/snapshot"
)

// A peer is one way of backing up the data set, run as child processes so that each one's
// peak memory is its own.
type peer struct {
	name    string
	restore bool // whether it can restore (the raw upload cannot)
	// commands returns the argv of init (may be nil), backup and restore.
	initCmds    func(e *env, bucket string) [][]string
	backupCmds  func(e *env, bucket, src string) [][]string
	restoreCmds func(e *env, bucket, dst string) [][]string
	// restoredRoot is where a restore into dst puts the data set's root.
	restoredRoot func(dst, src string) string
}

func self(args ...string) []string {
	exe, _ := os.Executable()
	return append([]string{exe}, args...)
}

func peers(e *env) []peer {
	same := func(dst, _ string) string { return dst }
	ps := []peer{
		{
			name: "swarmbackup", restore: true,
			backupCmds:   func(e *env, b, src string) [][]string { return [][]string{self("ours", "backup", b, src)} },
			restoreCmds:  func(e *env, b, dst string) [][]string { return [][]string{self("ours", "restore", b, dst)} },
			restoredRoot: same,
		},
		{
			name: "tar+zstd", restore: true,
			backupCmds:   func(e *env, b, src string) [][]string { return [][]string{self("tar", "backup", b, src)} },
			restoreCmds:  func(e *env, b, dst string) [][]string { return [][]string{self("tar", "restore", b, dst)} },
			restoredRoot: same,
		},
	}
	if e.restic != "" {
		ps = append(ps, peer{
			name: "restic", restore: true,
			initCmds:   func(e *env, b string) [][]string { return [][]string{{e.restic, "init", "-q"}} },
			backupCmds: func(e *env, b, src string) [][]string { return [][]string{{e.restic, "backup", "-q", src}} },
			restoreCmds: func(e *env, b, dst string) [][]string {
				return [][]string{{e.restic, "restore", "-q", "latest", "--target", dst}}
			},
			restoredRoot: func(dst, src string) string { return filepath.Join(dst, src) },
		})
	}
	if e.kopia != "" {
		ps = append(ps, peer{
			name: "kopia", restore: true,
			initCmds: func(e *env, b string) [][]string {
				return [][]string{{e.kopia, "repository", "create", "s3", "--bucket=" + b, "--endpoint=" + e.endpoint, "--disable-tls", "--no-persist-credentials"}}
			},
			backupCmds: func(e *env, b, src string) [][]string {
				return [][]string{{e.kopia, "snapshot", "create", "--no-progress", src}}
			},
			restoreCmds: func(e *env, b, dst string) [][]string {
				return [][]string{self("kopia-restore-latest", dst)}
			},
			restoredRoot: same,
		})
	}
	ps = append(ps, peer{
		name:       "raw upload",
		backupCmds: func(e *env, b, src string) [][]string { return [][]string{self("raw", "backup", b, src)} },
	})
	return ps
}

// ours runs swarmbackup's own engine: `bench ours backup|restore|prune BUCKET DIR`. A BUCKET that
// is an absolute path is a local repository instead, to compare with the plugin's default.
func ours(ctx context.Context, e *env, op, bucket, dir string) error {
	lookup := func(k string) (string, bool) {
		switch k {
		case "AWS_ACCESS_KEY_ID":
			return e.access, true
		case "AWS_SECRET_ACCESS_KEY":
			return e.secret, true
		}
		return "", false
	}
	repoURL := "s3:http://" + e.endpoint + "/" + bucket
	if filepath.IsAbs(bucket) {
		repoURL = bucket
	}
	be, err := config.OpenBackend(ctx, repoURL, lookup)
	if err != nil {
		return err
	}
	// A local cache, as the CLI and the plugin keep, and as the peers have.
	repo, err := repository.OpenOrInit(ctx, be, e.password, repository.WithCache(os.Getenv("SWARMBACKUP_CACHE_DIR")))
	if err != nil {
		return err
	}
	switch op {
	case "backup":
		_, err = backup.Run(ctx, repo, backup.Source{Kind: snapshot.KindVolume, Name: "bench", Path: dir}, backup.Options{})
		return err
	case "prune":
		_, err = pruner.Prune(ctx, repo, pruner.Options{Policy: retention.Policy{Last: 1}, MaxUnused: 0.05})
		return err
	case "restore":
		list, _, err := snapshot.List(ctx, repo)
		if err != nil {
			return err
		}
		sn := snapshot.Latest(list, snapshot.Chain{Kind: snapshot.KindVolume, Source: "bench"})
		if sn == nil {
			return fmt.Errorf("no snapshot")
		}
		_, err = restorer.Restore(ctx, repo, sn.Tree, dir, restorer.Options{Root: sn.Root})
		return err
	}
	return fmt.Errorf("ours: unknown operation %q", op)
}

// tarPeer is the approach of sidecar volume-backup tools: a full tar of the tree, zstd
// compressed, streamed as one object, every time; restore downloads and unpacks it.
func tarPeer(ctx context.Context, e *env, op, bucket, dir string) error {
	client, err := e.client()
	if err != nil {
		return err
	}
	const object = "backup.tar.zst"
	switch op {
	case "backup":
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(writeTarZstd(pw, dir)) }()
		_, err := client.PutObject(ctx, bucket, object, pr, -1, minio.PutObjectOptions{PartSize: 16 << 20})
		return err
	case "restore":
		obj, err := client.GetObject(ctx, bucket, object, minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		return readTarZstd(obj, dir)
	}
	return fmt.Errorf("tar: unknown operation %q", op)
}

func writeTarZstd(w io.Writer, dir string) error {
	zw, err := zstd.NewWriter(w)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr, err := tar.FileInfoHeader(info, "")
		if err != nil {
			return err
		}
		hdr.Name = rel
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

func readTarZstd(r io.Reader, dir string) error {
	zr, err := zstd.NewReader(r)
	if err != nil {
		return err
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		p := filepath.Join(dir, hdr.Name)
		if !strings.HasPrefix(p, filepath.Clean(dir)) {
			return fmt.Errorf("tar entry %q escapes the target", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(hdr.Mode).Perm())
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
}

// rawUpload puts every file as its own object, many at once: no chunking, compression,
// encryption or index. It bounds what the network and MinIO allow.
func rawUpload(ctx context.Context, e *env, bucket, dir string) error {
	client, err := e.client()
	if err != nil {
		return err
	}
	// Sixteen uploads at once, the first failure stopping the rest.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if gctx.Err() != nil {
			return filepath.SkipAll
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		g.Go(func() error {
			_, err := client.FPutObject(gctx, bucket, rel, p, minio.PutObjectOptions{})
			return err
		})
		return nil
	})
	if werr := g.Wait(); werr != nil {
		return werr
	}
	return err
}

// kopiaRestoreLatest restores the newest kopia snapshot: kopia restores by snapshot ID.
func kopiaRestoreLatest(e *env, dst string) error {
	out, err := exec.Command(e.kopia, "snapshot", "list", "--all", "--json").Output()
	if err != nil {
		return fmt.Errorf("kopia snapshot list: %w", err)
	}
	var snaps []struct {
		ID        string `json:"id"`
		StartTime string `json:"startTime"`
	}
	if err := json.Unmarshal(out, &snaps); err != nil {
		return err
	}
	if len(snaps) == 0 {
		return fmt.Errorf("kopia has no snapshot")
	}
	sort.Slice(snaps, func(i, j int) bool { return snaps[i].StartTime < snaps[j].StartTime })
	cmd := exec.Command(e.kopia, "snapshot", "restore", snaps[len(snaps)-1].ID, dst)
	cmd.Stdout, cmd.Stderr = io.Discard, os.Stderr
	return cmd.Run()
}
