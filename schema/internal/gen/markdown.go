package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// The reference in docs/config.md is generated between these markers; the prose around them is
// written by hand.
const (
	beginMarker = "<!-- BEGIN GENERATED REFERENCE: go generate ./schema -->"
	endMarker   = "<!-- END GENERATED REFERENCE -->"
)

// normalizedAs says what the loader does with an invalid value of a normalized key.
var normalizedAs = map[string]string{
	"scheduler":  "warning; becomes `wrr`",
	"forwarding": "warning; becomes `dr`",
	"flags":      "warning; the flag is dropped",
}

// reference renders one table per top-level key: every key under it, its type, default, the
// values it accepts, what happens to an invalid value, and its documentation.
func reference(keys []*key) string {
	var b strings.Builder
	for _, top := range keys {
		fmt.Fprintf(&b, "### `%s`\n\n", top.Name)
		b.WriteString("| Key | Type | Default | Valid values | If invalid | Meaning |\n")
		b.WriteString("|---|---|---|---|---|---|\n")
		walk(top, func(k *key) {
			fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", k.Path, typeName(k), defaultText(k),
				cell(valid(k)), invalid(k), cell(k.Doc))
		})
		b.WriteString("\n")
	}
	return b.String()
}

// walk visits k and the keys under it; the elements of a list of mappings are visited through
// their fields.
func walk(k *key, visit func(*key)) {
	visit(k)
	for _, f := range k.Fields {
		walk(f, visit)
	}
	if k.Items != nil && k.Items.Kind == "object" {
		for _, f := range k.Items.Fields {
			walk(f, visit)
		}
	}
}

func typeName(k *key) string {
	switch k.Kind {
	case "object":
		return "mapping"
	case "map":
		return "mapping of names to " + plural(typeName(k.Values))
	case "list":
		if k.Items.Kind == "object" {
			return "list of mappings"
		}
		return "list of " + plural(typeName(k.Items))
	case "address":
		return "IP address"
	}
	return k.Kind
}

func plural(s string) string {
	if s == "IP address" {
		return "IP addresses"
	}
	return s + "s"
}

func defaultText(k *key) string {
	switch {
	case k.Kind == "object":
		return ""
	case k.Inherit != "":
		return "`" + k.Inherit + "`"
	case k.Required:
		return "required"
	case !k.HasDefault || k.Default == nil:
		return "—"
	}
	switch v := k.Default.(type) {
	case string:
		if v == "" {
			return `""`
		}
		return "`" + v + "`"
	case []any:
		var parts []string
		for _, e := range v {
			parts = append(parts, fmt.Sprint(e))
		}
		return "`[" + strings.Join(parts, ", ") + "]`"
	}
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(k.Default)
	return "`" + strings.TrimSpace(buf.String()) + "`"
}

// valid describes the values a key accepts, in words.
func valid(k *key) string {
	var parts []string
	switch k.Kind {
	case "object":
		return ""
	case "list":
		if it := valid(k.Items); it != "" && k.Items.Kind != "object" {
			parts = append(parts, "each: "+it)
		}
		if k.MinItems > 0 {
			parts = append(parts, fmt.Sprintf("at least %d", k.MinItems))
		}
		if k.Unique {
			parts = append(parts, "no duplicates")
		}
		return strings.Join(parts, "; ")
	case "map":
		if k.KeyPattern != "" {
			parts = append(parts, "names: "+k.KeyDoc)
		}
		if v := valid(k.Values); v != "" {
			parts = append(parts, "values: "+v)
		}
		return strings.Join(parts, "; ")
	case "address":
		parts = append(parts, "IPv4 or IPv6, not unspecified, multicast or 255.255.255.255, no zone, not IPv4-mapped")
	case "duration":
		parts = append(parts, "≥ 0, like `500ms`, `30s`, `1m30s`")
	}
	switch {
	case k.Const != "":
		parts = append(parts, "`"+k.Const+"`")
	case k.Enum != nil:
		parts = append(parts, "one of `"+strings.Join(k.Enum, "`, `")+"`")
		if k.AnyCase {
			parts = append(parts, "in any case")
		}
	}
	if k.PatternDoc != "" {
		parts = append(parts, k.PatternDoc)
	}
	switch {
	case k.Min != nil && k.Max != nil:
		parts = append(parts, fmt.Sprintf("%d..%d", *k.Min, *k.Max))
	case k.Min != nil:
		parts = append(parts, fmt.Sprintf("≥ %d", *k.Min))
	}
	switch {
	case k.EmptyOK && k.Inherit != "":
		parts = append(parts, "or empty (inherits)")
	case k.EmptyOK:
		parts = append(parts, "or empty")
	}
	return strings.Join(parts, "; ")
}

func invalid(k *key) string {
	if k.Kind == "object" {
		return "error"
	}
	if k.Normalized {
		return normalizedAs[k.Name]
	}
	if k.Kind == "list" && k.Items.Normalized {
		return normalizedAs[k.Name]
	}
	return "error"
}

// cell escapes text for a table cell.
func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

// splice replaces the generated part of doc.
func splice(doc, generated string) (string, error) {
	i := strings.Index(doc, beginMarker)
	j := strings.Index(doc, endMarker)
	if i < 0 || j < i {
		return "", fmt.Errorf("the markers %q and %q are missing", beginMarker, endMarker)
	}
	return doc[:i+len(beginMarker)] + "\n\n" + generated + doc[j:], nil
}
