package ingest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/ingest/ingesttest"
	"github.com/scopewatch/scopewatch/store"
)

// logBuffer collects a source's log lines for a test to read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// lines returns the logged lines that contain every one of parts.
func (b *logBuffer) lines(parts ...string) []string {
	var out []string
	for l := range strings.Lines(b.String()) {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(l, p)
		}
		if ok {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

func statID(t *testing.T, path string) store.FileID {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fileID(t, fi)
}

// TestFileCopyTruncateWhileStopped copies and truncates the live file
// while the source is stopped, with lines written before the copy that it
// never read, and the truncated file empty, shorter than the saved offset
// or longer again. At the next start the copy is found among Glob by its
// head and finished from the saved offset exactly, then the live file is
// read from its start: every line once, nothing counted as lost.
func TestFileCopyTruncateWhileStopped(t *testing.T) {
	for _, regrow := range []int{0, 10, 100} {
		t.Run(fmt.Sprintf("regrown_%d", regrow), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			w := ingesttest.NewWriter(t, path)
			w.Write(100)
			pos := ingesttest.NewPositions()
			r := startFile(t, fileSetup{path: path, pos: pos})
			got := r.receive(60) // 61..100 may sit uncommitted in out: read again
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			liveID := statID(t, path)
			w.Write(20) // 101..120: never seen by the source
			ingesttest.CopyTruncate(t, path, path+".1", nil)
			w.Write(regrow)
			if err := os.WriteFile(path+".2", numbered(900001, 900010, "\n"), 0o644); err != nil {
				t.Fatal(err) // an unrelated sibling: never read
			}

			var logs logBuffer
			r = startFile(t, fileSetup{path: path, pos: pos, log: logs.logger()})
			got = append(got, r.receive(60+regrow)...)
			r.tick.Step()
			ingesttest.Quiet(t, r.out, 50*time.Millisecond)
			ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 120+regrow)

			copyID := statID(t, path+".1")
			if p := got[60].Pos; p.File != copyID || p.Line != 61 || p.Offset != 61*12 {
				t.Errorf("first line of the copy: file %v line %d offset %d, want %v, 61, %d", p.File, p.Line, p.Offset, copyID, 61*12)
			}
			if p := got[119].Pos; p.File != copyID || p.Line != 120 || p.Offset != 120*12 {
				t.Errorf("last line of the copy: file %v line %d offset %d, want %v, 120, %d", p.File, p.Line, p.Offset, copyID, 120*12)
			}
			if regrow > 0 {
				if p := got[120].Pos; p.File != liveID || p.Line != 1 || p.Offset != 12 {
					t.Errorf("first line of the live file: file %v line %d offset %d, want %v, 1, 12", p.File, p.Line, p.Offset, liveID)
				}
			}
			for i, ln := range got {
				if ln.Pos.AfterLoss {
					t.Errorf("line %d (%s) marked after a loss", i, ln.Text)
				}
			}
			if n := r.rotations("copytruncate"); n != 1 {
				t.Errorf("copytruncate rotations = %v, want 1", n)
			}
			for _, kind := range []string{"truncate", "replaced", "rename"} {
				if n := r.rotations(kind); n != 0 {
					t.Errorf("%s rotations = %v, want 0", kind, n)
				}
			}
			if n := testutil.ToFloat64(r.m.LostBytes.WithLabelValues("app")); n != 0 {
				t.Errorf("lost bytes = %v, want 0", n)
			}
			if l := logs.lines("copied and truncated while stopped", "copy="+path+".1", "offset=720"); len(l) != 1 {
				t.Errorf("want one log line naming the copy and the offset, got %q:\n%s", l, logs.String())
			}
		})
	}
}

