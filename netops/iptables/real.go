package iptables

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops"
	"github.com/ravel-lb/ravel/netops/iptables/chains"
)

var _ Tables = (*Real)(nil)

// Real programs the kernel's nat table by running iptables-save and iptables-restore: one save
// and at most one restore per Apply, jumps included (see chains.Patch for why not one
// `iptables -I` per jump, with go-iptables). Its methods are safe for concurrent use; they run
// one at a time.
type Real struct {
	mu    sync.Mutex // held by Apply, Cleanup and Dump for their whole run; guards other
	e     engine
	other bool // the last iptables-save warned that the other backend has tables too

	// Set by New, read-only afterwards.
	fam     family.Family
	tool    string // "iptables" or "ip6tables": the base name of every binary run
	mode    string // "nf_tables" or "legacy"
	saveBin string
	restBin string
	restArg []string // iptables-restore's arguments before the batch on stdin
	netns   string   // path of the network namespace to run in, "" for the caller's
}

// Option configures New.
type Option func(*options)

type options struct {
	mode  string
	netns string
	fam   family.Family
}

// WithFamily picks the table of family f: IPv6 runs the ip6tables tools (ip6tables-save,
// ip6tables-restore, the same backend choice), whose nat table is separate from iptables'.
// Without it New programs IPv4.
func WithFamily(f family.Family) Option { return func(o *options) { o.fam = f } }

// WithMode picks the iptables backend, "nft" or "legacy", instead of the one the `iptables` on
// PATH uses. Tests use it to run the same checks against both.
func WithMode(mode string) Option { return func(o *options) { o.mode = mode } }

// WithNetns runs every iptables command in the network namespace at path (or named name under
// /run/netns, as `ip netns add` makes them). Tests use it to program throwaway namespaces.
//
// It is done with setns(2) on a locked OS thread around each command's fork (see netops.InNetns)
// rather than by prefixing `ip netns exec NAME`: the commands keep their own argv and exit
// status, nothing depends on ip(8), and the test's servers and clients join namespaces the
// same way.
func WithNetns(pathOrName string) Option {
	return func(o *options) {
		if !strings.Contains(pathOrName, "/") {
			pathOrName = "/run/netns/" + pathOrName
		}
		o.netns = pathOrName
	}
}

