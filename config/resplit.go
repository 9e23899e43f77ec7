package config

import (
	"bytes"
	"sort"
)

// resplit cuts data, an edit of the file prev parsed, starting from prev's cut: the bytes
// before the first difference and after the last one are the same as before, so only the
// items around the edit are cut again, and the rest are prev's items, moved by the bytes and
// lines the edit added. A reload of bench/scale.sh's 7 MB file spent 47 ms of 288 ms in the
// QEMU guest splitting the whole file again (seven passes over it).
//
// handled is false, and the caller splits the whole file, unless the edit lies inside the
// items (after the first one's start, before the list's end) and every line the edit touches
// is one the full split accepts inside a list: an item at the list's indentation, or a line
// indented deeper, blank or a comment. The bytes that make the full split refuse a file (&, *,
// tab, CR, "<<") are looked for in the edit only: prev had none elsewhere; a directive or a
// document marker is a line the list does not accept. TestResplitMatchesSplit checks it against splitServices on random edits.
func resplit(prev *cached, data []byte) (list *itemList, handled bool) {
	if prev == nil || len(prev.items) == 0 {
		return nil, false
	}
	old, was := prev.data, prev.cut
	p := commonPrefix(old, data)
	sfx := commonSuffix(old[p:], data[p:])
	oldEnd, newEnd := len(old)-sfx, len(data)-sfx
	delta := len(data) - len(old)
	if p <= was.itemsStart || oldEnd > was.itemsEnd {
		return nil, false // the edit reaches the head of the file, or it is not an edit
	}
	for _, c := range []byte("&*\t\r") {
		if bytes.IndexByte(data[p:newEnd], c) >= 0 {
			return nil, false
		}
	}
	if bytes.Contains(data[max(p-1, 0):min(newEnd+1, len(data))], []byte("<<")) {
		return nil, false
	}
	lineDelta := bytes.Count(data[p:newEnd], []byte("\n")) - bytes.Count(old[p:oldEnd], []byte("\n"))

	// k is the item that holds the line before the first changed byte: a changed line that
	// is not an item belongs to it.
	k := sort.Search(len(prev.items), func(i int) bool { return prev.items[i].start >= p }) - 1
	items := make([]chunk, k, len(prev.items)+8)
	copy(items, prev.items[:k])
	indent := was.indent
	start := prev.items[k].start
	sameFrom := -1
	for off, line := start, prev.items[k].line; ; line++ {
		if off >= newEnd { // in the common suffix: back on one of prev's item starts, or the end
			if off-delta == was.itemsEnd {
				if line != prev.items[0].line+was.removed+lineDelta {
					return nil, false
				}
				items[len(items)-1].end = off
				break
			}
			m := sort.Search(len(prev.items), func(i int) bool { return prev.items[i].start >= off-delta })
			if m < len(prev.items) && prev.items[m].start == off-delta {
				if prev.items[m].line+lineDelta != line {
					return nil, false
				}
				items[len(items)-1].end = off
				if len(items) == m && lineDelta == 0 {
					sameFrom = m // the same index and line: reuse need not compare them
				}
				for _, c := range prev.items[m:] {
					items = append(items, chunk{start: c.start + delta, end: c.end + delta, line: c.line + lineDelta})
				}
				break
			}
		}
		if off >= len(data) {
			return nil, false
		}
		// (A directive or document marker is a line at column 1 that is not an item: the
		// default case below refuses it, whatever the list's indentation.)
		next, _, ind, blank, item := lineAt(data, off)
		switch {
		case ind == indent && item:
			if off > start {
				items[len(items)-1].end = off
			}
			items = append(items, chunk{start: off, line: line})
		case off == start:
			return nil, false // item k's first line is no longer an item
		case blank || ind > indent:
		default:
			return nil, false // a top-level key or a line less indented: the full split decides
		}
		off = next
	}
	list = &itemList{data: data, items: items, sameBelow: k, sameFrom: len(items)}
	if sameFrom >= 0 {
		list.sameFrom = sameFrom
	}
	list.cut = was
	list.cut.removed += lineDelta
	list.cut.itemsEnd += delta
	// The head (the file without the items) is prev's: the edit lies inside the items.
	list.finishCut(prev.head)
	return list, true
}

// commonPrefix is the length of the longest common prefix of a and b, compared a block at a
// time (bytes.Equal is vectorized; a loop over bytes is not).
func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	const block = 4096
	i := 0
	for i+block <= n && bytes.Equal(a[i:i+block], b[i:i+block]) {
		i += block
	}
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

// commonSuffix is the length of the longest common suffix of a and b.
func commonSuffix(a, b []byte) int {
	n := min(len(a), len(b))
	const block = 4096
	i := 0 // bytes matched from the ends
	for i+block <= n && bytes.Equal(a[len(a)-i-block:len(a)-i], b[len(b)-i-block:len(b)-i]) {
		i += block
	}
	for i < n && a[len(a)-1-i] == b[len(b)-1-i] {
		i++
	}
	return i
}
