// Package buildinfo holds the version stamped into both binaries at build time.
package buildinfo

import (
	"fmt"
	"runtime/debug"
)

// Set with -ldflags "-X github.com/swarmbackup/swarmbackup/shared/buildinfo.Version=...".
var (
	Version = "dev"
	Commit  = ""
)

// String is the version as both plugins print it, for example "0.1.0 (commit 1a2b3c4)".
func String() string {
	commit := Commit
	if commit == "" {
		commit = vcsRevision()
	}
	if commit == "" {
		return Version
	}
	return fmt.Sprintf("%s (commit %s)", Version, commit)
}

func vcsRevision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 7 {
			return s.Value[:7]
		}
	}
	return ""
}
