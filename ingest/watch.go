package ingest

import (
	"errors"
	"path/filepath"

	"github.com/fsnotify/fsnotify"
)

// fileWatch wakes a File's Run when its path or the file behind it
// changes. It watches, with inotify, the path's directory (the creation,
// rename or removal of the path) and the live file itself (its writes,
// which a directory watch does not see when the path is a symlink, as
// under /var/log/containers). A wake is only a hint to read or to check
// now: the check ticker still reads and checks on its own, so a lost or
// overflowed event delays a line by one check at most.
//
// Only the Run that owns it uses it; Close stops fsnotify's goroutine.
type fileWatch struct {
	w     *fsnotify.Watcher
	path  string // filepath.Clean of the source's path
	dir   string // its directory, as events name it
	dirOK bool   // the directory is watched
}

// wake says what a batch of events asks of the Run.
type wake struct {
	read  bool // the live file was written
	check bool // the path was created, renamed or removed, or the directory was
}

// newFileWatch starts a watcher for path. The directory watch is added
// now if the directory exists, and retried by ensure otherwise.
func newFileWatch(path string) (*fileWatch, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	fw := &fileWatch{w: w, path: filepath.Clean(path), dir: filepath.Dir(filepath.Clean(path))}
	fw.ensure()
	return fw, nil
}

// ensure adds the directory watch if it is not in place (the directory did
// not exist yet, or was removed or renamed since).
func (fw *fileWatch) ensure() {
	if fw.dirOK {
		return
	}
	fw.dirOK = fw.w.Add(fw.dir) == nil
}

// follow moves the file watch to what the path names now. It fails when
// the path does not exist; the directory watch then reports its creation.
func (fw *fileWatch) follow() error {
	_ = fw.w.Remove(fw.path) // no watch yet, or its file is gone: nothing to remove
	return fw.w.Add(fw.path)
}

// events is the channel of raw events; nil (never ready) on a nil watch.
func (fw *fileWatch) events() <-chan fsnotify.Event {
	if fw == nil {
		return nil
	}
	return fw.w.Events
}

// errs is the channel of the watcher's errors; nil on a nil watch.
func (fw *fileWatch) errs() <-chan error {
	if fw == nil {
		return nil
	}
	return fw.w.Errors
}

// take folds ev and every event already queued behind it into one wake.
func (fw *fileWatch) take(ev fsnotify.Event) wake {
	var wk wake
	for range 1024 {
		fw.add(&wk, ev)
		select {
		case next, ok := <-fw.w.Events:
			if !ok {
				return wk
			}
			ev = next
			continue
		default:
		}
		break
	}
	return wk
}

func (fw *fileWatch) add(wk *wake, ev fsnotify.Event) {
	name := filepath.Clean(ev.Name)
	switch {
	case name == fw.path:
		if ev.Op.Has(fsnotify.Write) {
			wk.read = true
		}
		if ev.Op&^fsnotify.Write != 0 {
			wk.check = true
		}
	case name == fw.dir && ev.Op&(fsnotify.Remove|fsnotify.Rename) != 0:
		// The directory left its name: its watch follows the old
		// directory. Drop it; ensure adds the new one when it exists.
		_ = fw.w.Remove(fw.dir)
		fw.dirOK = false
		wk.check = true
	}
}

// overflowed reports whether err says that inotify dropped events.
func overflowed(err error) bool { return errors.Is(err, fsnotify.ErrEventOverflow) }

// close stops the watcher and its goroutine.
func (fw *fileWatch) close() {
	if fw != nil {
		_ = fw.w.Close()
	}
}
