package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/ravel-lb/ravel/schema"
)

// MaxFileSize bounds what Load reads; a ClusterConfig of 10,000 services is about 1.5 MB.
const MaxFileSize = 32 << 20

// Config is a loaded, validated and normalized ClusterConfig. It is read-only: a reload builds
// a new one.
type Config struct {
	schema.ClusterConfig
	// File is the path it was loaded from.
	File string
	// Hash is the SHA-256 of the file's bytes; a reload of identical bytes is skipped.
	Hash [32]byte
	// Warnings are the normalizations applied, each with its position.
	Warnings Findings
}

// ReadError is returned when the file cannot be read at all (as opposed to *Errors, for a file
// that was read and is invalid).
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// Load reads, decodes, validates and normalizes the file at path. On success it returns the
// effective config (with its warnings). On an invalid file it returns *Errors listing every
// error; on an unreadable one, *ReadError.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ReadError{err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, &ReadError{err}
	}
	if len(data) > MaxFileSize {
		return nil, &ReadError{fmt.Errorf("%s: larger than %d bytes", path, MaxFileSize)}
	}
	return Parse(path, data)
}

// Parse is Load for bytes already read; name is used in findings.
func Parse(name string, data []byte) (*Config, error) {
	d := &decoder{file: name, pos: map[string]pos{}}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			d.errs = append(d.errs, Finding{Severity: SeverityError, File: name, Line: 1, Column: 1, Message: "the file is empty"})
		} else {
			d.errs = append(d.errs, syntaxFinding(name, err))
		}
		return nil, &Errors{Errors: d.errs}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errs = append(d.errs, Finding{Severity: SeverityError, File: name, Line: extra.Line, Column: extra.Column, Message: "a second YAML document; a ClusterConfig file holds exactly one"})
	} else if !errors.Is(err, io.EOF) {
		d.errs = append(d.errs, syntaxFinding(name, err))
	}

	c := schema.Default()
	doc := &root
	if len(doc.Content) == 1 && doc.Content[0].Kind != yaml.MappingNode {
		d.errorf(doc.Content[0], "", "the file must be a mapping of keys (apiVersion, kind, ...), not %s", describe(doc.Content[0]))
		return nil, &Errors{Errors: d.errs}
	}
	d.decode(doc, reflect.ValueOf(&c).Elem(), "")
	if _, ok := d.pos["apiVersion"]; !ok {
		d.errAt("", "apiVersion is required (apiVersion: %s)", schema.APIVersion)
	}
	if _, ok := d.pos["kind"]; !ok {
		d.errAt("", "kind is required (kind: %s)", schema.Kind)
	}
	d.checkFields(&c)
	d.checkCrossField(&c)
	d.resolve(&c)
	d.errs.sort()
	d.warns.sort()
	if len(d.errs) > 0 {
		return nil, &Errors{Errors: d.errs, Warnings: d.warns}
	}
	return &Config{ClusterConfig: c, File: name, Hash: sha256.Sum256(data), Warnings: d.warns}, nil
}

// yaml.v3 reports syntax errors as "yaml: line N: message" (sometimes "yaml: message" with no
// line); ravel puts them in its own file:line:col form. yaml.v3 does not give a column here.
var reYAMLLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

func syntaxFinding(name string, err error) Finding {
	f := Finding{Severity: SeverityError, File: name, Line: 1, Column: 1, Message: "YAML syntax: " + err.Error()}
	if m := reYAMLLine.FindStringSubmatch(err.Error()); m != nil {
		f.Line, _ = strconv.Atoi(m[1])
		f.Message = "YAML syntax: " + m[2]
	}
	return f
}
