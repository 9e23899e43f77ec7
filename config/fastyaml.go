package config

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// yaml.v3 spends most of the time of loading a long file (about 85% for 10,000 services)
// building its tree: it scans with the general YAML machinery, allocates every node on its own
// and keeps comments. Machine-written files use a small, plain part of YAML, so fastParse
// parses that part directly into the same yaml.Node tree (positions and tags included:
// tags come from yaml.v3's own resolution, through Node.ShortTag). Anything outside it, and
// anything yaml.v3 might refuse, makes fastParse give up, and yaml.v3 parses the file: every
// syntax error is still reported by yaml.v3 and located by syntax.go. The tests and the fuzz
// target check that whenever fastParse accepts a file, yaml.v3 builds the same tree.
//
// The part of YAML it accepts:
//   - block mappings and block lists, indented with spaces, lists also "compact" (`- key: v`,
//     and a list at the indentation of its key);
//   - flow lists and mappings on one line (`[a, b]`, `{k: v, l: [x]}`), not empty-valued;
//   - plain scalars on one line, without `:`, `#`, `,`, brackets or braces inside, and not
//     starting with an indicator;
//   - comments (`# ...` on a line of its own, or after a space) and blank lines.
//
// It refuses quotes, anchors, aliases, tags, block scalars, merge keys, document markers,
// directives, tabs, carriage returns, control characters and any byte outside ASCII.

// fastMin is the size from which Parse tries fastParse; smaller files go to yaml.v3 directly.
var fastMin = 16 << 10

// fastMaxDepth bounds nesting; deeper files go to yaml.v3 (and the decoder refuses them).
const fastMaxDepth = 100

// refused are the bytes that send a file to yaml.v3: control characters (but the newline),
// bytes outside ASCII, and the indicators of quotes, anchors, aliases, tags, block scalars,
// directives, reserved characters, complex keys, escapes and merge keys.
var refused = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 && c != '\n' || c >= 0x7f || strings.IndexByte("\"'&*!|>%@`?\\<", byte(c)) >= 0
	}
	return t
}()

// inScalar are the bytes a plain scalar may not hold here (flowStop, those that end one in a
// flow collection); startScalar those it may not start with.
var inScalar, flowStop, startScalar = byteSet(":#,[]{}"), byteSet(",:[]{}"), byteSet("?:,[]{}#&*!|>'\"%@`")

func byteSet(chars string) (t [256]bool) {
	for i := range len(chars) {
		t[chars[i]] = true
	}
	return t
}

type fastLine struct {
	lineStart  int // offset of the line
	start, end int // offsets of its content: indentation, comment and trailing spaces cut
	indent     int
	no         int // 1-based
}

type fastParser struct {
	depth int
	count int // nodes made
	s     string
	lines []fastLine
	i     int // current line
	nodes []yaml.Node
	stack []*yaml.Node // children being collected
	ptrs  []*yaml.Node // storage for Content slices
}

// giveUp is panicked with when the text leaves the accepted part of YAML.
type giveUp struct{}

// fastParse returns the document of data and its number of nodes, or false when data is not
// in the part of YAML it takes.
func fastParse(data []byte) (doc *yaml.Node, nodes int, ok bool) {
	p := &fastParser{s: string(data)}
	if !p.split() || len(p.lines) == 0 {
		return nil, 0, false
	}
	defer func() {
		if r := recover(); r != nil {
			if _, is := r.(giveUp); !is {
				panic(r)
			}
			doc, nodes, ok = nil, 0, false
		}
	}()
	root := p.block(p.lines[0].indent)
	if p.i != len(p.lines) {
		return nil, 0, false
	}
	doc = p.node(yaml.DocumentNode, "", root.Line, root.Column)
	doc.Tag = ""
	doc.Content = []*yaml.Node{root}
	return doc, p.count, true
}

// split checks the bytes and cuts the text into lines of content.
func (p *fastParser) split() bool {
	s := p.s
	for i := 0; i < len(s); i++ {
		if refused[s[i]] {
			return false
		}
	}
	no := 0
	for off := 0; off < len(s); {
		no++
		end := strings.IndexByte(s[off:], '\n')
		next := len(s)
		if end < 0 {
			end = len(s)
		} else {
			end += off
			next = end + 1
		}
		line := s[off:end]
		ind := len(line) - len(strings.TrimLeft(line, " "))
		content := line[ind:]
		if k := strings.Index(content, " #"); k >= 0 {
			content = content[:k]
		}
		content = strings.TrimRight(content, " ")
		switch {
		case content == "" || content[0] == '#':
		case strings.IndexByte(content, '#') >= 0:
			return false // a '#' inside a value
		case ind == 0 && (strings.HasPrefix(content, "---") || strings.HasPrefix(content, "...")):
			return false
		default:
			p.lines = append(p.lines, fastLine{lineStart: off, start: off + ind, end: off + ind + len(content), indent: ind, no: no})
		}
		off = next
	}
	return true
}

