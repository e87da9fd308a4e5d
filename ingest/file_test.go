package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/ingest/ingesttest"
)

// fileRun is one Run of a File source over a real file, with a driven
// ticker and an in-memory position store fed from what the test received.
type fileRun struct {
	t      *testing.T
	src    *ingest.File
	out    chan ingest.Line
	tick   *ingesttest.Ticker
	pos    *ingesttest.Positions
	m      *ingest.Metrics
	cancel context.CancelFunc
	done   chan error
}

type fileSetup struct {
	path    string
	poll    bool
	pos     *ingesttest.Positions
	m       *ingest.Metrics
	max     int
	log     *slog.Logger // default testLogger
	started func()
}

func startFile(t *testing.T, s fileSetup) *fileRun {
	t.Helper()
	if s.pos == nil {
		s.pos = ingesttest.NewPositions()
	}
	if s.m == nil {
		s.m = ingest.NewMetrics(nil)
	}
	r := &fileRun{t: t, out: make(chan ingest.Line, 1<<16), tick: ingesttest.NewTicker(t), pos: s.pos, m: s.m, done: make(chan error, 1)}
	if s.log == nil {
		s.log = testLogger(t)
	}
	r.src = ingest.NewFile(ingest.FileOptions{
		Name: "app", Path: s.path, Poll: s.poll, RotateWait: 5 * time.Second,
		MaxLineSize: s.max, Positions: s.pos, Metrics: s.m, Tick: r.tick.C, Logger: s.log, Started: s.started,
	})
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	go func() { r.done <- r.src.Run(ctx, r.out) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// receive waits for n lines and commits their positions, as the consumer
// does once it has counted them. Checks tick meanwhile, as they do in
// production, without moving the ticks' time.
func (r *fileRun) receive(n int) []ingest.Line {
	r.t.Helper()
	stop := r.tick.Run(time.Millisecond)
	defer stop()
	got := ingesttest.Receive(r.t, r.out, n, wait)
	r.pos.Commit(got...)
	return got
}

// stop ends the Run and returns its result; lines still buffered in out
// are dropped, as a consumer that never committed them would.
func (r *fileRun) stop() error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
		return err
	case <-time.After(wait):
		r.t.Fatal("Run did not return after cancel")
		return nil
	}
}

func (r *fileRun) rotations(kind string) float64 {
	return testutil.ToFloat64(r.m.Rotations.WithLabelValues("app", kind))
}

func modes(t *testing.T, f func(t *testing.T, poll bool)) {
	for _, poll := range []bool{false, true} {
		name := "inotify"
		if poll {
			name = "poll"
		}
		t.Run(name, func(t *testing.T) { f(t, poll) })
	}
}

func TestFileAppend(t *testing.T) {
	modes(t, func(t *testing.T, poll bool) {
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		w.Write(100)
		r := startFile(t, fileSetup{path: path, poll: poll})
		got := r.receive(100)
		for range 10 {
			w.Write(100)
			got = append(got, r.receive(100)...)
		}
		r.tick.Step()
		ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 1100)
		if last := got[len(got)-1].Pos; last.Line != 1100 || last.Offset != 1100*12 {
			t.Errorf("last position = line %d offset %d, want 1100 and %d", last.Line, last.Offset, 1100*12)
		}
		if err := r.stop(); err != nil {
			t.Fatalf("Run: %v", err)
		}
	})
}

func TestFilePartialLineAndCRLF(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := ingesttest.NewWriter(t, path)
	w.Raw([]byte("line 000001\r\nline 0000"))
	r := startFile(t, fileSetup{path: path})
	got := r.receive(1)
	ingesttest.Quiet(t, r.out, 50*time.Millisecond)
	w.Raw([]byte("02\nline 000003\n"))
	got = append(got, r.receive(2)...)
	ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 3)
	if got[0].Pos.Offset != 13 || got[1].Pos.Offset != 25 {
		t.Errorf("offsets = %d, %d, want 13, 25", got[0].Pos.Offset, got[1].Pos.Offset)
	}
}

