package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"

	"github.com/ravel-lb/ravel/schema"
)

// MaxFileSize bounds what Load reads; a ClusterConfig of 10,000 services is 1.5 to 3 MB.
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
func Load(path string) (*Config, error) { return (*Cache)(nil).Load(path) }

// Load is config.Load reusing what the cache's previous parse of the same file decoded.
func (c *Cache) Load(path string) (*Config, error) {
	data, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	return c.Parse(path, data)
}

// ReadFile reads a config file of at most MaxFileSize bytes; errors are *ReadError.
func ReadFile(path string) ([]byte, error) { return readInto(nil, path) }

// readInto is ReadFile into buf's array when it is large enough.
func readInto(buf []byte, path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &ReadError{err}
	}
	defer f.Close()
	// Read into a buffer of the file's size (io.ReadAll alone grows one step by step, a
	// dozen copies for a file of 7 MB); a file that grows meanwhile still reads whole.
	// ReadFrom wants MinRead bytes free before each read, the one that sees the end too.
	b := bytes.NewBuffer(buf[:0])
	if st, err := f.Stat(); err == nil && st.Size() > 0 && st.Size() <= MaxFileSize {
		b.Grow(int(st.Size()) + bytes.MinRead)
	}
	_, err = b.ReadFrom(io.LimitReader(f, MaxFileSize+1))
	data := b.Bytes()
	if err != nil {
		return nil, &ReadError{err}
	}
	if len(data) > MaxFileSize {
		return nil, &ReadError{fmt.Errorf("%s: larger than %d bytes", path, MaxFileSize)}
	}
	return data, nil
}

// Parse is Load for bytes already read; name is used in findings.
func Parse(name string, data []byte) (*Config, error) { return (*Cache)(nil).Parse(name, data) }

// Parse is config.Parse reusing what the cache's previous parse of name decoded.
func (c *Cache) Parse(name string, data []byte) (*Config, error) {
	if c != nil {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.consume(data)
	}
	// The file's SHA-256 is computed beside the parse: for a reload through the cache it was
	// most of the time (7 MB: 5 ms on the host, 168 ms of a 288 ms reload under the QEMU
	// guest's emulation, which has no SHA instructions), and a reload parses little.
	hashed := make(chan [32]byte, 1)
	go func() { hashed <- sha256.Sum256(data) }()
	cfg, err := c.parse(name, data)
	h := <-hashed // also on failure: data must not be read after Parse returns (Cache.ReadFile)
	if cfg != nil {
		cfg.Hash = h
	}
	return cfg, err
}

func (c *Cache) parse(name string, data []byte) (*Config, error) {
	if len(data) >= chunkMin {
		if root, list, ok := parseChunked(data, c.previous(name)); ok {
			c.start(name, list)
			cfg, err := decodeTree(name, data, root, list)
			if !list.failed.Load() {
				c.finish(list)
				return cfg, err
			}
			// An item did not parse alone: parse the whole file, as yaml.v3 reads it.
		}
	}
	d := newDecoder(name)
	root, extra, err := parseYAML(data)
	if err != nil {
		d.add(syntaxFinding(name, data, err))
		return nil, &Errors{Errors: d.errs}
	}
	if root == nil {
		d.add(Finding{Severity: SeverityError, File: name, Line: 1, Column: 1, Message: "the file is empty"})
		return nil, &Errors{Errors: d.errs}
	}
	if extra != nil {
		d.add(Finding{Severity: SeverityError, File: name, Line: extra.Line, Column: extra.Column, Message: "a second YAML document; a ClusterConfig file holds exactly one"})
	}
	if len(root.Content) == 1 && root.Content[0].Kind != yaml.MappingNode {
		top := root.Content[0]
		d.add(Finding{Severity: SeverityError, File: name, Line: top.Line, Column: top.Column, Message: "the file must be a mapping of keys (apiVersion, kind, ...), not " + describe(top)})
		return nil, &Errors{Errors: d.errs}
	}
	return d.decodeTree(data, root, nil)
}

// decodeTree decodes, checks and normalizes the tree of a file; list is its services list
// when it was parsed in chunks.
func decodeTree(name string, data []byte, root *yaml.Node, list *itemList) (*Config, error) {
	return newDecoder(name).decodeTree(data, root, list)
}

func (d *decoder) decodeTree(data []byte, root *yaml.Node, list *itemList) (*Config, error) {
	name := d.file
	nodes, expanding := countNodes(root, 0)
	d.budget = min(10_000+16*nodes, maxBudget)
	if list != nil {
		// The items are not in the tree; a file cut in chunks has no aliases to expand.
		d.budget, d.chunks = maxBudget, list
	}
	d.parallel = !expanding && parallelParts() > 1
	if len(root.Content) == 1 {
		d.root = root.Content[0]
	}
	c := schema.Default()
	d.decode(root, reflect.ValueOf(&c).Elem())
	if list != nil && list.failed.Load() {
		return nil, nil // the caller parses the whole file
	}
	if !d.overflow {
		if !d.written("apiVersion") {
			d.errAt("apiVersion", "is required (apiVersion: %s)", schema.APIVersion)
		}
		if !d.written("kind") {
			d.errAt("kind", "is required (kind: %s)", schema.Kind)
		}
		d.foldProtocols(&c)
		d.checkFields(&c)
		d.checkCrossField(&c)
		d.resolve(&c)
	}
	if d.dropped > 0 {
		d.errs = append(d.errs, Finding{Severity: SeverityError, File: name, Line: 1, Column: 1,
			Message: fmt.Sprintf("too many errors: %d more are not listed", d.dropped)})
	}
	d.errs.sort()
	d.warns.sort()
	if len(d.errs) > 0 {
		return nil, &Errors{Errors: d.errs, Warnings: d.warns}
	}
	return &Config{ClusterConfig: c, File: name, Warnings: d.warns}, nil // Parse adds the Hash
}

// maxBudget bounds the nodes decode visits in any file (see decoder.budget).
const maxBudget = 8_000_000

// parseYAML parses the first YAML document of data into root (nil for a file with no document).
// extra is a second document, if the file has one. Empty documents (a bare `---` before or
// after the document) are skipped. A panic of the YAML library becomes an error.
func parseYAML(data []byte) (root, extra *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			root, extra, err = nil, nil, fmt.Errorf("yaml: the YAML parser failed: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return root, nil, nil
			}
			return nil, nil, err
		}
		switch {
		case emptyDocument(&doc):
		case root == nil:
			root = &doc
		default:
			return root, &doc, nil
		}
	}
}

// emptyDocument reports whether n is a document with nothing in it (a bare `---`).
func emptyDocument(n *yaml.Node) bool {
	if len(n.Content) == 0 {
		return true
	}
	c := n.Content[0]
	return len(n.Content) == 1 && c.Kind == yaml.ScalarNode && c.Tag == "!!null" && c.Value == "" && c.Anchor == ""
}

// countNodes counts the nodes of the tree under n without following aliases, and reports
// whether it holds aliases or merge keys, which make decoding visit some nodes many times.
func countNodes(n *yaml.Node, depth int) (count int, expanding bool) {
	if depth > 20000 {
		return 0, true
	}
	count, expanding = 1, n.Kind == yaml.AliasNode || isMerge(n)
	for _, ch := range n.Content {
		c, e := countNodes(ch, depth+1)
		count += c
		expanding = expanding || e
	}
	return count, expanding
}
