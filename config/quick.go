package config

import (
	"bytes"

	"go.yaml.in/yaml/v3"
)

// The items of a long services list are mostly written in a small part of YAML: block and
// single-line flow mappings and sequences of plain scalars made of letters, digits and a few
// marks. yaml.v3 spends about half of a 10,000-service start on them (its scanner, token
// queue and events, under emulation 12 of the restart's 25 CPU seconds). quickItem parses an
// item in that part of YAML into the very tree yaml.v3 gives (kinds, styles, tags, values,
// lines and columns; comments are dropped, which the decoder never reads) and refuses
// everything else, which yaml.v3 then parses as before. It refuses rather than guesses:
// quoting, anchors, tags, block scalars, multi-line flow collections and plain scalars, a
// key without a value, any mark outside its alphabet. TestQuickItemMatchesYAML and
// FuzzQuickItem hold it to yaml.v3 on generated and fuzzed items.

// quickByte classifies the bytes an item in the quick part may hold.
var quickByte = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = qScalar
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = qScalar
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = qScalar
	}
	for _, c := range "_./~=+-" {
		t[c] = qScalar
	}
	for _, c := range " \n:,[]{}#" {
		t[c] = qSyntax
	}
	return t
}()

const (
	qOther  = iota // refused
	qScalar        // may be part of a plain scalar
	qSyntax        // structure, spaces and comments
)

// quickable reports whether every byte of text is one quickItem may accept: a cheap test
// that sends the rest straight to yaml.v3.
func quickable(text []byte) bool {
	for _, c := range text {
		if quickByte[c] == qOther {
			return false
		}
	}
	return true
}

// quickScratch is what the quickItem calls of one goroutine share: the scalars already made
// with their tags (values repeat: addresses, weights, keys; resolving a tag runs yaml.v3's
// regular expressions), nodes not handed out yet, and a stack of children not yet placed in
// their collection (each Content is allocated once, at its final length).
type quickScratch struct {
	scalars map[string]quickScalar
	slab    []yaml.Node
	stack   []*yaml.Node
}

type quickScalar struct{ value, tag string }

// quick is the state of one quickItem: the item's text, the offset where its current line
// starts, that line's number in the file.
type quick struct {
	*quickScratch
	s     []byte
	pos   int // start of the current line
	end   int // its end (its '\n' or the text's end)
	line  int // the file's line number of the current line
	depth int // collections open; yaml.v3 refuses deep nesting, so does quickItem far sooner
}

// maxQuickDepth is the deepest nesting of collections quickItem takes.
const maxQuickDepth = 64

// open enters a collection; false when too deep. close leaves it.
func (q *quick) open() bool { q.depth++; return q.depth <= maxQuickDepth }
func (q *quick) close()     { q.depth-- }

// quickItem parses text, one list item that starts on the file's line `line` (its
// indentation, "- ", the lines up to the next item), into the item's node, or returns nil
// when the item is not in the quick part of YAML. scratch, which may be nil, is shared by
// the calls of one goroutine.
func quickItem(text []byte, line int, scratch *quickScratch) *yaml.Node {
	if !quickable(text) {
		return nil
	}
	if scratch == nil {
		scratch = &quickScratch{}
	}
	if scratch.scalars == nil {
		scratch.scalars = map[string]quickScalar{}
	}
	clear(scratch.stack) // what a refused item left
	scratch.stack = scratch.stack[:0]
	q := &quick{quickScratch: scratch, s: text, line: line}
	q.setLine(0)
	if !q.skipEmpty() {
		return nil
	}
	c := q.indent()
	p := q.pos + c
	if !q.isEntry(p) {
		return nil
	}
	n := q.entry(p, c)
	if n == nil || q.skipEmpty() {
		return nil // not one item, or an item followed by more lines
	}
	return n
}

func (q *quick) node(kind yaml.Kind, tag string, p int) *yaml.Node {
	if len(q.slab) == 0 {
		q.slab = make([]yaml.Node, 32)
	}
	n := &q.slab[0]
	q.slab = q.slab[1:]
	n.Kind, n.Tag, n.Line, n.Column = kind, tag, q.line, p-q.pos+1
	return n
}

// scalarNode is a plain scalar's node, tagged as yaml.v3's parser tags it (both resolve it).
func (q *quick) scalarNode(p, e int) *yaml.Node {
	n := q.node(yaml.ScalarNode, "", p)
	b := q.s[p:e]
	v, ok := q.scalars[string(b)]
	if !ok {
		n.Value = string(b)
		v = quickScalar{n.Value, n.ShortTag()}
		if len(q.scalars) < 4096 {
			q.scalars[v.value] = v
		}
	}
	n.Value, n.Tag = v.value, v.tag
	return n
}

