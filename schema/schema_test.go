package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/schema"
)

// TestSchemaCoversTypes walks the Go types the loader decodes into and the JSON Schema side by
// side: every YAML key of the types must be a property of the schema and the other way round,
// every object with fixed keys must refuse others (additionalProperties: false) so that editors
// flag unknown keys like the loader does, and every key must carry a description.
func TestSchemaCoversTypes(t *testing.T) {
	var root map[string]any
	if err := json.Unmarshal(schema.JSONSchema(), &root); err != nil {
		t.Fatalf("ravel.schema.json: %v", err)
	}
	walkType(t, reflect.TypeFor[schema.ClusterConfig](), root, "")
}

var (
	typeAddr     = reflect.TypeFor[netip.Addr]()
	typeDuration = reflect.TypeFor[schema.Duration]()
)

func walkType(t *testing.T, typ reflect.Type, sch map[string]any, path string) {
	t.Helper()
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	switch {
	case typ == typeAddr || typ == typeDuration:
		if !hasType(sch, "string") {
			t.Errorf("%s: schema type %v, want string", path, sch["type"])
		}
	case typ.Kind() == reflect.Struct:
		if !hasType(sch, "object") {
			t.Errorf("%s: schema type %v, want object", path, sch["type"])
		}
		if sch["additionalProperties"] != false {
			t.Errorf("%s: additionalProperties is %v, want false", or(path, "the root"), sch["additionalProperties"])
		}
		props, _ := sch["properties"].(map[string]any)
		seen := map[string]bool{}
		for i := range typ.NumField() {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			seen[name] = true
			p := join(path, name)
			ps, ok := props[name].(map[string]any)
			if !ok {
				t.Errorf("%s: key of %s.%s is missing from ravel.schema.json (run go generate ./schema)", p, typ.Name(), typ.Field(i).Name)
				continue
			}
			if d, _ := ps["description"].(string); d == "" {
				t.Errorf("%s: no description", p)
			}
			walkType(t, typ.Field(i).Type, ps, p)
		}
		for name := range props {
			if !seen[name] {
				t.Errorf("%s: the schema has a key that the Go types do not", join(path, name))
			}
		}
	case typ.Kind() == reflect.Slice:
		if !hasType(sch, "array") {
			t.Errorf("%s: schema type %v, want array", path, sch["type"])
		}
		items, _ := sch["items"].(map[string]any)
		walkType(t, typ.Elem(), items, path+"[]")
	case typ.Kind() == reflect.Map:
		if !hasType(sch, "object") || sch["properties"] != nil {
			t.Errorf("%s: want an object with additionalProperties only", path)
		}
		values, _ := sch["additionalProperties"].(map[string]any)
		walkType(t, typ.Elem(), values, path+".<name>")
	case typ.Kind() == reflect.String:
		if !hasType(sch, "string") {
			t.Errorf("%s: schema type %v, want string", path, sch["type"])
		}
	case typ.Kind() == reflect.Int || typ.Kind() == reflect.Int64:
		if !hasType(sch, "integer") {
			t.Errorf("%s: schema type %v, want integer", path, sch["type"])
		}
	case typ.Kind() == reflect.Bool:
		if !hasType(sch, "boolean") {
			t.Errorf("%s: schema type %v, want boolean", path, sch["type"])
		}
	default:
		t.Errorf("%s: Go type %s has no counterpart in this test", path, typ)
	}
}

func hasType(sch map[string]any, want string) bool {
	switch v := sch["type"].(type) {
	case string:
		return v == want
	case []any:
		return slices.Contains(v, any(want))
	}
	return false
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func or(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// TestSchemaAcceptsGoodFiles validates every example and every testdata good file against the
// schema, after converting the YAML to JSON as an editor does. A file that loads without
// warnings must validate. A file that loads with warnings may fail the schema, but only at
// keys the loader warns about: the schema flags in the editor exactly the kind of values that
// `ravel config validate` reports as normalized, and nothing that it accepts silently.
func TestSchemaAcceptsGoodFiles(t *testing.T) {
	sch := compile(t)
	examples, _ := filepath.Glob("../examples/*.yaml")
	goods, _ := filepath.Glob("../config/testdata/*.good.yaml")
	if len(examples) == 0 || len(goods) == 0 {
		t.Fatal("no example or good file found")
	}
	for _, f := range append(examples, goods...) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := config.Load(f)
			if err != nil {
				t.Fatalf("does not load: %v", err)
			}
			var warned []string
			for _, w := range c.Warnings {
				warned = append(warned, w.Path)
			}
			for _, loc := range schemaErrors(t, sch, f) {
				if !covered(loc.path, warned) {
					t.Errorf("the schema refuses %s (%s), where the loader does not warn", or(loc.path, "the document"), loc.msg)
				}
			}
		})
	}
}

