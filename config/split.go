package config

import (
	"bytes"
	"runtime"
	"sync"

	"gopkg.in/yaml.v3"
)

// A file of 10,000 services is a few megabytes, nearly all of it the top-level services list,
// and yaml.v3 parses it on one CPU. parseSplit parses such a list in parts, one per CPU, and
// the rest of the document beside them, then joins the parts into the tree one parse would
// have built (tests and the fuzz target compare the two).
//
// The split is made on text, at the lines that start the items of the list, so it is only
// attempted where the text allows no doubt: one top-level `services:` line with nothing after
// it, items at one indentation, no tab, no carriage return, no document marker. Anything else,
// and any part that fails to parse, sends the file to the ordinary parse, which reports
// syntax errors with their positions.

// splitMin is the size of a file from which parseSplit is tried.
var splitMin = 256 << 10

// parseSplit returns the document of data parsed in parts, and false when it did not apply.
func parseSplit(data []byte, parts int) (*yaml.Node, bool) {
	if parts < 2 || bytes.ContainsAny(data, "\t\r") || bytes.HasPrefix(data, []byte("---")) ||
		bytes.Contains(data, []byte("\n---")) || bytes.Contains(data, []byte("\n...")) {
		return nil, false
	}
	r, ok := findServices(data)
	if !ok || len(r.items) < 2*parts {
		return nil, false
	}
	// Cut the items into parts of similar size.
	cuts := []int{0}
	for p := 1; p < parts; p++ {
		want := r.items[0] + (r.end-r.items[0])*p/parts
		i := cuts[len(cuts)-1] + 1
		for i < len(r.items)-1 && r.items[i] < want {
			i++
		}
		if i < len(r.items) && i > cuts[len(cuts)-1] {
			cuts = append(cuts, i)
		}
	}
	cuts = append(cuts, len(r.items))

	// The rest of the document keeps its line numbers: the list's lines become empty lines.
	lines := bytes.Count(data[r.start:r.end], []byte("\n"))
	rest := make([]byte, 0, len(data)-(r.end-r.start)+lines)
	rest = append(rest, data[:r.start]...)
	rest = append(rest, bytes.Repeat([]byte("\n"), lines)...)
	rest = append(rest, data[r.end:]...)

	var wg sync.WaitGroup
	seqs := make([]*yaml.Node, len(cuts)-1)
	var main *yaml.Node
	wg.Go(func() {
		if root, extra, err := parseDocs(rest); err == nil && extra == nil {
			main = root
		}
	})
	for k := range seqs {
		wg.Go(func() {
			lo, hi := r.items[cuts[k]], r.end
			if cuts[k+1] < len(r.items) {
				hi = r.items[cuts[k+1]]
			}
			root, extra, err := parseDocs(data[lo:hi])
			if err != nil || extra != nil || root == nil || len(root.Content) != 1 {
				return
			}
			seq := root.Content[0]
			if seq.Kind != yaml.SequenceNode || len(seq.Content) != cuts[k+1]-cuts[k] {
				return
			}
			shiftLines(seq, bytes.Count(data[:lo], []byte("\n")), 0)
			seqs[k] = seq
		})
	}
	wg.Wait()

	if main == nil || len(main.Content) != 1 || main.Content[0].Kind != yaml.MappingNode {
		return nil, false
	}
	var items []*yaml.Node
	for _, s := range seqs {
		if s == nil {
			return nil, false
		}
		items = append(items, s.Content...)
	}
	top := main.Content[0]
	found := false
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value != "services" {
			continue
		}
		// The key must be the line the split was made at, and hold nothing else.
		if found || k.Line != r.keyLine || k.Column != 1 || !isNull(v) || v.Tag != "!!null" || v.Value != "" {
			return nil, false
		}
		found = true
		seq := *seqs[0]
		seq.Content = items
		top.Content[i+1] = &seq
	}
	if !found {
		return nil, false
	}
	return main, true
}

// servicesRegion is where the items of the top-level services list are in the text.
type servicesRegion struct {
	keyLine    int   // 1-based line of `services:`
	start, end int   // byte offsets of the list's lines
	items      []int // byte offset of the line of each item
}

// findServices finds the one line `services:` at column 1 (a key of the top mapping) with
// only a comment after it, and the block list that follows.
func findServices(data []byte) (servicesRegion, bool) {
	var r servicesRegion
	line, indent := 0, -1
	keyFound := false
	for off := 0; off < len(data); {
		line++
		end := bytes.IndexByte(data[off:], '\n')
		next := len(data)
		if end >= 0 {
			next = off + end + 1
			end += off
		} else {
			end = len(data)
		}
		text := data[off:end]
		switch {
		case !keyFound:
			if bytes.HasPrefix(text, []byte("services")) {
				rest := bytes.TrimLeft(text[len("services"):], " ")
				if len(rest) == 0 || rest[0] != ':' {
					break
				}
				if tail := bytes.TrimLeft(rest[1:], " "); len(tail) > 0 && tail[0] != '#' {
					return r, false // `services: [...]` or a value on the line
				}
				keyFound, r.keyLine, r.start = true, line, next
			}
		case r.end == 0:
			body := bytes.TrimLeft(text, " ")
			ind := len(text) - len(body)
			isItem := len(body) > 0 && body[0] == '-' && (len(body) == 1 || body[1] == ' ')
			switch {
			case len(body) == 0 || body[0] == '#':
				// Blank lines and comments belong to the list.
			case indent < 0 && isItem:
				indent = ind
				r.items = append(r.items, off)
			case indent < 0:
				return r, false // the list is empty or not a block list
			case isItem && ind == indent:
				r.items = append(r.items, off)
			case ind > indent:
				// A line inside an item.
			default:
				r.end = off // the next key of the top mapping
			}
		default:
			if bytes.HasPrefix(text, []byte("services")) {
				return r, false // a second services key: the ordinary parse reports it
			}
		}
		off = next
	}
	if keyFound && r.end == 0 {
		r.end = len(data)
	}
	return r, keyFound && len(r.items) > 0
}

// shiftLines adds by to the line of every node under n (a part was parsed from its own first
// line). An alias is a node of its own in the tree; its target is shifted where it stands.
func shiftLines(n *yaml.Node, by int, depth int) {
	if depth > 10000 {
		return
	}
	n.Line += by
	for _, c := range n.Content {
		shiftLines(c, by, depth+1)
	}
}

// parallelParts is how many parts parseSplit and the parallel checks use.
func parallelParts() int { return runtime.GOMAXPROCS(0) }