// New returns Tables for the chains under prefix (config iptables.chain; see
// chains.Options.Validate).
//
// iptables exists in two backends, nf_tables and legacy, whose rules live in different kernel
// tables: a rule written by one is invisible to the other's save. Debian and RHEL switch
// `iptables`, `iptables-save` and `iptables-restore` together (one alternative), and kube-proxy
// and kubelet detect the backend the same way, so New asks the `iptables` on PATH which it is
// (`iptables --version` says "(nf_tables)" or "(legacy)") and then runs that backend's own
// binaries (iptables-nft-save, iptables-legacy-restore, ...) when they exist, falling back to
// the plain names after checking they report the same backend.
func New(prefix string, opts ...Option) (*Real, error) {
	if err := (chains.Options{Chain: prefix}).Validate(); err != nil {
		return nil, fmt.Errorf("iptables: %w: %w", err, netops.ErrInvalid)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	r := &Real{netns: o.netns, fam: o.fam, tool: "iptables"}
	switch o.fam {
	case 0:
		r.fam = family.IPv4
	case family.IPv4:
	case family.IPv6:
		r.tool = "ip6tables"
	default:
		return nil, fmt.Errorf("iptables: %v: %w", o.fam, netops.ErrInvalid)
	}
	r.e = engine{prefix: prefix, b: realBackend{r}}

	main := r.tool
	switch o.mode {
	case "":
	case "nft", "legacy":
		main = r.tool + "-" + o.mode
	default:
		return nil, fmt.Errorf("iptables mode %q: want nft or legacy: %w", o.mode, netops.ErrInvalid)
	}
	mode, version, err := binaryMode(main)
	if err != nil {
		return nil, err
	}
	r.mode = mode
	short := map[string]string{"nf_tables": "nft", "legacy": "legacy"}[mode]
	for _, pick := range []struct {
		dst  *string
		tool string
	}{{&r.saveBin, "save"}, {&r.restBin, "restore"}} {
		*pick.dst, err = exec.LookPath(r.tool + "-" + short + "-" + pick.tool)
		if err != nil {
			*pick.dst, err = exec.LookPath(r.tool + "-" + pick.tool)
			if err != nil {
				return nil, fmt.Errorf("%s-%s not found: %w", r.tool, pick.tool, err)
			}
			if m, _, err := binaryMode(*pick.dst); err != nil || m != mode {
				return nil, fmt.Errorf("%s is not the %s backend of %s (%q, %v)", *pick.dst, mode, main, m, err)
			}
		}
	}
	r.restArg = []string{"--noflush"}
	// -w: wait up to 5 s for the xtables lock that legacy iptables (and kube-proxy) hold while
	// writing, instead of failing at once; nf_tables needs no lock and ignores it.
	// iptables-restore has -w since 1.6.2.
	if slices.Compare(version[:], []int{1, 6, 2}) >= 0 {
		r.restArg = append([]string{"-w", "5"}, r.restArg...)
	}
	return r, nil
}

var versionRE = regexp.MustCompile(`v(\d+)\.(\d+)\.(\d+)(?: \((\w+)\))?`)

// binaryMode runs `bin --version` and returns its backend, "nf_tables" or "legacy" (versions
// before 1.8 print no backend: they are legacy), and its version.
func binaryMode(bin string) (mode string, version [3]int, err error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "", version, fmt.Errorf("%s --version: %w", bin, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", version, fmt.Errorf("%s --version: no version in %q", bin, out)
	}
	for i := range version {
		version[i], _ = strconv.Atoi(string(m[i+1]))
	}
	if len(m[4]) == 0 {
		return "legacy", version, nil
	}
	return string(m[4]), version, nil
}

// Family is the family of the table r programs.
func (r *Real) Family() family.Family { return r.fam }

// Mode is the backend in use, "nf_tables" or "legacy".
func (r *Real) Mode() string { return r.mode }

// Apply implements Tables.
func (r *Real) Apply(ctx context.Context, rs chains.Ruleset) (chains.Patch, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.e.apply(ctx, rs)
}

// Cleanup implements Tables.
func (r *Real) Cleanup(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.e.cleanup(ctx)
}

// OtherBackendInUse reports whether the last read of the table found rules in the other
// iptables backend too (iptables-nft-save warns "iptables-legacy tables present"). Both are
// live in the kernel, each invisible to the other's tools: if kube-proxy writes legacy rules
// while ravel writes nf_tables ones, ravel cannot see or keep its jump in front of
// KUBE-SERVICES. The daemon should warn; the fix is the same backend for both.
func (r *Real) OtherBackendInUse() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.other
}

// Dump implements Tables.
func (r *Real) Dump(ctx context.Context) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.e.dump(ctx)
}

// realBackend runs the binaries New chose, in r.netns when set.
type realBackend struct{ r *Real }

func (b realBackend) save(ctx context.Context) (string, error) {
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, b.r.saveBin, "-t", chains.Table)
	// stdout only: iptables-nft-save warns on stderr when legacy tables also exist.
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := netops.InNetns(b.r.netns, cmd.Run); err != nil {
		return "", commandError(b.r.saveBin, err, stderr.String())
	}
	b.r.other = strings.Contains(stderr.String(), "tables present") // r.mu is held by the caller
	return out.String(), nil
}

func (b realBackend) restore(ctx context.Context, batch string) error {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, b.r.restBin, b.r.restArg...)
	cmd.Stdin, cmd.Stderr = strings.NewReader(batch), &stderr
	if err := netops.InNetns(b.r.netns, cmd.Run); err != nil {
		return restoreError(b.r.restBin, err, stderr.String(), batch)
	}
	return nil
}

// failedLine finds "line N failed" (legacy) or "line N: ..." (nf_tables), the messages of
// errors found when the batch is committed; their line numbers are exact. (nf_tables' parse
// errors, "Error occurred at line: N", can point one line too far: they are not quoted.)
var failedLine = regexp.MustCompile(`line (\d+)(?: failed|:)`)

