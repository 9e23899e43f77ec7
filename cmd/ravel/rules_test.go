package main

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/family"
	"github.com/ravel-lb/ravel/netops/iptables"
	"github.com/ravel-lb/ravel/netops/nftables"
)

// TestOpenRules: which backend serves for each rules.backend, what is opened to be cleaned
// up, and when a missing backend stops the start.
func TestOpenRules(t *testing.T) {
	oldNFT, oldTables := openNFT, openTables
	t.Cleanup(func() { openNFT, openTables = oldNFT, oldTables })
	nftOK := func(string) (*nftables.Tables, error) { tb, _ := nftables.NewFake(""); return tb, nil }
	nftMissing := func(string) (*nftables.Tables, error) { return nil, errors.New("could not find nftables binary") }
	iptOK := func(string, string, family.Family) (iptables.Tables, error) { return iptables.NewFake("RAVEL"), nil }
	iptMissing := func(string, string, family.Family) (iptables.Tables, error) { return nil, errors.New("no iptables") }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tt := range []struct {
		name      string
		backend   string
		nft       func(string) (*nftables.Tables, error)
		ipt       func(string, string, family.Family) (iptables.Tables, error)
		needRules bool
		wantNFT   bool // nftables serves
		wantErr   bool
		wantOther bool // the backend not in use was opened, to be cleaned up
	}{
		{name: "iptables, nft installed: the table is cleaned up", backend: "iptables", nft: nftOK, ipt: iptOK, needRules: true, wantOther: true},
		{name: "iptables without nft", backend: "iptables", nft: nftMissing, ipt: iptOK, needRules: true},
		{name: "iptables missing on a realserver", backend: "iptables", nft: nftOK, ipt: iptMissing, needRules: true, wantErr: true},
		{name: "iptables missing on an isolated director", backend: "iptables", nft: nftOK, ipt: iptMissing, wantOther: true},
		{name: "nftables", backend: "nftables", nft: nftOK, ipt: iptOK, needRules: true, wantNFT: true, wantOther: true},
		{name: "nftables without iptables", backend: "nftables", nft: nftOK, ipt: iptMissing, needRules: true, wantNFT: true},
		{name: "nftables without nft", backend: "nftables", nft: nftMissing, ipt: iptOK, needRules: true, wantErr: true},
		{name: "nftables without nft on an isolated director", backend: "nftables", nft: nftMissing, ipt: iptOK},
		{name: "auto with nft", backend: "auto", nft: nftOK, ipt: iptOK, needRules: true, wantNFT: true, wantOther: true},
		{name: "auto without nft", backend: "auto", nft: nftMissing, ipt: iptOK, needRules: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			openNFT, openTables = tt.nft, tt.ipt
			cfg, err := config.Parse("t.yaml", []byte("apiVersion: ravel/v1\nkind: ClusterConfig\nnode: {name: n1, role: realserver, interface: eth0}\nrules: {backend: "+tt.backend+"}\n"))
			if err != nil {
				t.Fatal(err)
			}
			rb, err := openRules(cfg, tt.needRules, log)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if rb.useNFT != tt.wantNFT {
				t.Errorf("nftables serves: %v, want %v", rb.useNFT, tt.wantNFT)
			}
			other := rb.nft != nil
			if rb.useNFT {
				other = rb.ipt != nil
			}
			if other != tt.wantOther {
				t.Errorf("other backend opened: %v, want %v", other, tt.wantOther)
			}
		})
	}
}