func (p *fastParser) node(kind yaml.Kind, tag string, line, col int) *yaml.Node {
	if len(p.nodes) == 0 {
		p.nodes = make([]yaml.Node, 4096)
	}
	n := &p.nodes[0]
	p.nodes = p.nodes[1:]
	p.count++
	n.Kind, n.Tag, n.Line, n.Column = kind, tag, line, col
	return n
}

// content returns the children collected since mark, in storage of their own.
func (p *fastParser) content(mark int) []*yaml.Node {
	n := len(p.stack) - mark
	if n == 0 {
		return nil
	}
	if len(p.ptrs) < n {
		p.ptrs = make([]*yaml.Node, max(n, 8192))
	}
	c := p.ptrs[:n:n]
	p.ptrs = p.ptrs[n:]
	copy(c, p.stack[mark:])
	p.stack = p.stack[:mark]
	return c
}

// enter and leave bound the nesting of collections.
func (p *fastParser) enter() {
	if p.depth++; p.depth > fastMaxDepth {
		panic(giveUp{})
	}
}

func (p *fastParser) leave() { p.depth-- }

func (p *fastParser) col(l fastLine, off int) int { return off - l.lineStart + 1 }

func isItem(s string) bool { return s == "-" || strings.HasPrefix(s, "- ") }

func (p *fastParser) text(l fastLine) string { return p.s[l.start:l.end] }

// block parses the block node whose first line is the current one, at indentation indent.
func (p *fastParser) block(indent int) *yaml.Node {
	l := p.lines[p.i]
	if l.indent != indent {
		panic(giveUp{})
	}
	if isItem(p.text(l)) {
		return p.list(indent)
	}
	return p.mapping(l.start)
}

// mapping parses a block mapping whose first key starts at offset at on the current line; the
// next keys are on lines of their own at the same column.
func (p *fastParser) mapping(at int) *yaml.Node {
	p.enter()
	defer p.leave()
	l := p.lines[p.i]
	col := at - l.lineStart
	m := p.node(yaml.MappingNode, "!!map", l.no, col+1)
	mark := len(p.stack)
	for {
		l = p.lines[p.i]
		colon := p.keyEnd(at, l.end)
		if colon < 0 {
			panic(giveUp{})
		}
		key := p.scalar(strings.TrimRight(p.s[at:colon], " "), l, at)
		var value *yaml.Node
		rest := colon + 1
		for rest < l.end && p.s[rest] == ' ' {
			rest++
		}
		switch {
		case rest == l.end:
			p.i++
			switch {
			case p.i < len(p.lines) && p.lines[p.i].indent > col:
				value = p.block(p.lines[p.i].indent)
			case p.i < len(p.lines) && p.lines[p.i].indent == col && isItem(p.text(p.lines[p.i])):
				value = p.list(col)
			default:
				value = p.node(yaml.ScalarNode, "!!null", l.no, p.col(l, colon)+1)
			}
		default:
			value = p.inline(l, rest)
			p.i++
			if p.i < len(p.lines) && p.lines[p.i].indent > col {
				panic(giveUp{}) // a value continued on the next line
			}
		}
		p.stack = append(p.stack, key, value)
		if p.i == len(p.lines) {
			break
		}
		next := p.lines[p.i]
		if next.indent < col {
			break
		}
		if next.indent > col || isItem(p.text(next)) {
			panic(giveUp{})
		}
		at = next.start
	}
	m.Content = p.content(mark)
	return m
}

// list parses a block list whose items start with "- " at indentation indent.
func (p *fastParser) list(indent int) *yaml.Node {
	p.enter()
	defer p.leave()
	first := p.lines[p.i]
	seq := p.node(yaml.SequenceNode, "!!seq", first.no, indent+1)
	mark := len(p.stack)
	for p.i < len(p.lines) {
		l := p.lines[p.i]
		if l.indent < indent || (l.indent == indent && !isItem(p.text(l))) {
			break
		}
		if l.indent > indent {
			panic(giveUp{})
		}
		c := l.start + 1
		for c < l.end && p.s[c] == ' ' {
			c++
		}
		var item *yaml.Node
		switch {
		case c == l.end:
			p.i++
			if p.i == len(p.lines) || p.lines[p.i].indent <= indent {
				panic(giveUp{}) // an empty item
			}
			item = p.block(p.lines[p.i].indent)
		case isItem(p.s[c:l.end]):
			panic(giveUp{}) // "- - x"
		case p.keyEnd(c, l.end) >= 0:
			item = p.mapping(c)
		default:
			item = p.inline(l, c)
			p.i++
			if p.i < len(p.lines) && p.lines[p.i].indent > indent {
				panic(giveUp{})
			}
		}
		p.stack = append(p.stack, item)
	}
	seq.Content = p.content(mark)
	return seq
}

