package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestUnknownSubcommands walks every command group (the root included): an unknown subcommand
// exits 2 with "unknown command", a typo of a real one also names it (did you mean), and the
// group alone prints its help and exits 0. Before, `ravel config valdate FILE` printed
// config's help and exited 0.
func TestUnknownSubcommands(t *testing.T) {
	var groups [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		if c.HasAvailableSubCommands() {
			groups = append(groups, path)
		}
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub, append(append([]string{}, path...), sub.Name()))
			}
		}
	}
	walk(newRootCmd(), nil)
	if len(groups) < 2 {
		t.Fatalf("command groups %v: want the root and config at least", groups)
	}
	for _, path := range groups {
		name := strings.Join(append([]string{"ravel"}, path...), " ")
		t.Run(name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := runTo(append(append([]string{}, path...), "nosuchcommand"), &out, &errOut); code != exitUsage ||
				!strings.Contains(errOut.String(), `unknown command "nosuchcommand"`) {
				t.Errorf("%s nosuchcommand: exit %d, stderr %q; want exit %d and unknown command", name, code, errOut.String(), exitUsage)
			}
			// A typo of the group's first subcommand: one letter left out.
			var group *cobra.Command
			group, _, _ = newRootCmd().Find(path)
			real := group.Commands()[0].Name()
			typo := real[:1] + real[2:]
			out.Reset()
			errOut.Reset()
			if code := runTo(append(append([]string{}, path...), typo, "x"), &out, &errOut); code != exitUsage ||
				!strings.Contains(errOut.String(), "Did you mean this?\n\t"+real) {
				t.Errorf("%s %s x: exit %d, stderr %q; want exit %d and a suggestion of %s", name, typo, code, errOut.String(), exitUsage, real)
			}
			if len(path) > 0 {
				out.Reset()
				if code := runTo(path, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "Available Commands") {
					t.Errorf("%s alone: exit %d, output %q; want its help and 0", name, code, out.String())
				}
			}
		})
	}
}