// TestSchemaRefusesBadValues checks that the schema is not vacuous: values the loader refuses
// are refused by the schema too, at the same key.
func TestSchemaRefusesBadValues(t *testing.T) {
	sch := compile(t)
	for _, tc := range []struct{ yaml, path string }{
		{"apiVersion: ravel/v2\nkind: ClusterConfig\n", "apiVersion"},
		{"kind: ClusterConfig\n", ""},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {rol: director}\n", "node"},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {role: boss}\n", "node.role"},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\nvipPool: [10.0.0.256]\n", "vipPool[0]"},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\nvipPool: [10.0.0.1, 10.0.0.1]\n", "vipPool"},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\nservices: [{vip: 10.0.0.1, port: 0, backends: [{address: 10.0.0.5}]}]\n", "services[0].port"},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\nservices: [{vip: 10.0.0.1, backends: [{address: 10.0.0.5}]}]\n", "services[0]"},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\nservices: [{vip: 10.0.0.1, port: 80, backends: [{address: 10.0.0.5, weight: 65536}]}]\n", "services[0].backends[0].weight"},
		// jsonschema/v6 locates a propertyNames error at the name, as an instance of its own.
		{"apiVersion: ravel/v1\nkind: ClusterConfig\nipvsSysctls: {\"../x\": 1}\n", ""},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\nresync: 60\n", "resync"},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\nresync: -1s\n", "resync"},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\ncolocation: shared\n", "colocation"},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\ndefaults: {protocols: [sctp]}\n", "defaults.protocols[0]"},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\ndefaults: {ipvs: {scheduler: fastest}}\n", "defaults.ipvs.scheduler"},
		{"apiVersion: ravel/v1\nkind: ClusterConfig\niptables: {chain: RAVEL-LB}\n", "iptables.chain"},
	} {
		errs := validate(t, sch, []byte(tc.yaml))
		var got []string
		for _, e := range errs {
			got = append(got, e.path)
		}
		if !slices.Contains(got, tc.path) {
			t.Errorf("%q: schema errors at %q (%v), want one at %q", tc.yaml, got, errs, tc.path)
		}
	}
}

// covered reports whether a schema error at path is about a key the loader warned about: the
// same key, or a list whose element it warned about.
func covered(path string, warned []string) bool {
	for _, w := range warned {
		if w == path || strings.HasPrefix(w, path+"[") {
			return true
		}
	}
	return false
}

func compile(t *testing.T) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema.JSONSchema()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("ravel.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("ravel.schema.json")
	if err != nil {
		t.Fatalf("ravel.schema.json is not a valid JSON Schema: %v", err)
	}
	return sch
}

type schemaError struct{ path, msg string }

func schemaErrors(t *testing.T, sch *jsonschema.Schema, file string) []schemaError {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return validate(t, sch, data)
}

// validate converts YAML to JSON (as yaml-language-server does: anchors and merge keys
// resolved) and returns the leaf errors of the schema, located with ravel's key paths.
func validate(t *testing.T, sch *jsonschema.Schema, data []byte) []schemaError {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		if strings.Contains(err.Error(), "excessive aliasing") {
			// testdata/merge-layers.good.yaml merges anchors in 30 layers: ravel resolves each
			// mapping once, but a generic YAML-to-JSON conversion would expand 3^30 values.
			t.Skipf("the YAML cannot be converted to JSON: %v", err)
		}
		t.Fatalf("YAML: %v", err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("to JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("validate: %v", err)
	}
	var out []schemaError
	var leaves func(e *jsonschema.ValidationError)
	leaves = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			out = append(out, schemaError{keyPath(e.InstanceLocation), e.Error()})
		}
		for _, c := range e.Causes {
			leaves(c)
		}
	}
	leaves(ve)
	return out
}

// keyPath turns a JSON pointer's tokens into ravel's key path: services[0].ipvs.scheduler.
func keyPath(tokens []string) string {
	var b strings.Builder
	for _, tok := range tokens {
		if _, err := strconv.Atoi(tok); err == nil {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}
