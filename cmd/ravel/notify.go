package main

import (
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/ravel-lb/ravel/config"
	"github.com/ravel-lb/ravel/daemon"
	"golang.org/x/sys/unix"
)

// notifier tells systemd (Type=notify) about the daemon's state; without NOTIFY_SOCKET every call does nothing.
//
// Each call sends one datagram (sd_notify(3)); the fields of one state change travel together,
// so systemd never sees RELOADING=1 without its MONOTONIC_USEC. It is safe for concurrent use:
// the signal handler and the reload loop may both call it.
type notifier struct {
	log    *slog.Logger
	warned atomic.Bool // set by the first failed send; later failures are not logged
}

// newNotifier returns a notifier that logs its first failure to log at warn level.
func newNotifier(log *slog.Logger) *notifier {
	if log == nil {
		log = slog.Default()
	}
	return &notifier{log: log}
}

// Ready reports that startup, or a reload, is complete: READY=1 with STATUS=running.
func (n *notifier) Ready() { n.send("READY=1\nSTATUS=running") }

// Reloaded reports that a reload is over: READY=1, with STATUS=running when it took effect, or
// a status line that says the previous config still runs and why, so `systemctl status ravel`
// shows the first finding (file:line:column) of a refused file.
func (n *notifier) Reloaded(rep daemon.ReloadReport) {
	if rep.Result == daemon.ReloadOK {
		n.Ready()
		return
	}
	n.send("READY=1\nSTATUS=" + reloadRefusedStatus(rep))
}

// reloadRefusedStatus is the one-line status of a refused reload: its first error finding
// (restart-required findings are errors too), else its error (a failed apply has no finding).
func reloadRefusedStatus(rep daemon.ReloadReport) string {
	why := rep.Error
	for _, f := range rep.Findings {
		if f.Severity != config.SeverityWarning {
			why = f.String()
			break
		}
	}
	// The status is one line; a message may hold several.
	why, _, _ = strings.Cut(why, "\n")
	return fmt.Sprintf("running the previous config; reload %s: %s", rep.Result, why)
}

// Reloading reports that a reload has begun: RELOADING=1 and MONOTONIC_USEC=<CLOCK_MONOTONIC in
// µs> in one datagram. sd_notify(3) requires the timestamp with RELOADING=1 from systemd 253 on
// (it tells which reload the message answers); systemd 252 (Debian 12) ignores the field.
// Ready must follow, or the unit stays "reloading".
func (n *notifier) Reloading() {
	n.send(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
}

// Status sets the free-form status line `systemctl status ravel` shows.
func (n *notifier) Status(msg string) { n.send("STATUS=" + msg) }

// Stopping reports that the daemon has begun to shut down: STOPPING=1.
func (n *notifier) Stopping() { n.send("STOPPING=1") }

// send hands state to systemd. A failure is never fatal: the daemon's work does not depend on
// systemd hearing about it (at worst systemd times the start out and restarts the unit).
func (n *notifier) send(state string) {
	_, err := sddaemon.SdNotify(false, state)
	if err != nil && n.warned.CompareAndSwap(false, true) {
		n.log.Warn("cannot notify systemd; further notify errors are not logged", "err", err)
	}
}

// monotonicUsec returns CLOCK_MONOTONIC in microseconds, the clock systemd compares
// MONOTONIC_USEC against (time.Now's monotonic reading is not exposed as an absolute value).
func monotonicUsec() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0 // cannot fail on Linux for CLOCK_MONOTONIC
	}
	return ts.Sec*1_000_000 + ts.Nsec/1_000
}
