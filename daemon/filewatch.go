package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// DefaultFileDebounce is how long the config directory must be quiet before a changed file is
// reloaded: editors write a file in several steps, and a half-written file must not be read.
const DefaultFileDebounce = 300 * time.Millisecond

// WatchFile calls changed (debounced) whenever something happens in the directory of path, or
// in the directory its symlinks lead to, until ctx ends.
//
// The directory is watched rather than the file because the file's inode does not survive
// the usual ways of changing it: editors and `mv` replace it by rename, and a Kubernetes
// ConfigMap volume swaps a "..data" symlink to a new directory; a watch on the old inode would
// see nothing after the first change. Any event in the directory is a hint only: the reloader
// compares the file's bytes and skips a reload when they did not change.
func WatchFile(ctx context.Context, path string, debounce time.Duration, log *slog.Logger, changed func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", path, err)
	}
	defer w.Close()
	watched := map[string]bool{}
	watchDirs := func() {
		dirs := []string{filepath.Dir(path)}
		// A symlinked file (a ConfigMap key, or /etc/ravel/ravel.yaml -> /srv/...) is changed
		// where its target lives; watch that directory too. Re-resolved after every event,
		// because a ConfigMap update moves the target.
		if real, err := filepath.EvalSymlinks(path); err == nil && filepath.Dir(real) != dirs[0] {
			dirs = append(dirs, filepath.Dir(real))
		}
		for _, d := range dirs {
			if watched[d] {
				continue
			}
			if err := w.Add(d); err != nil {
				log.Warn("cannot watch config directory; SIGHUP still reloads", "dir", d, "err", err)
				continue
			}
			watched[d] = true
		}
	}
	watchDirs()
	if len(watched) == 0 {
		return fmt.Errorf("watching %s: no directory could be watched", path)
	}
	var fire <-chan time.Time
	var timer *time.Timer
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.Events:
			if !ok {
				return nil
			}
			if ev.Has(fsnotify.Chmod) && !ev.Has(fsnotify.Write) {
				continue // touch, chmod: the bytes are the same
			}
			if timer == nil {
				timer = time.NewTimer(debounce)
			} else {
				timer.Reset(debounce)
			}
			fire = timer.C
		case err, ok := <-w.Errors:
			if !ok {
				return nil
			}
			// An overflow loses events, not the file: reload to be sure.
			log.Warn("config file watch error; reloading to be safe", "err", err)
			changed()
		case <-fire:
			fire = nil
			watchDirs()
			changed()
		}
	}
}