// push stacks a collection's child; place gives the collection the children stacked since
// base.
func (q *quick) push(n ...*yaml.Node) { q.stack = append(q.stack, n...) }
func (q *quick) place(n *yaml.Node, base int) {
	n.Content = make([]*yaml.Node, len(q.stack)-base)
	copy(n.Content, q.stack[base:])
	clear(q.stack[base:]) // the scratch outlives the item: hold no nodes
	q.stack = q.stack[:base]
}

// eol is the end of the current line.
func (q *quick) eol() int { return q.end }

// setLine makes the line that starts at pos the current one.
func (q *quick) setLine(pos int) {
	q.pos, q.end = pos, len(q.s)
	if i := bytes.IndexByte(q.s[pos:], '\n'); i >= 0 {
		q.end = pos + i
	}
}

// nextLine moves to the line after the current one.
func (q *quick) nextLine() {
	e := q.end
	if e < len(q.s) {
		e++
	}
	q.setLine(e)
	q.line++
}

// skipEmpty moves to the next line with content (neither blank nor a comment); false at the
// end of the text.
func (q *quick) skipEmpty() bool {
	for q.pos < len(q.s) {
		i := q.pos + q.indent()
		if i < len(q.s) && q.s[i] != '\n' && q.s[i] != '#' {
			return true
		}
		q.nextLine()
	}
	return false
}

// indent is the number of spaces that start the current line.
func (q *quick) indent() int {
	i := q.pos
	for i < len(q.s) && q.s[i] == ' ' {
		i++
	}
	return i - q.pos
}

// restEmpty reports whether the current line holds nothing from p on but spaces and a
// comment that a space separates from what came before.
func (q *quick) restEmpty(p int) bool {
	e := q.eol()
	i := p
	for i < e && q.s[i] == ' ' {
		i++
	}
	return i == e || q.s[i] == '#' && i > p
}

// isEntry: a block sequence entry starts at p ("-" then a space or the line's end).
func (q *quick) isEntry(p int) bool {
	return p < len(q.s) && q.s[p] == '-' && (p+1 == len(q.s) || q.s[p+1] == ' ' || q.s[p+1] == '\n')
}

// plainEnd is where the plain scalar that starts at p ends (before any trailing spaces), or
// p when none starts there. flow stops it at flow marks; a ':' continues it only when a
// scalar character or another ':' follows; spaces inside it are kept when more of it
// follows on the line.
func (q *quick) plainEnd(p int, flow bool) int {
	e := q.eol()
	if p >= e || quickByte[q.s[p]] != qScalar || q.s[p] == '-' && (p+1 >= e || quickByte[q.s[p+1]] != qScalar) {
		return p
	}
	end := p
	for i := p; i < e; {
		c := q.s[i]
		switch {
		case quickByte[c] == qScalar:
			i++
			end = i
		case c == ':' && i+1 < e && (quickByte[q.s[i+1]] == qScalar || q.s[i+1] == ':'):
			i++
			end = i
		case c == ' ':
			j := i
			for j < e && q.s[j] == ' ' {
				j++
			}
			if j == e || quickByte[q.s[j]] != qScalar {
				return end
			}
			i = j
		default:
			if !flow && c != ':' {
				// ',', '[', ']', '{', '}' or '#' inside a block scalar: legal YAML, but
				// not the quick part.
				return p
			}
			return end
		}
	}
	return end
}

// isKey: a plain scalar from p to e is followed by ':' and a space or the line's end.
func (q *quick) isKey(e int) bool {
	return e < len(q.s) && q.s[e] == ':' && (e+1 == len(q.s) || q.s[e+1] == ' ' || q.s[e+1] == '\n')
}

// entry parses the block sequence entry whose '-' is at p, in column c, and moves past it.
func (q *quick) entry(p, c int) *yaml.Node {
	i := p + 1
	e := q.eol()
	for i < e && q.s[i] == ' ' {
		i++
	}
	if q.restEmpty(i) {
		return nil // the entry's content starts on a later line
	}
	return q.block(i, c)
}

// block parses the node that starts at p on the current line, inside a block collection
// whose entries are in column outer, and moves past it: a block sequence or mapping starting
// there, a flow collection or a plain scalar that ends the line.
func (q *quick) block(p, outer int) *yaml.Node {
	switch {
	case q.isEntry(p):
		return q.sequence(p)
	case q.s[p] == '{' || q.s[p] == '[':
		return q.flowLine(p)
	}
	e := q.plainEnd(p, false)
	if e == p {
		return nil
	}
	if q.isKey(e) {
		return q.mapping(p)
	}
	n := q.scalarNode(p, e)
	if !q.restEmpty(e) {
		return nil
	}
	q.nextLine()
	return n
}

