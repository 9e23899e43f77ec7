package main

import (
	"fmt"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and revision are set at build time with -ldflags "-X main.version=... -X
// main.revision=..." (the Makefile does); revision falls back to the VCS stamp of go build.
var (
	version  = "dev"
	revision = ""
)

// buildRevision is the VCS revision ravel was built from, "" if unknown.
func buildRevision() string {
	if revision != "" {
		return revision
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return ""
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print ravel's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rev := ""
			if r := buildRevision(); len(r) >= 12 {
				rev = " (" + r[:12] + ")"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ravel %s%s\n", version, rev)
			return nil
		},
	}
}