// restoreError is commandError with the batch line that failed quoted.
func restoreError(bin string, err error, stderr, batch string) error {
	m := failedLine.FindStringSubmatch(stderr)
	if m == nil {
		return commandError(bin, err, stderr)
	}
	n, _ := strconv.Atoi(m[1])
	ls := lines(batch)
	if n < 1 || n > len(ls) {
		return commandError(bin, err, stderr)
	}
	if classify(stderr) == nil {
		stderr += " (" + legacyReason(ls, n) + ")"
	}
	return commandError(bin, err, fmt.Sprintf("%s [batch line %d: %s]", stderr, n, ls[n-1]))
}

// legacyReason says why line n of a batch failed when legacy iptables-restore only says
// "line N failed" (it drops the errno of commands that fail against its copy of the table).
// The command and whether its chain exists at that point tell: a chain exists when it is
// built-in or declared earlier in the batch (ravel declares every chain it deletes, so its own
// -X failures are told apart exactly; an undeclared chain is taken as missing). The reasons are
// the messages single-command iptables prints for the same errno.
func legacyReason(ls []string, n int) string {
	f := strings.Fields(ls[n-1])
	if len(f) < 2 {
		return "unknown reason"
	}
	cmd, chain := f[0], f[1]
	exists := slices.Contains([]string{"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"}, chain) ||
		slices.ContainsFunc(ls[:n-1], func(l string) bool { return strings.HasPrefix(l, ":"+chain+" ") })
	switch {
	case !exists:
		return "No chain/target/match by that name"
	case cmd == "-X":
		return "Too many links" // EMLINK: referenced (or, for a flushed chain, not empty)
	case cmd == "-D":
		return "Bad rule (does a matching rule exist in that chain?)"
	case cmd == "-I":
		return "Index of insertion too big"
	}
	return "unknown reason"
}

// commandError wraps a failed iptables command with its stderr and error class.
func commandError(bin string, err error, stderr string) error {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(stderr, "Try `", "\nTry `")), " ")
	if i := strings.Index(msg, "Try `"); i >= 0 {
		msg = strings.TrimSpace(msg[:i]) // drop the usage hint
	}
	if class := classify(stderr); class != nil {
		return fmt.Errorf("%s: %s: %w (%w)", bin, msg, class, err)
	}
	return fmt.Errorf("%s: %s: %w", bin, msg, err)
}

// classify maps iptables' messages to error classes. The two backends word them differently:
//
//	missing chain or target: nft "Chain 'X' does not exist", legacy "Couldn't load target `X'"
//	                         or "No chain/target/match by that name"
//	chain in use (-X):       nft "CHAIN_DEL failed (Device or resource busy)",
//	                         legacy "Too many links" (referenced) / "Directory not empty"
//	bad name or value:       nft "too long (must be under 29 chars)", legacy "Invalid chain
//	                         name", both "Need TCP, UDP, SCTP or DCCP with port specification",
//	                         nft "Index of insertion too big"
//
// Legacy iptables-restore reports most failures of -A/-D/-I/-X as just "line N failed":
// restoreError adds the reason (legacyReason) before classifying.
func classify(stderr string) error {
	switch {
	case strings.Contains(stderr, "does not exist"), strings.Contains(stderr, "Couldn't load target"),
		strings.Contains(stderr, "No chain/target/match"), strings.Contains(stderr, "Bad rule (does a matching rule exist"):
		return netops.ErrNotExist
	case strings.Contains(stderr, "Device or resource busy"), strings.Contains(stderr, "Too many links"),
		strings.Contains(stderr, "Directory not empty"):
		return ErrInUse
	case strings.Contains(stderr, "already exists"), strings.Contains(stderr, "File exists"):
		return netops.ErrExist
	case strings.Contains(stderr, "too long"), strings.Contains(stderr, "Invalid"), strings.Contains(stderr, "Index of insertion"),
		strings.Contains(stderr, "Need TCP, UDP"), strings.Contains(stderr, "Bad argument"),
		// An address of the other family: iptables says "invalid mask `128'" or "Invalid
		// address format", ip6tables "host/network `10.0.0.1' not found" or "Bad IP address".
		strings.Contains(stderr, "invalid mask"), strings.Contains(stderr, "host/network"),
		strings.Contains(stderr, "Bad IP address"):
		return netops.ErrInvalid
	}
	return nil
}
