// Command ravel is a load balancer for bare-metal Kubernetes: it programs IPVS, iptables and
// VIP addresses from one declarative ClusterConfig merged with live endpoint state.
//
// This package only wires flags to the packages that do the work.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, shared by every subcommand.
const (
	exitOK       = 0
	exitInvalid  = 1 // the config (or the run) failed
	exitUsage    = 2 // unreadable file or bad usage
	exitWarnings = 3 // config valid but with warnings, under --strict
)

// exitError carries an exit code out of a cobra command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int { return runTo(args, os.Stdout, os.Stderr) }

// runTo runs the command line args, cobra's output (help) to stdout and errors to stderr,
// and returns the exit code.
func runTo(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "ravel:", ee.err)
		}
		return ee.code
	}
	// cobra's own errors (unknown flag, wrong number of arguments) are usage errors.
	fmt.Fprintln(stderr, "ravel:", err)
	return exitUsage
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ravel",
		Short: "Load balancer for bare-metal Kubernetes (IPVS director, realserver chains, VIPs)",
		Long: `ravel reads one declarative ClusterConfig (VIPs, ports mapped to Kubernetes services or
static backends, IPVS options), merges it with live Kubernetes endpoint state, and programs
the kernel: IPVS virtual services and realservers, iptables chains, VIP addresses.

Start with:
  ravel config validate FILE   check a config with the daemon's own loader
  ravel plan --config FILE     show what ravel would change, changing nothing
  ravel run --config FILE      run the daemon`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newConfigCmd(), newVersionCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	strictGroups(root)
	return root
}

// strictGroups makes every command group below the root refuse an unknown subcommand. cobra
// does that for the root only: `ravel config valdate FILE` printed config's help and exited
// 0, so a pipeline whose validate step had a typo passed. Now it exits 2 (a usage error) and
// names the subcommand meant, as the root does; the group alone still prints its help.
func strictGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictGroups(sub)
	}
	if !c.HasParent() || !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.SuggestionsMinimumDistance = 2 // cobra defaults it on the root's path only
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
		return &exitError{exitUsage, fmt.Errorf("%s\nrun '%s --help' for usage", msg, c.CommandPath())}
	}
}

// extraCommands lets the files of this package that wire the daemon (plan, run) register
// themselves without main.go knowing them.
var extraCommands []func() *cobra.Command
