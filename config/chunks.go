package config

import (
	"bytes"
	"reflect"
	"sync"
	"sync/atomic"

	"go.yaml.in/yaml/v3"

	"github.com/ravel-lb/ravel/schema"
)

// A long file is parsed one service at a time. yaml.v3 builds a node of about 180 bytes for
// every key and value: the tree of a 7 MB file of 10,000 services × 20 backends holds 1.1
// million nodes and 190 MiB, most of the loader's time and all of its peak memory. Every
// service item of a block `services:` list is parsed by yaml.v3 on its own, decoded and
// dropped, so at most a few items' trees are alive at once, the items are parsed on every
// CPU, and a reload reuses the services whose text did not change (Cache).
//
// The cut is made by lines, never by a second reading of YAML: the list's items are the
// lines from one `- ` at the list's indentation to the next. yaml.v3 parses every piece;
// whatever the cut cannot be sure of falls back to one parse of the whole file, which gives
// the same result and is also what reports syntax errors. The cut is refused for anchors,
// aliases and merge keys (an item could refer to another), tabs and carriage returns,
// directives and document markers, a services key that is written twice or that has a
// value on its own line, and an item that is not exactly one list item when parsed alone
// (a quoted or flow value that runs over the cut, say). TestChunkedParseMatchesWhole and
// FuzzParse check that both ways give the same config and the same findings.

// chunkMin is the file size from which services are parsed one at a time; smaller files are
// parsed whole, which is cheap at that size. A variable for the tests.
var chunkMin = 64 << 10

// chunk is one service item of the list: its bytes in the file and the line it starts on.
type chunk struct{ start, end, line int }

// cutAt is where splitServices cut a file, besides its items: the services key's line, the
// lines the items take, their indentation and the bytes they span. A reload starts from it
// (resplit).
type cutAt struct{ keyLine, removed, indent, itemsStart, itemsEnd int }

// itemList is the services list of a file parsed in chunks. node stands for the list in the
// tree of the rest of the file; it has no content: decode and lookup ask for the items.
type itemList struct {
	node  *yaml.Node
	data  []byte
	items []chunk
	head  []byte // the file without the items
	cut   cutAt
	// same: items below sameBelow and from sameFrom on are, byte for byte and line for
	// line, the previous parse's items of the same index (resplit knows it; the cache need
	// not compare them). Both 0 when unknown.
	sameBelow, sameFrom int
	reused              []bool // services[i] came from the previous parse (Cache)
	// final: services[i] is the previous parse's effective service, shared as it is (same
	// text under the same rest of the file: the defaults it was resolved with are the same).
	final  []bool
	failed atomic.Bool // an item did not parse alone: Parse starts over with the whole file

	mu    sync.Mutex
	trees map[int]*yaml.Node // items parsed again for position lookups (findings are few)

	prev *cached // the previous parse of the file, or nil
	next *cached // this parse, for the next one
}

// splitServices cuts data into the rest of the file and the items of its top-level block
// services list. ok is false when it cannot be sure of the cut (see above).
func splitServices(data []byte) (head []byte, list *itemList, keyLine, removed int, ok bool) {
	// One IndexByte per byte value: vectorized, unlike ContainsAny over a set (7 ms for 7 MB).
	for _, c := range []byte("&*\t\r") {
		if bytes.IndexByte(data, c) >= 0 {
			return nil, nil, 0, 0, false
		}
	}
	if bytes.Contains(data, []byte("<<")) {
		return nil, nil, 0, 0, false
	}
	const (
		before = iota // looking for the services key
		first         // after it: blank and comment lines, then the first item
		inList        // in the items
		after         // past the list
	)
	state, indent := before, 0
	list = &itemList{data: data}
	itemsStart, itemsEnd := 0, len(data)
	for off, line := 0, 1; off < len(data); line++ {
		next, body, ind, blank, item := lineAt(data, off)
		if !blank && ind == 0 && (bytes.HasPrefix(body, []byte("%")) || bytes.HasPrefix(body, []byte("---")) || bytes.HasPrefix(body, []byte("..."))) {
			return nil, nil, 0, 0, false // a directive or a document marker
		}
		switch state {
		case before:
			if ind == 0 && isServicesKey(body) {
				state, keyLine = first, line
			}
		case first:
			switch {
			case blank:
			case item:
				state, indent, itemsStart = inList, ind, off
				list.items = append(list.items, chunk{start: off, line: line})
			default:
				return nil, nil, 0, 0, false // a value that is not a block list
			}
		case inList:
			switch {
			case blank || ind > indent:
			case ind == indent && item:
				list.items[len(list.items)-1].end = off
				list.items = append(list.items, chunk{start: off, line: line})
			case ind == 0 && isServicesKey(body):
				return nil, nil, 0, 0, false // written twice
			case ind == 0:
				state, itemsEnd = after, off
			default:
				return nil, nil, 0, 0, false // neither an item nor a top-level key
			}
		case after:
			if ind == 0 && isServicesKey(body) {
				return nil, nil, 0, 0, false // written twice
			}
		}
		off = next
	}
	if len(list.items) == 0 {
		return nil, nil, 0, 0, false
	}
	list.items[len(list.items)-1].end = itemsEnd
	head = make([]byte, 0, itemsStart+len(data)-itemsEnd)
	head = append(append(head, data[:itemsStart]...), data[itemsEnd:]...)
	removed = bytes.Count(data[itemsStart:itemsEnd], []byte("\n"))
	list.cut = cutAt{keyLine: keyLine, removed: removed, indent: indent, itemsStart: itemsStart, itemsEnd: itemsEnd}
	list.finishCut(head)
	return head, list, keyLine, removed, true
}