// TestFileTruncateWhileStopped truncates the live file while the source
// is stopped, leaving no copy: the bytes by which the saved position lies
// past the file's new end are counted as lost, with one WARN naming the
// source and the count; the new content is read from its start once, its
// first line marked as following a loss. A sibling that starts like the
// old file but has a saved position of its own (a copy read to its end)
// is not taken for the copy.
func TestFileTruncateWhileStopped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := ingesttest.NewWriter(t, path)
	w.Write(100)
	pos := ingesttest.NewPositions()
	r := startFile(t, fileSetup{path: path, pos: pos})
	got := r.receive(100)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	w.Write(20) // 101..120: truncated away before anyone read them

	// An earlier copy of the same file, already read to its end.
	old, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".2", old, 0o644); err != nil {
		t.Fatal(err)
	}
	h := fnv.New64a()
	h.Write(old[:store.HeadMax])
	pos.Commit(ingest.Line{Pos: ingest.Position{
		Source: "app", File: statID(t, path+".2"), HeadLen: store.HeadMax, HeadHash: h.Sum64(),
		Offset: int64(len(old)), Line: 120,
	}})

	ingesttest.Truncate(t, path)
	w.Write(10) // 121..130: 120 bytes, 1080 short of the saved offset

	var logs logBuffer
	r = startFile(t, fileSetup{path: path, pos: pos, log: logs.logger()})
	got = append(got, r.receive(10)...)
	r.tick.Step()
	ingesttest.Quiet(t, r.out, 50*time.Millisecond)
	nums := ingesttest.Numbers(t, got)
	for n := 101; n <= 120; n++ {
		nums = append(nums, n) // lost, as the count says
	}
	ingesttest.ExactlyOnce(t, nums, 1, 130)
	if p := got[100].Pos; p.Line != 1 || p.Offset != 12 || !p.AfterLoss {
		t.Errorf("first line after the truncation: line %d offset %d after loss %v, want 1, 12, true", p.Line, p.Offset, p.AfterLoss)
	}
	if got[101].Pos.AfterLoss {
		t.Error("second line after the truncation marked after a loss")
	}
	if n := testutil.ToFloat64(r.m.LostBytes.WithLabelValues("app")); n != 1080 {
		t.Errorf("lost bytes = %v, want 1080", n)
	}
	if n := r.rotations("truncate"); n != 1 {
		t.Errorf("truncate rotations = %v, want 1", n)
	}
	for _, kind := range []string{"copytruncate", "replaced"} {
		if n := r.rotations(kind); n != 0 {
			t.Errorf("%s rotations = %v, want 0", kind, n)
		}
	}
	if l := logs.lines("level=WARN"); len(l) != 1 || !strings.Contains(l[0], "source=app") || !strings.Contains(l[0], "lost_bytes=1080") ||
		!strings.Contains(l[0], "truncated while stopped") {
		t.Errorf("want one WARN naming the source, the truncation and lost_bytes=1080, got %q", l)
	}
}

// TestFileTruncateWhileStoppedRegrown: a file truncated while stopped and
// written past the saved offset again no longer starts as it did; with no
// copy it is read from its start, reported as replaced, and nothing is
// counted as lost (its new size says nothing of what was lost).
func TestFileTruncateWhileStoppedRegrown(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := ingesttest.NewWriter(t, path)
	w.Write(10)
	pos := ingesttest.NewPositions()
	r := startFile(t, fileSetup{path: path, pos: pos})
	got := r.receive(10)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	ingesttest.Truncate(t, path)
	w.Write(30)
	r = startFile(t, fileSetup{path: path, pos: pos})
	got = append(got, r.receive(30)...)
	r.tick.Step()
	ingesttest.Quiet(t, r.out, 50*time.Millisecond)
	ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 40)
	if n := r.rotations("replaced"); n != 1 {
		t.Errorf("replaced = %v, want 1", n)
	}
	if n := testutil.ToFloat64(r.m.LostBytes.WithLabelValues("app")); n != 0 {
		t.Errorf("lost bytes = %v, want 0", n)
	}
}

// TestFileCopyTruncateCopyBehind copies and truncates the live file while
// it is followed, after the source has read, from the live file, lines
// written after the copy was taken: the copy ends before the source's
// offset and holds nothing to read, and the rotation is a copytruncate,
// not a truncation; nothing is lost or read twice.
func TestFileCopyTruncateCopyBehind(t *testing.T) {
	modes(t, func(t *testing.T, poll bool) {
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		w.Write(100)
		r := startFile(t, fileSetup{path: path, poll: poll})
		got := r.receive(100)
		r.tick.Step()
		ingesttest.CopyTruncate(t, path, path+".1", func() {
			w.Write(5) // 101..105, read from the live file before the truncation
			got = append(got, r.receive(5)...)
			r.tick.Step()
		})
		w.Write(20)
		r.tick.Step()
		got = append(got, r.receive(20)...)
		r.tick.Advance(6 * time.Second)
		r.tick.Step()
		ingesttest.Quiet(t, r.out, 50*time.Millisecond)
		ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 125)
		if ct, tr := r.rotations("copytruncate"), r.rotations("truncate"); ct != 1 || tr != 0 {
			t.Errorf("rotations: copytruncate %v, truncate %v; want 1 and 0", ct, tr)
		}
		if n := testutil.ToFloat64(r.m.LostBytes.WithLabelValues("app")); n != 0 {
			t.Errorf("lost bytes = %v, want 0", n)
		}
	})
}

