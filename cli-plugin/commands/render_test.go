package commands

import (
	"strings"
	"testing"

	"github.com/swarmbackup/swarmbackup/shared/controlplane"
)

// diff and a restore's plan need a swarm backup and a live cluster: the end-to-end tests run
// them against real engines; here their listings are rendered in every format.
func TestDiffAndRestorePlansPrintAsDockerListingsDo(t *testing.T) {
	changes := []controlplane.Change{
		{Kind: controlplane.KindSecret, Name: "db_password", Change: "removed"},
		{Kind: controlplane.KindService, Name: "shop_web", Change: "changed", Detail: "spec"},
		{Kind: controlplane.KindNetwork, Name: "shop_default", Change: "added"},
	}
	steps := []controlplane.Step{
		{Kind: controlplane.KindSecret, Name: "db_password", Action: "create"},
		{Kind: controlplane.KindService, Name: "shop_web", Action: "keep", Reason: "exists and differs: --replace replaces it"},
	}
	out := &strings.Builder{}
	for _, tc := range []struct {
		golden string
		format string
		quiet  bool
		write  func(listFormat) error
	}{
		{"diff-quiet", "", true, func(f listFormat) error { return writeChanges(out, f, changes) }},
		{"diff", "", false, func(f listFormat) error { return writeChanges(out, f, changes) }},
		{"diff-json", "json", false, func(f listFormat) error { return writeChanges(out, f, changes) }},
		{"diff-template", "{{.Kind}}/{{.Name}}: {{.Change}}", false, func(f listFormat) error { return writeChanges(out, f, changes) }},
		{"restore-plan", "", false, func(f listFormat) error { return writeSteps(out, f, steps) }},
		{"restore-plan-json", "json", false, func(f listFormat) error { return writeSteps(out, f, steps) }},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			out.Reset()
			if err := tc.write(listFormat{format: tc.format, quiet: tc.quiet}); err != nil {
				t.Fatal(err)
			}
			assertGolden(t, out.String(), tc.golden)
		})
	}
}