// finishCut sets the list's head and its node in the tree, once its items and cut are known.
func (s *itemList) finishCut(head []byte) {
	s.head = head
	s.node = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: s.items[0].line, Column: s.cut.indent + 1}
}

// lineAt reads the line at off: where the next one starts, its text without the
// indentation, the indentation, whether it is blank or a comment, and whether it starts a
// list item.
func lineAt(data []byte, off int) (next int, body []byte, ind int, blank, item bool) {
	next = len(data)
	if end := bytes.IndexByte(data[off:], '\n'); end >= 0 {
		next = off + end + 1
	}
	text := data[off:next]
	body = bytes.TrimLeft(text, " ")
	ind = len(text) - len(body)
	blank = len(bytes.TrimSpace(body)) == 0 || body[0] == '#'
	item = !blank && body[0] == '-' && (len(body) == 1 || body[1] == ' ' || body[1] == '\n')
	return next, body, ind, blank, item
}

// isServicesKey reports whether a line (without its indentation) is `services:` with nothing
// after it but spaces and a comment.
func isServicesKey(body []byte) bool {
	rest, ok := bytes.CutPrefix(body, []byte("services:"))
	if !ok {
		return false
	}
	rest = bytes.TrimLeft(rest, " ")
	return len(rest) == 0 || rest[0] == '\n' || rest[0] == '#' && len(body) > len(rest)+len("services:")
}

// parseChunked parses data with its services list cut into items. It returns the tree of the
// file without the items, in which list.node stands for the list, or ok false when the file
// must be parsed whole.
//
// prev, when not nil, is the previous parse of the same file: an edit inside its services
// list is cut again around the edit alone (resplit).
func parseChunked(data []byte, prev *cached) (root *yaml.Node, list *itemList, ok bool) {
	list, handled := resplit(prev, data)
	if !handled {
		_, list, _, _, ok = splitServices(data)
		if !ok {
			return nil, nil, false
		}
	}
	head, keyLine, removed := list.head, list.cut.keyLine, list.cut.removed
	root, extra, err := parseYAML(head)
	if err != nil || root == nil || extra != nil || len(root.Content) != 1 {
		return nil, nil, false
	}
	top := root.Content[0]
	if top.Kind != yaml.MappingNode || top.Style&yaml.FlowStyle != 0 {
		return nil, nil, false
	}
	found := false
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value != "services" || k.Line != keyLine || k.Column != 1 {
			continue
		}
		if !isNull(v) || v.Value != "" {
			return nil, nil, false
		}
		top.Content[i+1], found = list.node, true
	}
	if !found {
		return nil, nil, false
	}
	// The tree's lines after the cut are the file's lines less the items'.
	shiftLines(root, keyLine, removed)
	return root, list, true
}

// shiftLines adds by to the line of every node of the tree under n that is below line.
func shiftLines(n *yaml.Node, line, by int) {
	if n.Line > line {
		n.Line += by
	}
	for _, c := range n.Content {
		shiftLines(c, line, by)
	}
}