func mkfifo(t *testing.T, path string) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// A plain open of the pipe for reading, should one be made by
	// mistake, waits for a writer: be that writer once the test is done.
	t.Cleanup(func() {
		if f, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
}

// runDone waits, bounded, for a Run to return.
func (r *fileRun) runDone() error {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.t.Context(), wait)
	defer cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-ctx.Done():
		r.t.Fatal("Run did not return")
		return nil
	}
}

// TestFileNotRegular puts a named pipe, a directory and a character
// device at the source's path: the source opens none of them for reading
// (a pipe would block the open for ever) and returns at once a read error
// that names the path and what it is, counted as an io error, having
// called Started: a source that cannot be read holds no one up.
func TestFileNotRegular(t *testing.T) {
	for _, tc := range []struct {
		name, what string
		make       func(t *testing.T, path string)
	}{
		{"fifo", "is a named pipe (FIFO), not a regular file", mkfifo},
		{"directory", "is a directory, not a regular file", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{"device", "is a character device, not a regular file", func(t *testing.T, path string) {
			if err := os.Symlink("/dev/null", path); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			tc.make(t, path)
			started := make(chan struct{}, 2)
			r := startFile(t, fileSetup{path: path, started: func() { started <- struct{}{} }})
			err := r.runDone()
			var re *ingest.ReadError
			if !errors.As(err, &re) || re.Reason != ingest.ReasonIO || re.Path != path {
				t.Fatalf("Run = %v, want an io *ReadError for %s", err, path)
			}
			if want := "source app: " + path + " " + tc.what; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error = %q, want it to start %q", err, want)
			}
			var nr *ingest.NotRegularError
			if !errors.As(err, &nr) {
				t.Errorf("error %v is not a *NotRegularError", err)
			}
			if n := testutil.ToFloat64(r.m.ReadErrors.WithLabelValues("app", ingest.ReasonIO)); n != 1 {
				t.Errorf("read errors = %v, want 1", n)
			}
			select {
			case <-started:
			default:
				t.Error("Started not called")
			}
		})
	}
}

// TestFileFIFOSibling puts a named pipe among the rotated files that a
// start searches: it is passed over, and the renamed file is finished.
func TestFileFIFOSibling(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := ingesttest.NewWriter(t, path)
	w.Write(10)
	pos := ingesttest.NewPositions()
	r := startFile(t, fileSetup{path: path, pos: pos})
	got := r.receive(10)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	w.Write(10)
	mkfifo(t, path+".0")
	ingesttest.RenameCreate(t, path, path+".1")
	w.Reopen()
	w.Write(10)
	r = startFile(t, fileSetup{path: path, pos: pos})
	got = append(got, r.receive(20)...)
	r.tick.Step()
	ingesttest.Quiet(t, r.out, 50*time.Millisecond)
	ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 30)
}

// TestFileReplacedByFIFO renames the followed file away and puts a named
// pipe at its path: the source never opens the pipe (an open of it would
// wait for a writer), finishes the renamed file, reports the pipe and
// returns.
func TestFileReplacedByFIFO(t *testing.T) {
	modes(t, func(t *testing.T, poll bool) {
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		w.Write(10)
		r := startFile(t, fileSetup{path: path, poll: poll})
		got := r.receive(10)
		if err := os.Rename(path, path+".1"); err != nil {
			t.Fatal(err)
		}
		w.Write(5) // to the renamed file
		mkfifo(t, path)
		// A check finds the pipe, unless an inotify event did first and
		// the Run has ended already.
		select {
		case r.tick.C <- time.Now():
		case err := <-r.done:
			r.done <- err
		}
		err := r.runDone()
		var nr *ingest.NotRegularError
		if !errors.As(err, &nr) || nr.Path != path {
			t.Fatalf("Run = %v, want a *NotRegularError for %s", err, path)
		}
		got = append(got, ingesttest.Receive(t, r.out, 5, wait)...)
		ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 15)
	})
}