func TestFileResume(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := ingesttest.NewWriter(t, path)
	w.Write(500)
	pos := ingesttest.NewPositions()
	r := startFile(t, fileSetup{path: path, pos: pos})
	got := r.receive(300) // the rest may sit uncommitted in out
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	w.Write(200)
	r = startFile(t, fileSetup{path: path, pos: pos})
	got = append(got, r.receive(400)...)
	r.tick.Step()
	ingesttest.Quiet(t, r.out, 50*time.Millisecond)
	ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 700)
	if l := got[300].Pos.Line; l != 301 {
		t.Errorf("first resumed line number = %d, want 301", l)
	}
}

// TestFileRenameCreate rotates like logrotate's create mode while the
// writer keeps appending to the renamed file until it reopens: the lines
// written to the renamed file after the rotation are read from it, the new
// file from its start, and the renamed file is closed after RotateWait.
func TestFileRenameCreate(t *testing.T) {
	modes(t, func(t *testing.T, poll bool) {
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		w.Write(100)
		r := startFile(t, fileSetup{path: path, poll: poll})
		got := r.receive(100)

		ingesttest.RenameCreate(t, path, path+".1")
		w.Write(20) // to the renamed file, before anyone noticed
		r.tick.Step()
		got = append(got, r.receive(20)...)
		w.Write(30) // still to the renamed file
		r.tick.Step()
		got = append(got, r.receive(30)...)
		w.Reopen()
		w.Write(100)
		got = append(got, r.receive(100)...)

		r.tick.Advance(6 * time.Second)
		r.tick.Step()
		r.tick.Step()
		ingesttest.Quiet(t, r.out, 50*time.Millisecond)
		ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 250)
		if n := r.rotations("rename"); n != 1 {
			t.Errorf("rename rotations = %v, want 1", n)
		}
		if last := got[len(got)-1].Pos; last.Line != 100 || last.Offset != 1200 {
			t.Errorf("last position = line %d offset %d, want line 100 offset 1200 of the new file", last.Line, last.Offset)
		}
	})
}

// TestFileRotateUnderLoad writes while the source follows, rotating
// (rename, create, appending to the renamed file for a while) every few
// thousand lines, with checks ticking concurrently. The writer waits
// neither for the source to catch up nor for a check after a rotation.
func TestFileRotateUnderLoad(t *testing.T) {
	modes(t, func(t *testing.T, poll bool) {
		const total, every = 30000, 3000
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		r := startFile(t, fileSetup{path: path, poll: poll})
		r.tick.Step() // attached: the first file is known before it is written
		stopTicks := r.tick.Run(time.Millisecond)
		defer stopTicks()

		collected := make(chan []int, 1)
		go func() { collected <- collect(r.out, total, 10*time.Second) }()
		for w.Next() <= total {
			w.Write(10)
			if n := w.Next() - 1; n%every == 0 && n < total {
				// No wait for a check: a file created and rotated away
				// between two checks is found among the glob.
				ingesttest.RenameCreate(t, path, path+"."+strconv.Itoa(n/every))
				w.Write(100) // the writer has not been told yet
				w.Reopen()
			}
		}
		got := <-collected
		ingesttest.ExactlyOnce(t, got, 1, total)
		if n := r.rotations("rename"); n != total/every-1 {
			t.Errorf("rename rotations = %v, want %d", n, total/every-1)
		}
	})
}

// collect returns the numbers of n lines, or what arrived by the deadline.
// It runs outside the test goroutine, so it reports nothing itself.
func collect(ch <-chan ingest.Line, n int, deadline time.Duration) []int {
	got := make([]int, 0, n)
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for len(got) < n {
		select {
		case l := <-ch:
			v, err := strconv.Atoi(string(bytes.TrimPrefix(l.Text, []byte("line "))))
			if err != nil {
				v = -1
			}
			got = append(got, v)
		case <-timer.C:
			return got
		}
	}
	return got
}

