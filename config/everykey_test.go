package config

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/ravel-lb/ravel/schema"
)

// TestEveryKeyIsShown fails when a key of the format is missing from the files that promise to
// show every key: examples/full.yaml (for operators) and testdata/every-key.good.yaml (whose
// effective config TestGoodFiles compares in full).
func TestEveryKeyIsShown(t *testing.T) {
	for _, f := range []string{"../examples/full.yaml", "testdata/every-key.good.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc yaml.Node
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatal(err)
		}
		for _, k := range missingKeys(reflect.TypeFor[schema.ClusterConfig](), doc.Content, "") {
			t.Errorf("%s: key %s is missing", f, k)
		}
	}
}

// missingKeys returns the keys of type t that none of the YAML nodes sets (for a list of
// mappings, a key is shown if one element sets it).
func missingKeys(t reflect.Type, nodes []*yaml.Node, path string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[schema.Duration]() || t.Kind() != reflect.Struct && t.Kind() != reflect.Slice:
		return nil
	case t.Kind() == reflect.Slice:
		var items []*yaml.Node
		for _, n := range nodes {
			if n.Kind == yaml.SequenceNode {
				items = append(items, n.Content...)
			}
		}
		return missingKeys(t.Elem(), items, path+"[]")
	case t.Kind() == reflect.Struct && t.NumField() > 0 && t.Field(0).Tag.Get("yaml") == "":
		return nil // netip.Addr and other scalars written as text
	}
	var missing []string
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		p := join(path, name)
		var values []*yaml.Node
		for _, n := range nodes {
			if _, v := findKey(n, name, 0); v != nil {
				values = append(values, v)
			}
		}
		if len(values) == 0 {
			missing = append(missing, p)
			continue
		}
		missing = append(missing, missingKeys(t.Field(i).Type, values, p)...)
	}
	return missing
}
