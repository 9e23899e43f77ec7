package main

import (
	"errors"

	"github.com/ravel-lb/ravel/netops/nftables"
)

// Unit tests of the command never touch the host's nftables: openNFT fails unless a test
// gives it a fake, so rules.backend iptables (the default) runs as before, and auto picks
// iptables.
func init() {
	openNFT = func(string) (*nftables.Tables, error) { return nil, errors.New("nftables: not in unit tests") }
}
