package iptables

import (
	"errors"
	"os/exec"
	"testing"

	"github.com/ravel-lb/ravel/netops"
)

func TestRestoreErrorClasses(t *testing.T) {
	batch := "*nat\n:RAVEL-A - [0:0]\n-A RAVEL-A -j ACCEPT\n-D PREROUTING -j RAVEL\n-I OUTPUT 3 -j RAVEL\n-X RAVEL-A\n-X RAVEL-B\nCOMMIT\n"
	exit := &exec.ExitError{}
	for _, tt := range []struct {
		stderr string
		class  error
	}{
		// legacy: no reason, found from the line
		{"iptables-restore: line 4 failed\n", netops.ErrNotExist},
		{"iptables-restore: line 5 failed\n", netops.ErrInvalid},
		{"iptables-restore: line 6 failed\n", ErrInUse},
		{"iptables-restore: line 7 failed\n", netops.ErrNotExist},
		// nf_tables: the reason is in the message
		{"iptables-nft-restore v1.8.9 (nf_tables): \nline 6: CHAIN_DEL failed (Device or resource busy): chain RAVEL-A\n", ErrInUse},
		{"iptables-nft-restore v1.8.9 (nf_tables): Chain 'RAVEL-NOPE' does not exist\nError occurred at line: 3\n", netops.ErrNotExist},
		{"iptables-legacy-restore v1.8.9 (legacy): Couldn't load target `RAVEL-NOPE':No such file or directory\n\nError occurred at line: 2\n", netops.ErrNotExist},
	} {
		err := restoreError("iptables-restore", exit, tt.stderr, batch)
		if !errors.Is(err, tt.class) {
			t.Errorf("%q: err = %v, want %v", tt.stderr, err, tt.class)
		}
	}
}