// keyEnd returns the offset of the ':' that ends a key starting at from, or -1 if the text up
// to end holds no key. A ':' must be followed by a space or end the line.
func (p *fastParser) keyEnd(from, end int) int {
	for j := from; j < end; j++ {
		switch p.s[j] {
		case ':':
			if j+1 == end || p.s[j+1] == ' ' {
				return j
			}
			panic(giveUp{})
		case '[', ']', '{', '}', ',':
			return -1
		}
	}
	return -1
}

// inline parses the value that starts at offset at and ends the line: a flow collection or a
// plain scalar.
func (p *fastParser) inline(l fastLine, at int) *yaml.Node {
	if c := p.s[at]; c == '[' || c == '{' {
		n, j := p.flow(l, at)
		if j != l.end {
			panic(giveUp{})
		}
		return n
	}
	return p.scalar(p.s[at:l.end], l, at)
}

// flow parses a flow collection or scalar starting at offset j, returning where it ends.
func (p *fastParser) flow(l fastLine, j int) (*yaml.Node, int) {
	skip := func() {
		for j < l.end && p.s[j] == ' ' {
			j++
		}
	}
	if j >= l.end {
		panic(giveUp{})
	}
	p.enter()
	defer p.leave()
	switch p.s[j] {
	case '[', '{':
		isMap := p.s[j] == '{'
		kind, tag, closing := yaml.SequenceNode, "!!seq", byte(']')
		if isMap {
			kind, tag, closing = yaml.MappingNode, "!!map", '}'
		}
		n := p.node(kind, tag, l.no, p.col(l, j))
		n.Style = yaml.FlowStyle
		mark := len(p.stack)
		j++
		skip()
		for j < l.end && p.s[j] != closing {
			if isMap {
				k, e := p.flowScalar(l, j)
				if e >= l.end || p.s[e] != ':' || e+1 >= l.end || p.s[e+1] != ' ' {
					panic(giveUp{})
				}
				j = e + 1
				skip()
				p.stack = append(p.stack, k)
			}
			var v *yaml.Node
			v, j = p.flow(l, j)
			p.stack = append(p.stack, v)
			skip()
			if j < l.end && p.s[j] == ',' {
				j++
				skip()
				if j < l.end && p.s[j] == closing {
					panic(giveUp{}) // a trailing comma
				}
			} else if j >= l.end || p.s[j] != closing {
				panic(giveUp{})
			}
		}
		if j >= l.end {
			panic(giveUp{})
		}
		n.Content = p.content(mark)
		return n, j + 1
	}
	return p.flowScalar(l, j)
}

// flowScalar parses a plain scalar inside a flow collection, up to a ',', ':', bracket or
// brace.
func (p *fastParser) flowScalar(l fastLine, j int) (*yaml.Node, int) {
	e := j
	for e < l.end && !flowStop[p.s[e]] {
		e++
	}
	return p.scalar(strings.TrimRight(p.s[j:e], " "), l, j), e
}

// scalar makes the node of a plain scalar starting at offset at, tagged as yaml.v3 tags it.
func (p *fastParser) scalar(v string, l fastLine, at int) *yaml.Node {
	if v == "" {
		panic(giveUp{})
	}
	for i := 0; i < len(v); i++ {
		if inScalar[v[i]] {
			panic(giveUp{})
		}
	}
	switch c := v[0]; {
	case c == '-':
		if len(v) == 1 || !(v[1] >= '0' && v[1] <= '9' || v[1] == '.') {
			panic(giveUp{})
		}
	case startScalar[c]:
		panic(giveUp{})
	}
	n := p.node(yaml.ScalarNode, "", l.no, p.col(l, at))
	n.Value = v
	n.Tag = quickTag(v)
	if n.Tag == "" {
		n.Tag = n.ShortTag()
	}
	return n
}

// quickTag returns the tag yaml.v3 resolves the plain scalar v to, for the common cases that
// need none of its attempts at parsing numbers and timestamps, and "" for the others:
//   - a letter that starts no special word of YAML (true, false, null, ...: yaml.v3 looks
//     those up only for y, n, t, f, o and their capitals) starts a string;
//   - decimal digits without a leading zero, at most 18, are an integer;
//   - digits with two dots or more (an IPv4 address) are no number and no timestamp.
func quickTag(v string) string {
	c := v[0]
	switch {
	case (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') && strings.IndexByte("yYnNtTfFoO", c) < 0:
		return "!!str"
	case c >= '1' && c <= '9' && len(v) <= 18 && digits(v):
		return "!!int"
	case dotted(v):
		return "!!str"
	}
	return ""
}

func digits(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return false
		}
	}
	return true
}

// dotted reports whether v is digits with at least two dots.
func dotted(v string) bool {
	dots := 0
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '.':
			dots++
		case c < '0' || c > '9':
			return false
		}
	}
	return dots >= 2
}
