package commands

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/cli/cli/command"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/swarmbackup/swarmbackup/shared/agentapi"
	"github.com/swarmbackup/swarmbackup/shared/buildinfo"
)

type versionOptions struct {
	format string
}

// versionInfo is what `version --format json` prints.
type versionInfo struct {
	CLIPlugin    string
	VolumePlugin volumePluginVersion
	Engine       engineVersion
}

type volumePluginVersion struct {
	Name    string
	ID      string `json:",omitempty"`
	Enabled bool
	Version string `json:",omitempty"`
	// Problem says why the plugin's version could not be read.
	Problem string `json:",omitempty"`
}

type engineVersion struct {
	Version    string
	APIVersion string
	// NegotiatedAPIVersion is the API version this client speaks with the engine.
	NegotiatedAPIVersion string
}

func newVersionCommand(dockerCli command.Cli) *cobra.Command {
	var opts versionOptions
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Show the versions of the CLI plugin, the volume plugin and the engine",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVersion(cmd.Context(), dockerCli, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.format, "format", "f", "", formatFlagUsage)
	return cmd
}

func runVersion(ctx context.Context, dockerCli command.Cli, opts versionOptions) error {
	info := versionInfo{CLIPlugin: buildinfo.String()}
	sv, err := dockerCli.Client().ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		return fmt.Errorf("ask the engine for its version: %w", err)
	}
	info.Engine = engineVersion{
		Version:              sv.Version,
		APIVersion:           sv.APIVersion,
		NegotiatedAPIVersion: dockerCli.Client().ClientVersion(),
	}
	info.VolumePlugin = volumePluginInfo(ctx, dockerCli.Client())
	return writeFormatted(dockerCli.Out(), opts.format, info, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "CLI plugin:\t%s\n", info.CLIPlugin)
		vp := info.VolumePlugin
		switch {
		case vp.Version != "":
			fmt.Fprintf(tw, "Volume plugin:\t%s\n", vp.Version)
		default:
			fmt.Fprintf(tw, "Volume plugin:\tunknown (%s)\n", vp.Problem)
		}
		fmt.Fprintf(tw, "Engine:\t%s (API %s, using %s)\n", info.Engine.Version, info.Engine.APIVersion, info.Engine.NegotiatedAPIVersion)
		return tw.Flush()
	})
}

// volumePluginInfo finds the managed plugin in the engine and asks it for its version over
// its socket, which the host sees under the plugin's ID.
func volumePluginInfo(ctx context.Context, api client.APIClient) volumePluginVersion {
	v := volumePluginVersion{Name: PluginName}
	p, err := api.PluginInspect(ctx, PluginName, client.PluginInspectOptions{})
	if cerrdefs.IsNotFound(err) {
		v.Problem = "not installed in this engine: run `make install`"
		return v
	}
	if err != nil {
		v.Problem = "cannot look it up: " + err.Error()
		return v
	}
	v.ID, v.Enabled = p.Plugin.ID, p.Plugin.Enabled
	if !v.Enabled {
		v.Problem = fmt.Sprintf("installed but disabled: run `docker plugin enable %s`", PluginName)
		return v
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := agentapi.NewClient(agentapi.SocketPath(v.ID)).Version(ctx)
	if err != nil {
		v.Problem = err.Error()
		return v
	}
	v.Version = resp.Version
	return v
}
