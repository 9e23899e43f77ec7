package main

import (
	"fmt"
	"slices"

	"github.com/spf13/cobra"

	"github.com/ravel-lb/ravel/reconcile"
)

func init() { extraCommands = append(extraCommands, newPlanCmd) }

func newPlanCmd() *cobra.Command {
	var file, against string
	var nf nodeFlags
	c := &cobra.Command{
		Use:   "plan --config FILE",
		Short: "Print the changes ravel run would apply now; change nothing",
		Long: `Print the plan ravel run would apply now, and change nothing.

--against kernel (the default) reads ravel's objects from this machine's kernel (it needs
IPVS and root); --against empty diffs against an empty kernel, which works on any machine
and shows everything the config would program.

Lines start with "-" for removals, "~" for in-place edits and "+" for additions, in the
order ravel applies them.`,
		Example: "  ravel plan --config examples/static.yaml --against empty",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if against != "kernel" && against != "empty" {
				return &exitError{exitUsage, fmt.Errorf("--against must be kernel or empty, not %q", against)}
			}
			cfg, err := loadForCommand(file)
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), w.String())
			}
			node, err := nf.apply(cfg)
			if err != nil {
				return err
			}
			snap, err := oneSnapshot(cmd.Context(), cfg)
			if err != nil {
				return &exitError{exitInvalid, err}
			}
			desired, notes := reconcile.Desired(cfg, snap, node)
			for _, n := range notes {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: %s: %s\n", n.Service, n.Message)
			}
			actual := reconcile.NewState(cfg.Node.VIPInterface)
			if against == "kernel" {
				k, closeKernel, err := openKernel()
				if err != nil {
					return &exitError{exitInvalid, err}
				}
				defer closeKernel()
				keys := make([]string, 0, len(desired.Sysctls))
				for key := range desired.Sysctls {
					keys = append(keys, key)
				}
				slices.Sort(keys)
				actual, err = reconcile.ReadActual(k, cfg.Node.VIPInterface, reconcile.OwnedVIPs(cfg), keys)
				if err != nil {
					return &exitError{exitInvalid, fmt.Errorf("reading the kernel: %w", err)}
				}
			}
			plan := reconcile.Diff(desired, actual, reconcile.DiffOptions{
				Owned: reconcile.OwnedVIPs(cfg), DrainTimeout: cfg.Defaults.DrainTimeout.D(), Now: timeNow(),
			})
			fmt.Fprint(cmd.OutOrStdout(), plan.String())
			return nil
		},
	}
	c.Flags().StringVarP(&file, "config", "c", "/etc/ravel/ravel.yaml", "ClusterConfig file")
	c.Flags().StringVar(&against, "against", "kernel", "what to diff against: kernel or empty")
	nf.register(c.Flags())
	return c
}
