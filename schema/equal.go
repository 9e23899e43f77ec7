package schema

import "slices"

// Equal reports whether s and o are the same service, field by field (pointers by what they
// point to; a nil and an empty list are the same). A reload uses it to find the services it
// must compute again. TestServiceEqualSeesEveryField fails when a field is added to Service
// (or to a type under it) and not compared here.
//
// Lists that share their array and pointers that are the same are equal without a look at
// their contents: a reload shares the services it did not parse again with the config before
// (config.Cache), and then compares in constant time.
func (s *Service) Equal(o *Service) bool {
	return s.Name == o.Name && s.VIP == o.VIP && s.Port == o.Port &&
		slices.Equal(s.Protocols, o.Protocols) &&
		samePtr(s.Kubernetes, o.Kubernetes) &&
		(sameArray(s.Backends, o.Backends) || slices.EqualFunc(s.Backends, o.Backends, func(a, b Backend) bool {
			return a.Address == b.Address && a.Port == b.Port && samePtr(a.Weight, b.Weight)
		})) &&
		sameIPVS(s.IPVS, o.IPVS) &&
		samePtr(s.HealthCheck, o.HealthCheck) &&
		samePtr(s.SorryServer, o.SorryServer)
}

// sameArray reports whether a and b are the same elements of the same array.
func sameArray[T any](a, b []T) bool {
	return len(a) == len(b) && len(a) > 0 && &a[0] == &b[0]
}

func sameIPVS(a, b *IPVSOptions) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	return a.Scheduler == b.Scheduler && a.Forwarding == b.Forwarding && slices.Equal(a.Flags, b.Flags) &&
		samePtr(a.UpperThreshold, b.UpperThreshold) && samePtr(a.LowerThreshold, b.LowerThreshold)
}

// samePtr: both nil, or both set to equal values.
func samePtr[T comparable](a, b *T) bool {
	if a == b {
		return true
	}
	if a == nil || b == nil {
		return false
	}
	return *a == *b
}
