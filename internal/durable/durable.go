// Package durable writes files so that a crash or a power loss leaves
// either the whole new file or none of it: the data is synced before the
// file is named, and the directory after, so that the name survives too.
package durable

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Create writes a new file at path with mode perm from write, and fails,
// leaving any file already there untouched, when path exists. On error
// nothing is left at path. It returns what write returned.
func Create(path string, perm os.FileMode, write func(io.Writer) (int64, error)) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
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
		err = SyncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(path)
		return 0, fmt.Errorf("write %s: %w", path, err)
	}
	return n, nil
}

// Replace writes path with mode perm from write, replacing any file
// there in one rename: a reader sees the old file or the whole new one,
// never a part. The data goes to a temporary file in the same directory
// first, which is removed on error.
func Replace(path string, perm os.FileMode, write func(io.Writer) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing to remove
	err = write(tmp)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err == nil {
		err = SyncDir(filepath.Dir(path))
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SyncDir makes the names in dir durable: a file created, renamed or
// removed there survives a crash once it returns.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