// TestFileRenameWhileStopped rotates and writes while the source is not
// running: at the next start it finds the rotated file through Glob by its
// fingerprint and finishes it, then reads the new file from its start.
func TestFileRenameWhileStopped(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := ingesttest.NewWriter(t, path)
	w.Write(100)
	pos := ingesttest.NewPositions()
	r := startFile(t, fileSetup{path: path, pos: pos})
	got := r.receive(100)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	w.Write(50)
	ingesttest.RenameCreate(t, path, path+".1")
	w.Write(10)
	w.Reopen()
	w.Write(30)
	if err := os.WriteFile(path+".2", numbered(900001, 900010, "\n"), 0o644); err != nil {
		t.Fatal(err) // an unrelated sibling: never read
	}

	r = startFile(t, fileSetup{path: path, pos: pos})
	got = append(got, r.receive(90)...)
	r.tick.Step()
	ingesttest.Quiet(t, r.out, 50*time.Millisecond)
	ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 190)
}

// TestFileTruncate truncates the file in place, once so that it is found
// shorter than the offset and once rewritten past the offset before any
// check: every line of the new content is read once, from its start.
func TestFileTruncate(t *testing.T) {
	for _, regrow := range []int{20, 200} {
		t.Run(fmt.Sprintf("rewrite_%d", regrow), func(t *testing.T) {
			modes(t, func(t *testing.T, poll bool) {
				path := filepath.Join(t.TempDir(), "app.log")
				w := ingesttest.NewWriter(t, path)
				w.Write(100)
				r := startFile(t, fileSetup{path: path, poll: poll})
				got := r.receive(100)
				ingesttest.Truncate(t, path)
				w.Write(regrow)
				r.tick.Step()
				got = append(got, r.receive(regrow)...)
				w.Write(10)
				got = append(got, r.receive(10)...)
				r.tick.Step()
				ingesttest.Quiet(t, r.out, 50*time.Millisecond)
				ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 110+regrow)
				if n := r.rotations("truncate"); n != 1 {
					t.Errorf("truncate rotations = %v, want 1", n)
				}
				if n := testutil.ToFloat64(r.m.LostBytes.WithLabelValues("app")); n != 0 {
					t.Errorf("lost bytes = %v, want 0", n)
				}
			})
		})
	}
}

// TestFileCopyTruncate rotates by copy and truncate. The copy is found
// among the siblings by its head and finished from the source's offset;
// lines written between the copy and the truncation are lost by design
// and counted; nothing is duplicated.
func TestFileCopyTruncate(t *testing.T) {
	t.Run("copy_holds_unread", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		w.Write(100)
		w.Raw([]byte("line 000101")) // not yet complete when the copy is taken
		w.Skip(1)
		r := startFile(t, fileSetup{path: path, poll: true})
		got := r.receive(100)
		r.tick.Step()
		ingesttest.CopyTruncate(t, path, path+".1", nil)
		w.Write(20)
		r.tick.Step()
		got = append(got, r.receive(20)...)
		r.tick.Advance(6 * time.Second) // the copy stops being followed
		r.tick.Step()
		got = append(got, r.receive(1)...)
		ingesttest.Quiet(t, r.out, 50*time.Millisecond)
		ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 121)
		if n := r.rotations("copytruncate"); n != 1 {
			t.Errorf("copytruncate rotations = %v, want 1", n)
		}
	})
	t.Run("written_between", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		w.Write(100)
		r := startFile(t, fileSetup{path: path, poll: true})
		got := r.receive(100)
		r.tick.Step()
		ingesttest.CopyTruncate(t, path, path+".1", func() {
			w.Write(5)    // 101..105: lost unless read before the truncation
			r.tick.Step() // the source sees the file grow
		})
		w.Write(20)
		r.tick.Step()
		got = append(got, r.receive(20)...)
		r.tick.Step()
		for len(r.out) > 0 {
			got = append(got, r.receive(1)...)
		}
		nums := ingesttest.Numbers(t, got)
		seen := map[int]bool{}
		for _, n := range nums {
			seen[n] = true
		}
		var missing []int
		for n := 101; n <= 105; n++ {
			if !seen[n] {
				missing = append(missing, n)
				nums = append(nums, n)
			}
		}
		ingesttest.ExactlyOnce(t, nums, 1, 125)
		if got, want := testutil.ToFloat64(r.m.LostBytes.WithLabelValues("app")), float64(12*len(missing)); got != want {
			t.Errorf("lost bytes = %v, want %v (lines %v missing)", got, want, missing)
		}
		// Whether or not the source read 101..105 before the truncation
		// (then the copy ends before its offset), it is a copytruncate.
		if ct, tr := r.rotations("copytruncate"), r.rotations("truncate"); ct != 1 || tr != 0 {
			t.Errorf("rotations: copytruncate %v, truncate %v; want 1 and 0", ct, tr)
		}
	})
	t.Run("no_copy_counts_loss", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		w.Write(100)
		w.Raw([]byte("line 000101")) // seen by a check, never completed
		w.Skip(1)
		r := startFile(t, fileSetup{path: path})
		got := r.receive(100)
		r.tick.Step()
		ingesttest.Truncate(t, path)
		w.Write(20)
		r.tick.Step()
		got = append(got, r.receive(20)...)
		ingesttest.Quiet(t, r.out, 50*time.Millisecond)
		ingesttest.ExactlyOnce(t, append(ingesttest.Numbers(t, got), 101), 1, 121)
		if n := testutil.ToFloat64(r.m.LostBytes.WithLabelValues("app")); n != 11 {
			t.Errorf("lost bytes = %v, want 11", n)
		}
		// The first line after the loss says so, and only that one.
		for i, ln := range got {
			if want := i == 100; ln.Pos.AfterLoss != want {
				t.Errorf("line %d (%s): AfterLoss = %v, want %v", i, ln.Text, ln.Pos.AfterLoss, want)
			}
		}
	})
}

func TestFileMissingAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	r := startFile(t, fileSetup{path: path})
	r.tick.Step()
	if !r.src.Waiting() {
		t.Error("Waiting() = false before the file exists")
	}
	w := ingesttest.NewWriter(t, path)
	w.Write(10)
	r.tick.Step()
	if r.src.Waiting() {
		t.Error("Waiting() = true after the file appeared")
	}
	got := r.receive(10)
	w.Write(10)
	got = append(got, r.receive(10)...)
	ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 20)
}

// TestFileReplaced covers a file whose inode matches a saved record but
// whose head does not (a reused inode): it is read from its start; and a
// file atomically replaced while followed: the old one is finished, the
// new one read from its start.
func TestFileReplaced(t *testing.T) {
	t.Run("reused_inode", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		w.Write(50)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		pos := ingesttest.NewPositions()
		id := fileID(t, fi)
		pos.Commit(ingest.Line{Pos: ingest.Position{Source: "app", File: id, HeadLen: 12, HeadHash: 42, Offset: 300, Line: 25}})
		r := startFile(t, fileSetup{path: path, pos: pos})
		got := r.receive(50)
		ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 50)
		if n := r.rotations("replaced"); n != 1 {
			t.Errorf("replaced = %v, want 1", n)
		}
	})
	t.Run("atomic_replace", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		w.Write(50)
		r := startFile(t, fileSetup{path: path})
		got := r.receive(50)
		ingesttest.AtomicReplace(t, path, numbered(51, 80, "\n"))
		w.Skip(30)
		w.Write(5) // the old descriptor: its file is unlinked but still read
		w.Reopen()
		r.tick.Step()
		got = append(got, r.receive(35)...)
		r.tick.Step()
		ingesttest.Quiet(t, r.out, 50*time.Millisecond)
		ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 85)
		if n := r.rotations("replaced"); n != 1 {
			t.Errorf("replaced = %v, want 1", n)
		}
	})
}

