package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BGPRestartMark is the file a bgp role leaves when it stops for a graceful restart: its
// sessions ended without a NOTIFICATION and its peers keep its routes until the time in the
// file. The next start within that time tells its peers it is restarting (graceful restart's
// Restart State and Forwarding State bits), so they keep those routes until its End-of-RIB
// instead of dropping them; after that time there is nothing left to take back. Like the
// sysctl record it lives under the state directory, per network namespace.
type BGPRestartMark struct {
	Path string
}

// NewBGPRestartMark returns the mark of this process's network namespace under dir.
func NewBGPRestartMark(dir string) BGPRestartMark {
	return BGPRestartMark{Path: filepath.Join(dir, "bgp-restart-"+netnsID())}
}

// Leave records that the peers keep the routes until until.
func (m BGPRestartMark) Leave(until time.Time) error {
	if err := os.MkdirAll(filepath.Dir(m.Path), 0o755); err != nil {
		return err
	}
	tmp := m.Path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.FormatInt(until.Unix(), 10)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, m.Path)
}

// Take reports whether a mark is there whose time has not passed at now, and removes it: a
// start restarts gracefully once, whatever happens next.
func (m BGPRestartMark) Take(now time.Time) (bool, error) {
	data, err := os.ReadFile(m.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	rmErr := os.Remove(m.Path)
	until, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return false, fmt.Errorf("%s: %w", m.Path, err)
	}
	return now.Before(time.Unix(until, 0)), rmErr
}
