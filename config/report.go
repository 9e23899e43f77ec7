package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Findings are reported through these: the decoder reports at the node it is looking at, the
// later checks at the key path they are about (positions.go finds where it was written).

// fail reports that the value at the current path could not be decoded; later checks of that
// path (and of the keys under it) are skipped, since they would only repeat the same mistake.
func (d *decoder) fail(n *yaml.Node, format string, args ...any) {
	d.failAt(n, d.here(), format, args...)
}

func (d *decoder) failAt(n *yaml.Node, path, format string, args ...any) {
	d.bad[path] = true
	d.add(Finding{Severity: SeverityError, File: d.file, Line: n.Line, Column: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
}

// errorf reports an error at node n without marking its path as undecodable.
func (d *decoder) errorf(n *yaml.Node, path, format string, args ...any) {
	d.add(Finding{Severity: SeverityError, File: d.file, Line: n.Line, Column: n.Column, Path: path, Message: fmt.Sprintf(format, args...)})
}

func (d *decoder) add(f Finding) {
	if len(d.errs) >= maxErrors {
		d.dropped++
		return
	}
	d.errs = append(d.errs, f)
}

// errAt reports an error about path at the position where it was written. Errors under a path
// that already failed to decode are dropped: they would only restate that mistake.
func (d *decoder) errAt(path, format string, args ...any) {
	if d.isBad(path) {
		return
	}
	line, col := d.at(path)
	d.add(Finding{Severity: SeverityError, File: d.file, Line: line, Column: col, Path: path, Message: fmt.Sprintf(format, args...)})
}

// errAtKey is errAt for an error about a key itself, located at the key.
func (d *decoder) errAtKey(path, format string, args ...any) {
	if d.isBad(path) {
		return
	}
	line, col := d.atKey(path)
	d.add(Finding{Severity: SeverityError, File: d.file, Line: line, Column: col, Path: path, Message: fmt.Sprintf(format, args...)})
}

// warnAt reports a normalization of the value at path.
func (d *decoder) warnAt(path, format string, args ...any) {
	line, col := d.at(path)
	d.warns = append(d.warns, Finding{Severity: SeverityWarning, File: d.file, Line: line, Column: col, Path: path, Message: fmt.Sprintf(format, args...)})
}