// TestFileTooLong appends lines of limit-1, limit, limit+1 and 2 MiB
// bytes to a tailed file: each comes out once, the long ones as too_long
// lines at their own offsets, and the lines after them are read.
func TestFileTooLong(t *testing.T) {
	const limit = 1 << 20
	content, tooLong := limitLines(limit)
	modes(t, func(t *testing.T, poll bool) {
		path := filepath.Join(t.TempDir(), "app.log")
		w := ingesttest.NewWriter(t, path)
		r := startFile(t, fileSetup{path: path, poll: poll}) // default limit
		w.Raw(content)
		got := r.receive(8)
		r.tick.Step()
		ingesttest.Quiet(t, r.out, 50*time.Millisecond)
		checkLimitLines(t, got, content, limit, tooLong)
		if n := testutil.ToFloat64(r.m.Oversized.WithLabelValues("app")); n != 2 {
			t.Errorf("oversized = %v, want 2", n)
		}
		if n := testutil.ToFloat64(r.m.LinesRead.WithLabelValues("app")); n != 8 {
			t.Errorf("lines read = %v, want 8", n)
		}
	})
}

// TestFileTooLongRotated reads the same lines from a file rotated while
// the source was stopped: the reader of rotated files applies the limit
// the same way.
func TestFileTooLongRotated(t *testing.T) {
	const limit = 1 << 20
	body, long := limitLines(limit)
	content := append([]byte("line 000000\n"), body...)
	var tooLong []int64
	for _, n := range long {
		tooLong = append(tooLong, n+1)
	}
	path := filepath.Join(t.TempDir(), "app.log")
	w := ingesttest.NewWriter(t, path)
	w.Raw(content[:12])
	pos := ingesttest.NewPositions()
	r := startFile(t, fileSetup{path: path, pos: pos})
	got := r.receive(1)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	w.Raw(body)
	ingesttest.RenameCreate(t, path, path+".1")

	r = startFile(t, fileSetup{path: path, pos: pos})
	got = append(got, r.receive(8)...)
	r.tick.Step()
	ingesttest.Quiet(t, r.out, 50*time.Millisecond)
	checkLimitLines(t, got, content, limit, tooLong)
	if n := testutil.ToFloat64(r.m.Oversized.WithLabelValues("app")); n != 2 {
		t.Errorf("oversized = %v, want 2", n)
	}
}

// TestFileTooLongSmallLimit checks a small configured limit, with lines
// many times longer than it.
func TestFileTooLongSmallLimit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := ingesttest.NewWriter(t, path)
	w.Write(3)
	r := startFile(t, fileSetup{path: path, max: 1024})
	got := r.receive(3)
	w.Raw(append(bytes.Repeat([]byte("x"), 5000), '\n'))
	w.Raw(append(bytes.Repeat([]byte("y"), 1025), '\n'))
	w.Raw(append(bytes.Repeat([]byte("z"), 1024), '\n')) // at the limit: kept
	w.Write(2)
	got = append(got, r.receive(5)...)
	for i, want := range []int64{5000, 1025} {
		if n, limit, ok := ingest.TooLong(got[3+i]); !ok || n != want || limit != 1024 {
			t.Errorf("line %d: TooLong = %d, %d, %v; want %d over 1024", got[3+i].Pos.Line, n, limit, ok, want)
		}
	}
	if string(got[5].Text) != string(bytes.Repeat([]byte("z"), 1024)) {
		t.Fatalf("line at the limit = %.20q..., want 1024 z", got[5].Text)
	}
	last := got[len(got)-1].Pos
	if want := int64(5*12 + 5001 + 1026 + 1025); last.Offset != want || last.Line != 8 {
		t.Errorf("last position = offset %d line %d, want %d and 8", last.Offset, last.Line, want)
	}
	ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, append(got[:3:3], got[6:]...)), 1, 5)
}

func TestFileReadError(t *testing.T) {
	t.Run("directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "app.log")
		if err := os.Mkdir(path, 0o755); err != nil {
			t.Fatal(err)
		}
		r := startFile(t, fileSetup{path: path})
		err := <-r.done
		r.done <- err
		var re *ingest.ReadError
		if !asReadError(err, &re) || re.Reason != ingest.ReasonIO || re.Source != "app" {
			t.Fatalf("Run = %v, want an io *ReadError", err)
		}
		if n := testutil.ToFloat64(r.m.ReadErrors.WithLabelValues("app", ingest.ReasonIO)); n != 1 {
			t.Errorf("read errors = %v, want 1", n)
		}
	})
	t.Run("permission", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("running as root: file permissions do not stop reads")
		}
		path := filepath.Join(t.TempDir(), "app.log")
		if err := os.WriteFile(path, []byte("line 000001\n"), 0o000); err != nil {
			t.Fatal(err)
		}
		r := startFile(t, fileSetup{path: path})
		err := <-r.done
		r.done <- err
		var re *ingest.ReadError
		if !asReadError(err, &re) || re.Reason != ingest.ReasonPermission {
			t.Fatalf("Run = %v, want a permission *ReadError", err)
		}
	})
}

