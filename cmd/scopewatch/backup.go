package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/scopewatch/scopewatch/api"
	"github.com/scopewatch/scopewatch/store"
)

// cmdBackup writes a consistent copy of the store: through the running
// daemon's API, which copies it in one read transaction while it keeps
// committing, or from the file when no daemon answers.
func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("backup")
	configPath := fs.String("config", "", configUsage)
	output := fs.String("output", "", "file to write the copy to (must not exist)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *output == "" {
		return usagef("--output is required: the file to write the copy to")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(*output); err == nil {
		return usagef("%s exists: a backup never overwrites a file", *output)
	}
	client := api.NewClient(cfg)
	resp, ok, err := client.Call(ctx, http.MethodGet, "/api/v1/backup", nil)
	if err != nil {
		return err
	}
	at := ""
	if ok {
		defer resp.Body.Close()
		at = client.At(resp)
	}
	via := "the running daemon"
	n, err := writeNew(*output, func(w io.Writer) (int64, error) {
		if ok {
			if resp.StatusCode != http.StatusOK {
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				return 0, fmt.Errorf("daemon %s: %s: %s", at, resp.Status, b)
			}
			n, err := io.Copy(w, resp.Body)
			if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
				err = fmt.Errorf("daemon %s sent %d of %d bytes", at, n, resp.ContentLength)
			}
			return n, err
		}
		via = cfg.Store
		db, err := store.Open(cfg.Store, store.Options{ReadOnly: true})
		if err != nil {
			return 0, err
		}
		defer db.Close()
		return db.Backup(w, nil)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s (%s) from %s to %s\n", cfg.Store, sizeOf(n), via, *output)
	return nil
}

// writeNew creates path (mode 0600: the store holds client ids and
// addresses), fills it with write, syncs it and its directory, and removes
// it again if anything fails.
func writeNew(path string, write func(io.Writer) (int64, error)) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := write(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(path)
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return n, nil
}

// syncDir makes a directory's entries (a new or renamed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// cmdCompact rewrites the store without its free pages. It needs the
// store to itself: with the daemon running, opening it fails with the
// daemon's pid.
func cmdCompact(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("compact")
	configPath := fs.String("config", "", configUsage)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	before, after, err := compactStore(cfg.Store)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "compacted %s: %s → %s\n", cfg.Store, sizeOf(before), sizeOf(after))
	return nil
}

// compactStore replaces the store at path with a compacted copy that has
// the original's owner and mode, and returns both sizes. It first checks
// the store, read-only, as scopewatch check does, and refuses a damaged
// one before writing anything: bbolt copies the records it can read
// without decoding them, so a compaction would carry damaged records into
// the copy and report success. The store stays locked for writing until the copy has been renamed over it,
// so no daemon can start on the file being replaced.
func compactStore(path string) (before, after int64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	r, err := store.Check(path)
	if errors.Is(err, store.ErrLocked) {
		return 0, 0, fmt.Errorf("compact (stop the daemon first): %w", err)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	if r.Damaged() {
		return 0, 0, fmt.Errorf("refused: the store fails the check, nothing was written (scopewatch check lists every problem): %w", r.Err())
	}
	db, err := store.Open(path, store.Options{})
	if errors.Is(err, store.ErrLocked) {
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
	if err := syncDir(filepath.Dir(path)); err != nil {
		return 0, 0, fmt.Errorf("compact: %w", err)
	}
	return fi.Size(), nfi.Size(), nil
}

// sizeOf formats a byte count for people.
func sizeOf(n int64) string {
	const mib = 1 << 20
	if n < mib {
		return strconv.FormatInt(n, 10) + " bytes"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/mib)
}
