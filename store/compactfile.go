package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/scopewatch/scopewatch/internal/durable"
)

// CompactFile replaces the store at path with a compacted copy that has
// the original's owner and mode, and returns both sizes. It first checks
// the store, read-only, as scopewatch check does, and refuses a damaged
// one before writing anything: bbolt copies the records it can read
// without decoding them, so a compaction would carry damaged records into
// the copy and report success. The store stays locked for writing until
// the copy has been renamed over it, so no daemon can start on the file
// being replaced.
func CompactFile(path string) (before, after int64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	r, err := Check(path)
	if errors.Is(err, ErrLocked) {
		return 0, 0, fmt.Errorf("compact (stop the daemon first): %w", err)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	if r.Damaged() {
		return 0, 0, fmt.Errorf("refused: the store fails the check, nothing was written (scopewatch check lists every problem): %w", r.Err())
	}
	db, err := Open(path, Options{})
	if errors.Is(err, ErrLocked) {
		return 0, 0, fmt.Errorf("compact (stop the daemon first): %w", err)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	defer db.Close()
	// Holding the store's lock, nothing else can be writing this name.
	tmp := path + ".compact"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, 0, fmt.Errorf("compact: remove the copy a stopped compaction left: %w", err)
	}
	if err := db.Compact(tmp); err != nil {
		return 0, 0, err
	}
	done := false
	defer func() {
		if !done {
			os.Remove(tmp)
		}
	}()
	if err := os.Chmod(tmp, fi.Mode().Perm()); err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid()) {
		if err := os.Chown(tmp, int(st.Uid), int(st.Gid)); err != nil {
			return 0, 0, fmt.Errorf("compact: give the copy the store's owner %d:%d (run as that user or root): %w", st.Uid, st.Gid, err)
		}
	}
	nfi, err := os.Stat(tmp)
	if err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	done = true
	if err := durable.SyncDir(filepath.Dir(path)); err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	return fi.Size(), nfi.Size(), nil
}
