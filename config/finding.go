package config

import (
	"fmt"
	"sort"
	"strings"
)

// Severity says whether a finding rejects the file.
type Severity string

// Severities.
const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Finding is one error or warning about a config file, located by line, column and key path.
type Finding struct {
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Column   int      `json:"column"`
	// Path is the key path in YAML vocabulary: "services[0].ipvs.scheduler".
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// String formats f as "file:line:col: path: message", with "warning: " before the path for
// warnings.
func (f Finding) String() string {
	var b strings.Builder
	if f.Line > 0 {
		fmt.Fprintf(&b, "%s:%d:%d: ", f.File, f.Line, f.Column)
	} else { // a finding about the file as a whole, or a key compared across two files
		fmt.Fprintf(&b, "%s: ", f.File)
	}
	if f.Severity == SeverityWarning {
		b.WriteString("warning: ")
	}
	if f.Path != "" {
		b.WriteString(f.Path)
		b.WriteString(": ")
	}
	b.WriteString(f.Message)
	return b.String()
}

// Findings is a list of findings in file order.
type Findings []Finding

func (fs Findings) sort() {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].Line != fs[j].Line {
			return fs[i].Line < fs[j].Line
		}
		if fs[i].Column != fs[j].Column {
			return fs[i].Column < fs[j].Column
		}
		return fs[i].Path < fs[j].Path
	})
}

// Errors is returned by Load when a file has at least one error. It carries every error found,
// and the warnings too.
type Errors struct {
	Errors   Findings
	Warnings Findings
}

func (e *Errors) Error() string {
	lines := make([]string, len(e.Errors))
	for i, f := range e.Errors {
		lines[i] = f.String()
	}
	return strings.Join(lines, "\n")
}
