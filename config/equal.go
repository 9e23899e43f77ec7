package config

import "reflect"

// SameButServices reports whether a and b differ at most in the entries of their services
// lists, which have the same length: then a reload from a to b changes the services i for
// which a.Services[i].Equal(&b.Services[i]) is false, and nothing else.
func SameButServices(a, b *Config) bool {
	x, y := a.ClusterConfig, b.ClusterConfig
	if len(x.Services) != len(y.Services) {
		return false
	}
	x.Services, y.Services = nil, nil
	return reflect.DeepEqual(x, y)
}
