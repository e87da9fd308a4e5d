package ingest

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// TestLagMarksSkipsNonRegular checks that the backlog marks leave out a
// FIFO (without blocking on it, as a plain open would until a writer
// came) and a missing file, and mark a regular file at its size.
func TestLagMarksSkipsNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skip("no FIFOs here:", err)
	}
	log := filepath.Join(dir, "app.log")
	if err := os.WriteFile(log, []byte("one\ntwo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := NewLagCollector([]rules.Source{
		{Name: "fifo", Path: fifo}, {Name: "gone", Path: filepath.Join(dir, "gone.log")}, {Name: "app", Path: log},
	})
	marks := c.Marks()
	if len(marks) != 1 || marks[0].Source != "app" || marks[0].Size != 8 {
		t.Fatalf("marks = %+v, want only app at 8 bytes", marks)
	}
	if p := c.Pending(marks); len(p) != 1 || p[0] != "app" {
		t.Errorf("pending = %v, want app", p)
	}
	c.Committed(store.Position{Source: "app", File: marks[0].File, Offset: 8})
	if p := c.Pending(marks); len(p) != 0 {
		t.Errorf("pending after the commit = %v, want none", p)
	}
}
