package main

import (
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

func init() { extraCommands = append(extraCommands, newManCmd) }

// newManCmd writes the man pages (section 1) of ravel and every subcommand into a directory
// (ravel.1, ravel-config.1, ravel-config-validate.1, ...), generated from the CLI's own help
// so that they never disagree with --help. Hidden: the packages install its output.
func newManCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "man DIR",
		Short:  "Write ravel's man pages (roff) into DIR, generated from the CLI's help",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			root.DisableAutoGenTag = true // the same pages for the same binary: reproducible packages
			hdr := &doc.GenManHeader{Section: "1", Source: "ravel " + version, Manual: "ravel manual"}
			return doc.GenManTree(root, hdr, args[0])
		},
	}
}
