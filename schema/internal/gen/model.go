package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/netip"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/ravel-lb/ravel/schema"
)

// key is one key of the format, with everything the JSON Schema and the reference need. It is
// built from the Go types by reflection (the same view the loader's decoder has), their
// `validate` and `schema` tags, the declared defaults, and the doc comments of types.go.
type key struct {
	Name string // YAML key
	Path string // services[].ipvs.scheduler
	Doc  string
	Kind string // object, map, list, string, integer, boolean, duration, address

	Nullable   bool // a key with no value is accepted (it keeps its default)
	EmptyOK    bool // "" is accepted (optional address, omitempty rule)
	Required   bool
	Const      string
	Enum       []string
	Pattern    string
	PatternDoc string
	Min, Max   *int
	MinItems   int
	Unique     bool
	Normalized bool // invalid values become a default with a warning instead of an error
	AnyCase    bool // the loader lowercases the value before checking it against Enum

	HasDefault bool
	Default    any    // JSON-able
	Inherit    string // where an unset value comes from (services[].ipvs.* <- defaults.ipvs.*)

	Fields []*key // object
	Items  *key   // list
	Values *key   // map
	// KeyPattern constrains the keys of a map.
	KeyPattern, KeyDoc string
}

var (
	typeAddr     = reflect.TypeFor[netip.Addr]()
	typeDuration = reflect.TypeFor[schema.Duration]()
)

// registries resolve the names used in `schema` tags (enum=Schedulers, const=APIVersion,
// keys=SysctlKey) to values of package schema.
var (
	enums = map[string][]string{
		"Schedulers":     schema.Schedulers,
		"Forwardings":    schema.Forwardings,
		"SchedulerFlags": sortedKeys(schema.SchedulerFlags),
	}
	consts   = map[string]string{"APIVersion": schema.APIVersion, "Kind": schema.Kind}
	patterns = map[string][2]string{ // validate tag or name -> pattern, words for the reference
		"ifname":    {schema.PatternIfName, "an interface name: 1 to 15 letters, digits, '.', '_', ':' or '-'"},
		"chain":     {schema.PatternChain, "a letter, then up to 12 letters, digits or '_'"},
		"table":     {schema.PatternTable, "a letter, then up to 31 letters, digits, '_' or '-'"},
		"k8sname":   {schema.PatternK8sName, "a Kubernetes name: lowercase letters, digits and '-', at most 63"},
		"hostport":  {schema.PatternHostPort, "host:port with a port in 0..65535"},
		"SysctlKey": {schema.PatternSysctlKey, "lowercase letters, digits and '_' (a file name, never a path)"},
	}
)

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	// Group by scheduler, in the order the kernel documents them: sh-fallback sh-port ...
	sort.Slice(ks, func(i, j int) bool {
		if m[ks[i]] != m[ks[j]] {
			return m[ks[i]] > m[ks[j]]
		}
		return ks[i] < ks[j]
	})
	return ks
}

// docs reads the doc comments of the types and their fields from the Go files of dir:
// "Node" and "Node.Role".
func docs(dir string) (map[string]string, error) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ParseComments)
		if err != nil {
			return nil, err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				out[ts.Name.Name] = text(doc)
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				for _, fl := range st.Fields.List {
					for _, n := range fl.Names {
						out[ts.Name.Name+"."+n.Name] = text(fl.Doc)
					}
				}
			}
		}
	}
	return out, nil
}

// userDoc rewrites a Go doc comment for the user: "VIPPool lists ..." becomes
// "vipPool lists ...", since the user writes the YAML key, not the Go field.
func userDoc(doc, goName, yamlName string) string {
	if rest, ok := strings.CutPrefix(doc, goName+" "); ok {
		return yamlName + " " + rest
	}
	if rest, ok := strings.CutPrefix(doc, goName+","); ok {
		return yamlName + "," + rest
	}
	return doc
}

// text joins a comment group into one paragraph.
func text(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	return strings.Join(strings.Fields(g.Text()), " ")
}

type builder struct {
	docs map[string]string
	errs []string
}

// object returns the keys of struct type t. def is its default value, if it has one.
func (b *builder) object(t reflect.Type, def reflect.Value, path, inherit string) []*key {
	var out []*key
	for i := range t.NumField() {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		k := &key{Name: name, Path: p, Doc: userDoc(b.docs[t.Name()+"."+sf.Name], sf.Name, name), Nullable: true}
		if k.Doc == "" {
			b.errs = append(b.errs, fmt.Sprintf("%s.%s (%s) has no doc comment", t.Name(), sf.Name, p))
		}
		var fdef reflect.Value
		if def.IsValid() {
			fdef = def.Field(i)
		}
		stag := tagSet(sf.Tag.Get("schema"))
		k.Required = stag["required"] != ""
		k.Const = consts[stag["const"]]
		k.Unique = stag["unique"] != ""
		k.Normalized = stag["normalized"] != ""
		k.AnyCase = stag["anycase"] != ""
		if e := stag["enum"]; e != "" {
			k.Enum = enums[e]
		}
		if p := stag["keys"]; p != "" {
			k.KeyPattern, k.KeyDoc = patterns[p][0], patterns[p][1]
		}
		if inherit != "" {
			k.Inherit = inherit + "." + name
		} else if in := stag["inherit"]; in != "" {
			k.Inherit = in
		}
		self, items := splitDive(sf.Tag.Get("validate"))
		b.typed(k, sf.Type, fdef, self, items, stag["inherit"])
		if k.Inherit != "" && k.Kind == "string" {
			k.EmptyOK = true // "" inherits, like leaving the key out
		}
		if k.Required || k.Const != "" {
			// A required key written with no value is refused as missing.
			k.Nullable = false
		}
		out = append(out, k)
	}
	return out
}