// flowLine parses a flow collection at p that ends on its line, and moves past the line.
func (q *quick) flowLine(p int) *yaml.Node {
	n, e := q.flow(p)
	if n == nil || !q.restEmpty(e) {
		return nil
	}
	q.nextLine()
	return n
}

// sequence parses the block sequence whose first '-' is at p and moves past it.
func (q *quick) sequence(p int) *yaml.Node {
	if !q.open() {
		return nil
	}
	defer q.close()
	c := p - q.pos
	seq := q.node(yaml.SequenceNode, "!!seq", p)
	base := len(q.stack)
	for {
		v := q.entry(p, c)
		if v == nil {
			return nil
		}
		q.push(v)
		if !q.skipEmpty() {
			q.place(seq, base)
			return seq
		}
		switch ind := q.indent(); {
		case ind > c:
			return nil
		case ind < c || !q.isEntry(q.pos+ind):
			q.place(seq, base)
			return seq // the caller decides whether what follows may
		}
		p = q.pos + c
	}
}

// mapping parses the block mapping whose first key is at p and moves past it.
func (q *quick) mapping(p int) *yaml.Node {
	if !q.open() {
		return nil
	}
	defer q.close()
	c := p - q.pos
	m := q.node(yaml.MappingNode, "!!map", p)
	base := len(q.stack)
	for {
		e := q.plainEnd(p, false)
		if e == p || !q.isKey(e) || e-p > 1000 {
			return nil // yaml.v3 takes no simple key over 1024 characters
		}
		k := q.scalarNode(p, e)
		var v *yaml.Node
		i := e + 1
		for i < len(q.s) && q.s[i] == ' ' {
			i++
		}
		if q.restEmpty(e + 1) {
			q.nextLine()
			if !q.skipEmpty() {
				return nil // a key without a value
			}
			switch ind := q.indent(); {
			case ind > c:
				v = q.block(q.pos+ind, c)
			case ind == c && q.isEntry(q.pos+ind):
				v = q.sequence(q.pos + ind) // a sequence in the key's own column
			default:
				return nil
			}
		} else {
			if q.isEntry(i) {
				return nil
			}
			v = q.block(i, c)
			if v != nil && v.Kind == yaml.MappingNode && v.Style == 0 {
				return nil // "a: b: c"
			}
		}
		if v == nil {
			return nil
		}
		q.push(k, v)
		if !q.skipEmpty() {
			q.place(m, base)
			return m
		}
		switch ind := q.indent(); {
		case ind > c:
			return nil
		case ind < c:
			q.place(m, base)
			return m
		case q.isEntry(q.pos + ind):
			return nil
		}
		p = q.pos + c
	}
}

// flow parses the flow collection or plain scalar at p, on one line, and returns it with the
// offset after it.
func (q *quick) flow(p int) (*yaml.Node, int) {
	e := q.eol()
	if p >= e {
		return nil, p
	}
	switch q.s[p] {
	case '{', '[':
	default:
		end := q.plainEnd(p, true)
		if end == p {
			return nil, p
		}
		return q.scalarNode(p, end), end
	}
	if !q.open() {
		return nil, p
	}
	defer q.close()
	isMap := q.s[p] == '{'
	closer := byte(']')
	n := q.node(yaml.SequenceNode, "!!seq", p)
	if isMap {
		closer = '}'
		n.Kind, n.Tag = yaml.MappingNode, "!!map"
	}
	n.Style = yaml.FlowStyle
	base := len(q.stack)
	i := q.spaces(p + 1)
	if i < e && q.s[i] == closer {
		return n, i + 1
	}
	for {
		if isMap {
			end := q.plainEnd(i, true)
			if end == i || end+1 >= e || q.s[end] != ':' || q.s[end+1] != ' ' || end-i > 1000 {
				return nil, p
			}
			q.push(q.scalarNode(i, end))
			i = q.spaces(end + 1)
		}
		v, end := q.flow(i)
		if v == nil {
			return nil, p
		}
		q.push(v)
		i = q.spaces(end)
		if i >= e {
			return nil, p
		}
		switch q.s[i] {
		case closer:
			q.place(n, base)
			return n, i + 1
		case ',':
			i = q.spaces(i + 1)
			if i >= e || q.s[i] == closer || q.s[i] == ',' {
				return nil, p
			}
		default:
			return nil, p
		}
	}
}

// spaces skips spaces from i on the current line.
func (q *quick) spaces(i int) int {
	e := q.eol()
	for i < e && q.s[i] == ' ' {
		i++
	}
	return i
}
