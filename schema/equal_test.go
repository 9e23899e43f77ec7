package schema

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/ravel-lb/ravel/internal/reflectfill"
)

// TestServiceEqualSeesEveryField fills two services alike (by reflection, so a field added
// later is filled too), then changes each value under one of them in turn: Equal must tell
// every change, and see the two as equal again once it is undone.
func TestServiceEqualSeesEveryField(t *testing.T) {
	var a, b Service
	reflectfill.Fill(reflect.ValueOf(&a).Elem())
	reflectfill.Fill(reflect.ValueOf(&b).Elem())
	if !a.Equal(&b) {
		t.Fatal("two services filled alike are not Equal")
	}
	leaves := 0
	eachLeaf(reflect.ValueOf(&b).Elem(), "service", func(v reflect.Value, path string) {
		leaves++
		old := reflect.New(v.Type()).Elem()
		old.Set(v)
		changeValue(v)
		if a.Equal(&b) {
			t.Errorf("%s changed, and Equal does not see it", path)
		}
		v.Set(old)
		if !a.Equal(&b) {
			t.Fatalf("%s restored, and the services are not Equal", path)
		}
	})
	if leaves < 20 {
		t.Fatalf("only %d values walked", leaves)
	}
	// A pointer set on one side only is a difference too.
	b.SorryServer = nil
	if a.Equal(&b) {
		t.Error("a sorry server on one side only is not seen")
	}
}

// eachLeaf calls fn with every value under v that changeValue can change (and each list, whose
// length it changes), with its path.
func eachLeaf(v reflect.Value, path string, fn func(reflect.Value, string)) {
	if v.Type() == reflect.TypeFor[netip.Addr]() {
		fn(v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		eachLeaf(v.Elem(), path, fn)
	case reflect.Slice:
		fn(v, path+"(length)")
		for i := range v.Len() {
			eachLeaf(v.Index(i), path+"[]", fn)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				eachLeaf(v.Field(i), path+"."+f.Name, fn)
			}
		}
	default:
		fn(v, path)
	}
}

func changeValue(v reflect.Value) {
	if v.Type() == reflect.TypeFor[netip.Addr]() {
		v.Set(reflect.ValueOf(netip.MustParseAddr("10.9.8.6")))
		return
	}
	switch v.Kind() {
	case reflect.Slice:
		v.Set(v.Slice(0, v.Len()-1))
	case reflect.String:
		v.SetString("y")
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	}
}
