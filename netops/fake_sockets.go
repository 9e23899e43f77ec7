package netops

import "net/netip"

// FakeSockets is a Sockets whose listeners and holders a test sets.
type FakeSockets struct {
	Listening []Listener
	Holders   map[uint64]Holder
}

var _ Sockets = (*FakeSockets)(nil)

// Listeners implements Sockets with the kernel's matching of addresses.
func (f *FakeSockets) Listeners(ap netip.AddrPort) ([]Listener, error) {
	return listenersFor(f.Listening, ap), nil
}

// Holder implements Sockets.
func (f *FakeSockets) Holder(inode uint64) (Holder, bool) {
	h, ok := f.Holders[inode]
	return h, ok
}
