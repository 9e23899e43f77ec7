package config

import (
	"bytes"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// yaml/v3 reports syntax errors as "yaml: line N: problem" (or "yaml: problem" with no line),
// where N is the line where the enclosing construct began (for parser errors, that line minus
// one), not the line of the problem, and it gives no column. An operator told "line 4" for a
// bad indent on line 60 would look in the wrong place, so syntaxFinding finds the problem
// itself: the shortest prefix of the file that fails with the same problem ends at it.
var (
	reYAMLLine      = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	reUnknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// maxLocateSize bounds the files whose syntax errors are located by re-parsing prefixes (about
// 25 parses); larger files get the line yaml/v3 reports.
const maxLocateSize = 1 << 20

func syntaxFinding(name string, data []byte, err error) Finding {
	problem, line := strings.TrimPrefix(err.Error(), "yaml: "), 1
	if m := reYAMLLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		problem = m[2]
	}
	f := Finding{Severity: SeverityError, File: name, Line: max(line, 1), Column: 1, Message: "YAML syntax: " + problem}
	if len(data) > maxLocateSize {
		return f
	}
	l, col, ch, ok := locate(data, problem, max(line, 1))
	if !ok {
		return f
	}
	f.Line, f.Column = l, col
	switch {
	case ch == '\t':
		f.Message += " (a tab: YAML is indented with spaces)"
	case (ch == '"' || ch == '\'') && strings.Contains(problem, "end of stream"):
		f.Message += " (the quoted string that starts here is never closed)"
	case problem == "mapping values are not allowed in this context":
		f.Message += " (check the indentation of this line, or quote a value that contains \": \")"
	}
	return f
}

// problemOf parses data and returns the syntax problem it fails with, or "" if it parses.
func problemOf(data []byte) string {
	_, _, err := parseYAML(data)
	if err == nil {
		return ""
	}
	if m := reYAMLLine.FindStringSubmatch(err.Error()); m != nil {
		return m[2]
	}
	return strings.TrimPrefix(err.Error(), "yaml: ")
}

// locate returns the 1-based line and column of the first character at which data fails to
// parse with problem, and that character. from is the first line it may be on. Prefixes cut
// in the middle of a construct can fail with other problems, so "fails with the same problem"
// is nearly but not exactly monotonic; the result is then close to, not on, the problem.
func locate(data []byte, problem string, from int) (line, col int, ch rune, ok bool) {
	if len(data) == 0 {
		return 0, 0, 0, false
	}
	starts := lineStarts(data)
	if len(starts) > 1 && starts[len(starts)-1] == len(data) {
		starts = starts[:len(starts)-1] // no line after the final line break
	}
	end := func(k int) int { // offset just past line k (1-based), newline included
		if k < len(starts) {
			return starts[k]
		}
		return len(data)
	}
	fails := func(n int) bool { return problemOf(data[:n]) == problem }

	// An unknown alias fails only once its name is complete: point at its '*'.
	if m := reUnknownAnchor.FindStringSubmatch(problem); m != nil {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			line = sort.Search(len(starts), func(k int) bool { return starts[k] > i })
			return line, utf8.RuneCount(data[starts[line-1]:i]) + 1, '*', true
		}
	}

	lo, hi := min(from, len(starts)), len(starts)
	if !fails(end(hi)) {
		return 0, 0, 0, false
	}
	if fails(end(lo - 1)) {
		lo = 1 // the reported line was too late; search the whole file
	}
	for lo < hi { // smallest k in [lo, hi] whose prefix fails
		mid := (lo + hi) / 2
		if fails(end(mid)) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	line = lo
	first, last := starts[line-1], end(line)
	// Smallest n in (first, last] with data[:n] failing: data[n-1] is the problem's character.
	a, b := first+1, last
	for a < b {
		mid := (a + b) / 2
		if fails(mid) {
			b = mid
		} else {
			a = mid + 1
		}
	}
	at := a - 1
	r, _ := utf8.DecodeRune(data[at:])
	if isBreak(data[at:]) > 0 {
		// The line failed only once it ended: point at its first non-blank character.
		at = first
		for at < last-1 && (data[at] == ' ') {
			at++
		}
		r, _ = utf8.DecodeRune(data[at:])
	}
	return line, utf8.RuneCount(data[first:at]) + 1, r, true
}

// lineStarts returns the byte offset where each line of data starts, counting line breaks the
// way YAML (and yaml/v3's positions) do: LF, CR, CR LF, NEL, LS and PS.
func lineStarts(data []byte) []int {
	starts := []int{0}
	for i := 0; i < len(data); {
		n := isBreak(data[i:])
		if n == 0 {
			i++
			continue
		}
		i += n
		starts = append(starts, i)
	}
	return starts
}

// isBreak returns the length of the line break at the start of b, or 0.
func isBreak(b []byte) int {
	switch {
	case len(b) >= 2 && b[0] == '\r' && b[1] == '\n':
		return 2
	case len(b) >= 1 && (b[0] == '\r' || b[0] == '\n'):
		return 1
	case len(b) >= 2 && b[0] == 0xC2 && b[1] == 0x85:
		return 2
	case len(b) >= 3 && b[0] == 0xE2 && b[1] == 0x80 && (b[2] == 0xA8 || b[2] == 0xA9):
		return 3
	}
	return 0
}
