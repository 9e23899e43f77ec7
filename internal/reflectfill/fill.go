// Package reflectfill fills Go values by reflection, for tests that must notice a field added
// to a type later (a copy or a comparison that forgets it).
package reflectfill

import (
	"net/netip"
	"reflect"
)

// Fill sets every exported value under v to something other than its zero value: strings to
// "x", numbers to 7, booleans to true, addresses to 10.9.8.7; pointers get a value, lists two
// elements and maps one entry, each filled in turn. It panics on a kind it does not know.
func Fill(v reflect.Value) {
	if v.Type() == reflect.TypeFor[netip.Addr]() {
		v.Set(reflect.ValueOf(netip.MustParseAddr("10.9.8.7")))
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		Fill(v.Elem())
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			Fill(v.Index(i))
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		Fill(k)
		Fill(e)
		v.SetMapIndex(k, e)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				Fill(v.Field(i))
			}
		}
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if v.CanInt() {
			v.SetInt(7)
		} else {
			v.SetUint(7)
		}
	case reflect.Bool:
		v.SetBool(true)
	default:
		panic("reflectfill: cannot fill a " + v.Type().String())
	}
}