// item parses services[i] alone: the item's node, with the file's lines, or nil when the
// item's text is not exactly one list item.
func (s *itemList) item(i int) *yaml.Node {
	c := s.items[i]
	root, extra, err := parseYAML(s.data[c.start:c.end])
	if err != nil || root == nil || extra != nil || len(root.Content) != 1 {
		return nil
	}
	seq := root.Content[0]
	if seq.Kind != yaml.SequenceNode || len(seq.Content) != 1 {
		return nil
	}
	shiftLines(seq.Content[0], 0, c.line-1)
	return seq.Content[0]
}

// tree is item for position lookups: parsed once per parse of the file.
func (s *itemList) tree(i int) *yaml.Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n, ok := s.trees[i]; ok {
		return n
	}
	if s.trees == nil {
		s.trees = map[int]*yaml.Node{}
	}
	n := s.item(i)
	s.trees[i] = n
	return n
}

// decodeChunked decodes every item of the list into v, a []schema.Service, on several CPUs
// for long lists, reusing what the previous parse decoded from the same text.
func (d *decoder) decodeChunked(v reflect.Value) {
	s := d.chunks
	parts := 1
	if d.parallel && len(s.items) >= parallelMin {
		parts = parallelParts()
	}
	out := reflect.MakeSlice(v.Type(), len(s.items), len(s.items))
	s.reused, s.final = make([]bool, len(s.items)), make([]bool, len(s.items))
	quick := make([]bool, len(s.items))
	d.forServices(len(s.items), parts, func(c *decoder, lo, hi int) {
		// Items in the quick part of YAML are parsed by quickItem, the rest by one
		// yaml.v3 stream.
		next := s.stream(lo, hi, func(i int) bool {
			if s.reuse(i, out.Index(i)) {
				return false
			}
			c := s.items[i]
			quick[i] = quickable(s.data[c.start:c.end])
			return !quick[i]
		})
		scratch := &quickScratch{}
		for i := lo; i < hi; i++ {
			if s.reused[i] {
				continue
			}
			e := out.Index(i)
			var n *yaml.Node
			if quick[i] {
				c := s.items[i]
				if n = quickItem(s.data[c.start:c.end], c.line, scratch); n == nil {
					n = s.item(i)
				}
			} else {
				n = next()
			}
			if n == nil {
				s.failed.Store(true)
				return
			}
			errs, warns, bad, dropped := len(c.errs), len(c.warns), len(c.bad), c.dropped
			if def, ok := schema.DefaultFor(e.Type()); ok {
				e.Set(def)
			}
			c.pushIndex(i)
			c.decode(n, e)
			c.pop()
			if len(c.errs) == errs && len(c.warns) == warns && len(c.bad) == bad && c.dropped == dropped {
				s.keep(i, e)
			}
		}
	})
	v.Set(out)
}

// stream parses the items in [lo, hi) for which want is true, in order, as the documents of
// one YAML stream: one yaml.v3 parser for them all, whose buffers grow once (a parser per item
// allocates its token queue anew for each, several times what the nodes take). Each call of
// the function it returns gives the next wanted item's node, with the file's lines, or nil
// when an item is not exactly one list item (the stream stops there).
func (s *itemList) stream(lo, hi int, want func(i int) bool) func() *yaml.Node {
	var text []byte
	var starts []int // the stream's line of each wanted item
	line := 1
	for i := lo; i < hi; i++ {
		if !want(i) {
			continue
		}
		c := s.items[i]
		item := s.data[c.start:c.end]
		text = append(text, item...)
		starts = append(starts, c.line-line)
		line += bytes.Count(item, []byte("\n"))
		if len(item) > 0 && item[len(item)-1] != '\n' {
			text = append(text, '\n')
			line++
		}
		// A document marker at column 1 ends the item: items are indented or start with
		// "- ", and the files cut have no marker of their own.
		text = append(text, "---\n"...)
		line++
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	k := 0
	return func() (n *yaml.Node) {
		if k >= len(starts) {
			return nil
		}
		defer func() {
			if recover() != nil {
				n = nil
			}
		}()
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil || len(doc.Content) != 1 {
			return nil
		}
		seq := doc.Content[0]
		if seq.Kind != yaml.SequenceNode || len(seq.Content) != 1 {
			return nil
		}
		shiftLines(seq.Content[0], 0, starts[k])
		k++
		return seq.Content[0]
	}
}