// TestFileRestartResumesFromSent runs the same File twice, as the
// supervisor does after a failure, with nothing committed in between: the
// lines the first Run handed on are still in the engine's hands, so the
// second Run must not send them again.
func TestFileRestartResumesFromSent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	w := ingesttest.NewWriter(t, path)
	w.Write(100)
	tick := ingesttest.NewTicker(t)
	out := make(chan ingest.Line, 1<<10)
	src := ingest.NewFile(ingest.FileOptions{
		Name: "app", Path: path, Positions: ingesttest.NewPositions(), Tick: tick.C, Logger: testLogger(t),
	})
	run := func() (stop func()) {
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx, out) }()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
	stop := run()
	stopTicks := tick.Run(time.Millisecond)
	got := ingesttest.Receive(t, out, 100, wait)
	stopTicks()
	stop()

	w.Write(50)
	stop = run()
	stopTicks = tick.Run(time.Millisecond)
	got = append(got, ingesttest.Receive(t, out, 50, wait)...)
	ingesttest.Quiet(t, out, 50*time.Millisecond)
	stopTicks()
	stop()
	ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 150)
	if l := got[100].Pos.Line; l != 101 {
		t.Errorf("first line of the second run is number %d, want 101", l)
	}
}

// TestFileMarksBacklog checks Position.Behind: the lines of a backlog
// read more than BehindBytes before the end its file had when last
// looked at are behind, the rest and the lines appended later are not.
func TestFileMarksBacklog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	const lineLen, lines = 1000, (ingest.BehindBytes + 2<<20) / 1000
	line := append(bytes.Repeat([]byte("x"), lineLen-1), '\n')
	if err := os.WriteFile(path, bytes.Repeat(line, lines), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startFile(t, fileSetup{path: path})
	got := r.receive(lines)
	size := int64(lineLen * lines)
	for _, ln := range got {
		if want := size-ln.Pos.Offset > ingest.BehindBytes; ln.Pos.Behind != want {
			t.Fatalf("line %d (offset %d of %d): behind %v, want %v", ln.Pos.Line, ln.Pos.Offset, size, ln.Pos.Behind, want)
		}
	}
	if !got[0].Pos.Behind || got[len(got)-1].Pos.Behind {
		t.Fatalf("first line behind %v, last %v; want true, false", got[0].Pos.Behind, got[len(got)-1].Pos.Behind)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat(line, 10)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	for _, ln := range r.receive(10) {
		if ln.Pos.Behind {
			t.Errorf("appended line %d read behind", ln.Pos.Line)
		}
	}
}

// TestFileMarksBacklogAppended: a backlog appended to a followed file is
// read behind too, measured against the size each check sees (polling
// reads only after a check, so the first appended lines are behind).
func TestFileMarksBacklogAppended(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.log")
	const lineLen, lines = 1000, (ingest.BehindBytes + 2<<20) / 1000
	line := append(bytes.Repeat([]byte("x"), lineLen-1), '\n')
	if err := os.WriteFile(path, line, 0o644); err != nil {
		t.Fatal(err)
	}
	r := startFile(t, fileSetup{path: path, poll: true})
	if got := r.receive(1); got[0].Pos.Behind {
		t.Fatal("the only line read behind")
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat(line, lines)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	got := r.receive(lines)
	if !got[0].Pos.Behind || got[len(got)-1].Pos.Behind {
		t.Errorf("first appended line behind %v, last %v; want true, false", got[0].Pos.Behind, got[len(got)-1].Pos.Behind)
	}
}
