package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/schema"
)

func newConfigCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "config",
		Short: "Validate, print and describe ClusterConfig files",
	}
	c.AddCommand(newValidateCmd(), newPrintCmd(), newSchemaCmd(), newImportRavelCmd())
	return c
}

func newValidateCmd() *cobra.Command {
	var strict bool
	var output string
	c := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check config files with exactly the loader the daemon uses",
		Long: `Check config files with exactly the loader the daemon uses.

Prints "FILE: OK" for a valid file, and otherwise every finding as
"file:line:col: path.to.key: message". Warnings are normalizations the daemon applies
(an unknown scheduler becomes wrr, an unknown forwarding method becomes dr, flags that do
not belong to the scheduler are dropped).

Exit status: 0 every file valid (warnings allowed), 1 a file is invalid, 2 a file cannot be
read or bad usage, 3 warnings with --strict.`,
		Example: "  ravel config validate /etc/ravel/ravel.yaml\n  ravel config validate --strict --output json examples/*.yaml",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			if output != "text" && output != "json" {
				return &exitError{exitUsage, fmt.Errorf("--output must be text or json, not %q", output)}
			}
			code := validateFiles(cmd.OutOrStdout(), files, strict, output == "json")
			if code != exitOK {
				return &exitError{code: code}
			}
			return nil
		},
	}
	c.Flags().BoolVar(&strict, "strict", false, "treat warnings as failures (exit 3)")
	c.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return c
}

// fileResult is one file's entry in --output json.
type fileResult struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	ReadErr  string           `json:"readError,omitempty"`
	Findings []config.Finding `json:"findings"`
}

func validateFiles(w io.Writer, files []string, strict, asJSON bool) int {
	code := exitOK
	worse := func(c int) {
		// unreadable (2) > invalid (1) > warnings (3) > ok (0)
		rank := map[int]int{exitOK: 0, exitWarnings: 1, exitInvalid: 2, exitUsage: 3}
		if rank[c] > rank[code] {
			code = c
		}
	}
	var results []fileResult
	for _, f := range files {
		r := fileResult{File: f, Findings: []config.Finding{}}
		cfg, err := config.Load(f)
		var verrs *config.Errors
		var rerr *config.ReadError
		switch {
		case err == nil:
			r.Valid = true
			r.Findings = append(r.Findings, cfg.Warnings...)
			if len(cfg.Warnings) > 0 && strict {
				worse(exitWarnings)
			}
		case errors.As(err, &verrs):
			r.Findings = append(append(r.Findings, verrs.Errors...), verrs.Warnings...)
			worse(exitInvalid)
		case errors.As(err, &rerr):
			r.ReadErr = rerr.Error()
			worse(exitUsage)
		default:
			r.ReadErr = err.Error()
			worse(exitUsage)
		}
		results = append(results, r)
		if asJSON {
			continue
		}
		switch {
		case r.ReadErr != "":
			fmt.Fprintf(w, "%s: cannot read: %s\n", f, r.ReadErr)
		case r.Valid && len(r.Findings) == 0:
			fmt.Fprintf(w, "%s: OK\n", f)
		default:
			for _, fd := range r.Findings {
				fmt.Fprintln(w, fd.String())
			}
			if r.Valid {
				fmt.Fprintf(w, "%s: OK (%d warnings)\n", f, len(r.Findings))
			}
		}
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(results)
	}
	return code
}

func newPrintCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "print FILE",
		Short: "Print the effective config: defaults and normalizations applied",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadForCommand(args[0])
			if err != nil {
				return err
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintln(cmd.ErrOrStderr(), w.String())
			}
			enc := yaml.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent(2)
			defer enc.Close()
			return enc.Encode(&cfg.ClusterConfig)
		},
	}
}

func newImportRavelCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import-ravel FILE.json",
		Short: "Print the ravel config equivalent to a Ravel (Comcast) ClusterConfig JSON",
		Long: `Print the ravel config equivalent to a Ravel (Comcast) ClusterConfig: the JSON held in
Ravel's ConfigMap (vipPool, labels, config, config6, mtuConfig, ipv6), keys matched
case-insensitively as Ravel's decoder did. The YAML goes to stdout; every part that does not
map is a warning on stderr, with its JSON path: IPv6 (config6, ipv6Enabled, ipv6), MTUs,
entries with neither tcpEnabled nor udpEnabled (Ravel programmed nothing for them), and
Ravel's own normalizations (an unknown scheduler ran as wrr, an unknown forwarding method as
g, lThreshold >= uThreshold dropped both). Ravel took the node's role and interfaces from
flags: set node in the output, or pass --role, --interface, --node-name to ravel run.

Exit status: 0 printed (warnings or not); 1 nothing printed, because the result does not pass
ravel's loader (a VIP or backend ravel refuses, such as a loopback address: the error names
it); 2 the file is unreadable or not Ravel's JSON.`,
		Example: "  kubectl -n ravel get configmap ravel -o jsonpath='{.data.config}' > ravel.json\n" +
			"  ravel config import-ravel ravel.json > /etc/ravel/ravel.yaml\n  ravel config validate /etc/ravel/ravel.yaml",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return &exitError{exitUsage, err}
			}
			out, findings, err := config.ImportRavel(args[0], data)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			for _, f := range findings {
				fmt.Fprintln(cmd.ErrOrStderr(), f.String())
			}
			// The daemon's own loader checks what was written, before anyone installs it.
			if _, err := config.Parse("(imported)", out); err != nil {
				return &exitError{exitInvalid, fmt.Errorf("the imported config does not load:\n%w", err)}
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
}

func newSchemaCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "schema",
		Short: "Print the JSON Schema of the ClusterConfig format (for yaml-language-server)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(schema.JSONSchema())
			return err
		},
	}
}

// loadForCommand loads a config for a command that needs a valid one, mapping failures to the
// validate exit codes.
func loadForCommand(path string) (*config.Config, error) { return loadCached(nil, path) }

// loadCached is loadForCommand keeping what it decoded in cache, for the reloads.
func loadCached(cache *config.Cache, path string) (*config.Config, error) {
	cfg, err := cache.Load(path)
	var rerr *config.ReadError
	switch {
	case err == nil:
		return cfg, nil
	case errors.As(err, &rerr):
		return nil, &exitError{exitUsage, err}
	default:
		return nil, &exitError{exitInvalid, fmt.Errorf("invalid config:\n%w", err)}
	}
}