// typed fills k for a value of type t with validate rules self (and items, for a list's
// elements).
func (b *builder) typed(k *key, t reflect.Type, def reflect.Value, self, items []string, inherit string) {
	if t.Kind() == reflect.Pointer {
		if def.IsValid() && !def.IsNil() {
			def = def.Elem()
		} else {
			def = reflect.Value{}
		}
		if t.Elem() == typeAddr {
			k.EmptyOK = true // `gateway: ""` means unset
		}
		t = t.Elem()
		if d, ok := schema.DefaultFor(t); ok && !def.IsValid() {
			def = d
		}
	}
	switch {
	case t == typeAddr:
		k.Kind = "address"
		k.Pattern = schema.PatternIP
		k.Nullable = k.EmptyOK
	case t == typeDuration:
		k.Kind = "duration"
		k.Pattern = schema.PatternDuration
	case t.Kind() == reflect.Struct:
		k.Kind = "object"
		k.Fields = b.object(t, def, k.Path, inherit)
	case t.Kind() == reflect.Slice:
		k.Kind = "list"
		el := &key{Name: k.Name, Path: k.Path + "[]", Enum: k.Enum, AnyCase: k.AnyCase}
		k.Enum = nil
		edef, _ := schema.DefaultFor(t.Elem())
		b.typed(el, t.Elem(), edef, items, nil, "")
		k.Items = el
	case t.Kind() == reflect.Map:
		k.Kind = "map"
		v := &key{Name: k.Name, Path: k.Path + ".<name>", Nullable: true}
		b.typed(v, t.Elem(), reflect.Value{}, nil, nil, "")
		k.Values = v
	case t.Kind() == reflect.String:
		k.Kind = "string"
	case t.Kind() == reflect.Int || t.Kind() == reflect.Int64:
		k.Kind = "integer"
	case t.Kind() == reflect.Bool:
		k.Kind = "boolean"
	default:
		b.errs = append(b.errs, fmt.Sprintf("%s: no JSON Schema for Go type %s", k.Path, t))
	}
	for _, r := range self {
		b.rule(k, r)
	}
	if def.IsValid() && k.Kind != "object" {
		k.HasDefault, k.Default = true, jsonValue(def)
	}
}

// rule applies one validate rule to k.
func (b *builder) rule(k *key, r string) {
	name, param, _ := strings.Cut(r, "=")
	n, _ := strconv.Atoi(param)
	set := func(lo, hi int) { k.Min, k.Max = &lo, &hi }
	switch name {
	case "port":
		set(1, 65535)
	case "port0", "port0off", "weight":
		set(0, 65535)
	case "min":
		if k.Kind == "list" {
			k.MinItems = n
		} else {
			k.Min = &n
		}
	case "max":
		k.Max = &n
	case "oneof":
		k.Enum = strings.Fields(param)
	case "required":
		k.Required = true
	case "omitempty":
		k.EmptyOK = true
	case "omitnil", "-":
	case "ifname", "chain", "table", "k8sname", "hostport":
		k.Pattern, k.PatternDoc = patterns[name][0], patterns[name][1]
	default:
		b.errs = append(b.errs, fmt.Sprintf("%s: validate rule %q has no JSON Schema translation", k.Path, r))
	}
}

// splitDive splits a validate tag at "dive": rules of the value, rules of its elements.
func splitDive(tag string) (self, items []string) {
	if tag == "" {
		return nil, nil
	}
	rules := strings.Split(tag, ",")
	if i := slices.Index(rules, "dive"); i >= 0 {
		return rules[:i], rules[i+1:]
	}
	return rules, nil
}

// tagSet parses a `schema:"required,enum=Schedulers"` tag.
func tagSet(tag string) map[string]string {
	m := map[string]string{}
	for _, part := range strings.Split(tag, ",") {
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			v = "true"
		}
		m[k] = v
	}
	return m
}

// jsonValue turns a default into what JSON would hold.
func jsonValue(v reflect.Value) any {
	switch {
	case v.Type() == typeDuration:
		return v.Interface().(schema.Duration).String()
	case v.Type() == typeAddr:
		if a := v.Interface().(netip.Addr); a.IsValid() {
			return a.String()
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return nil
		}
		return jsonValue(v.Elem())
	case reflect.Slice:
		out := []any{}
		for i := range v.Len() {
			out = append(out, jsonValue(v.Index(i)))
		}
		return out
	case reflect.Map:
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[k.String()] = jsonValue(v.MapIndex(k))
		}
		return out
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int64:
		return v.Int()
	case reflect.Bool:
		return v.Bool()
	}
	return nil
}

// model builds the keys of a ClusterConfig from the Go files in dir.
func model(dir string) (doc string, keys []*key, err error) {
	d, err := docs(dir)
	if err != nil {
		return "", nil, err
	}
	b := &builder{docs: d}
	keys = b.object(reflect.TypeFor[schema.ClusterConfig](), reflect.ValueOf(schema.Default()), "", "")
	if len(b.errs) > 0 {
		return "", nil, fmt.Errorf("%s", strings.Join(b.errs, "\n"))
	}
	return d["ClusterConfig"], keys, nil
}
