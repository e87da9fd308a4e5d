package durable

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestCreateRefusesAnExistingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backup.db")
	n, err := Create(path, 0o600, func(w io.Writer) (int64, error) {
		k, err := w.Write([]byte("first"))
		return int64(k), err
	})
	if err != nil || n != 5 {
		t.Fatalf("Create = %d, %v", n, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", fi.Mode(), err)
	}
	if _, err := Create(path, 0o600, func(w io.Writer) (int64, error) { return 0, nil }); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second Create: %v, want ErrExist", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "first" {
		t.Fatalf("the first file was changed: %q", b)
	}
}

func TestCreateLeavesNothingOnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backup.db")
	boom := errors.New("boom")
	if _, err := Create(path, 0o600, func(w io.Writer) (int64, error) {
		w.Write([]byte("part"))
		return 4, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("Create: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a partial file is left: %v", err)
	}
}

func TestReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "report.csv")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := Replace(path, 0o640, func(w io.Writer) error { w.Write([]byte("half")); return boom }); !errors.Is(err, boom) {
		t.Fatalf("Replace: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "old" {
		t.Fatalf("a failed Replace changed the file: %q", b)
	}
	if err := Replace(path, 0o640, func(w io.Writer) error { _, err := io.Copy(w, bytes.NewReader([]byte("new"))); return err }); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new" {
		t.Fatalf("got %q", b)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}
