package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"unicode"
)

// obj is a JSON object that keeps its keys in insertion order, so the schema reads in the
// order of the Go types and diffs stay small.
type obj []kv

type kv struct {
	k string
	v any
}

func (o obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, e := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(e.k)
		b.Write(k)
		b.WriteByte(':')
		v, err := marshal(e.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// marshal is json.Marshal without HTML escaping (patterns hold '<' and '&' rarely, but "<name>"
// in descriptions should stay readable).
func marshal(v any) ([]byte, error) {
	if m, ok := v.(map[string]any); ok { // defaults of maps: sorted keys
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		o := obj{}
		for _, k := range keys {
			o = append(o, kv{k, m[k]})
		}
		v = o
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// jsonSchema renders the whole format as a JSON Schema (draft 2020-12).
func jsonSchema(doc string, keys []*key) ([]byte, error) {
	root := obj{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"$id", "https://github.com/ravel-lb/ravel/schema/ravel.schema.json"},
		{"title", "ravel ClusterConfig"},
		{"description", doc + " Generated from package schema by `go generate ./schema`; do not edit."},
	}
	root = append(root, objectBody(keys)...)
	out, err := marshal(root)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := json.Indent(&b, out, "", "  "); err != nil {
		return nil, err
	}
	b.WriteByte('\n')
	return b.Bytes(), nil
}

// objectBody is the part of an object's schema that lists its keys. Every object with fixed
// keys closes itself with additionalProperties: false, so editors flag unknown keys the way the
// loader refuses them.
func objectBody(keys []*key) obj {
	props := obj{}
	var required []string
	for _, k := range keys {
		props = append(props, kv{k.Name, keySchema(k, false)})
		if k.Required {
			required = append(required, k.Name)
		}
	}
	o := obj{{"type", "object"}}
	if len(required) > 0 {
		o = append(o, kv{"required", required})
	}
	o = append(o, kv{"properties", props}, kv{"additionalProperties", false})
	return o
}

// keySchema renders one key. item says it is an element of a list, which may not be null.
func keySchema(k *key, item bool) obj {
	o := obj{}
	if k.Doc != "" {
		o = append(o, kv{"description", k.Doc})
	}
	jsonType := map[string]string{
		"object": "object", "map": "object", "list": "array", "string": "string",
		"duration": "string", "address": "string", "integer": "integer", "boolean": "boolean",
	}[k.Kind]
	nullable := k.Nullable && !item
	switch k.Kind {
	case "object":
		body := objectBody(k.Fields)
		if nullable {
			body[0] = kv{"type", []string{"object", "null"}}
		}
		return append(o, body...)
	case "map":
		o = append(o, typeKV(jsonType, nullable))
		if k.KeyPattern != "" {
			o = append(o, kv{"propertyNames", obj{{"pattern", k.KeyPattern}}})
		}
		o = append(o, kv{"additionalProperties", keySchema(k.Values, false)})
	case "list":
		o = append(o, typeKV(jsonType, nullable))
		o = append(o, kv{"items", keySchema(k.Items, true)})
		if k.MinItems > 0 {
			o = append(o, kv{"minItems", k.MinItems})
		}
		if k.Unique {
			o = append(o, kv{"uniqueItems", true})
		}
	default:
		o = append(o, typeKV(jsonType, nullable))
		switch {
		case k.Const != "":
			o = append(o, kv{"const", k.Const})
		case k.Enum != nil && k.AnyCase:
			// The loader reads these case-insensitively (NAT is nat): a pattern accepts
			// every case; examples keep the values an editor offers.
			o = append(o, kv{"pattern", anyCasePattern(k.Enum, k.EmptyOK)}, kv{"examples", k.Enum})
		case k.Enum != nil:
			enum := []any{}
			for _, e := range k.Enum {
				enum = append(enum, e)
			}
			if k.EmptyOK {
				enum = append(enum, "")
			}
			if nullable {
				enum = append(enum, nil)
			}
			o = append(o, kv{"enum", enum})
		}
		if k.Pattern != "" {
			p := k.Pattern
			if k.EmptyOK {
				p = "^$|" + p
			}
			o = append(o, kv{"pattern", p})
		}
		if k.Min != nil {
			o = append(o, kv{"minimum", *k.Min})
		}
		if k.Max != nil {
			o = append(o, kv{"maximum", *k.Max})
		}
	}
	if k.HasDefault {
		o = append(o, kv{"default", k.Default})
	}
	return o
}

func typeKV(t string, nullable bool) kv {
	if nullable {
		return kv{"type", []string{t, "null"}}
	}
	return kv{"type", t}
}

// anyCasePattern matches each of values in any case ("nat" as ^([nN][aA][tT])$), and the empty
// string too when emptyOK.
func anyCasePattern(values []string, emptyOK bool) string {
	alts := make([]string, 0, len(values)+1)
	if emptyOK {
		alts = append(alts, "")
	}
	for _, v := range values {
		var b strings.Builder
		for _, r := range v {
			if u := unicode.ToUpper(r); u != r {
				b.WriteString("[" + string(r) + string(u) + "]")
			} else {
				b.WriteString(regexp.QuoteMeta(string(r)))
			}
		}
		alts = append(alts, b.String())
	}
	return "^(" + strings.Join(alts, "|") + ")$"
}
