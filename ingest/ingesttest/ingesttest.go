// Package ingesttest helps test ingest sources against real files: a
// writer that appends numbered lines through its own descriptor, the usual
// rotation schemes, a driven check ticker and receive functions that wait
// with a deadline instead of sleeping.
package ingesttest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
)

// Writer appends numbered lines to a file through its own descriptor,
// opened in append mode like a logging process.
type Writer struct {
	t    testing.TB
	path string
	f    *os.File
	next int
	// Format renders line n without its newline; default "line %06d".
	Format func(n int) string
}

// NewWriter opens (creating if needed) path for appending. Numbering
// starts at 1.
func NewWriter(t testing.TB, path string) *Writer {
	t.Helper()
	w := &Writer{t: t, path: path, next: 1}
	w.open()
	t.Cleanup(func() { w.f.Close() })
	return w
}

func (w *Writer) open() {
	w.t.Helper()
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		w.t.Fatalf("open %s for writing: %v", w.path, err)
	}
	w.f = f
}

// Line returns the text of line n, without its newline.
func (w *Writer) Line(n int) string {
	if w.Format != nil {
		return w.Format(n)
	}
	return fmt.Sprintf("line %06d", n)
}

// Write appends the next k numbered lines in one write.
func (w *Writer) Write(k int) {
	w.t.Helper()
	var b bytes.Buffer
	for range k {
		b.WriteString(w.Line(w.next))
		b.WriteByte('\n')
		w.next++
	}
	w.Raw(b.Bytes())
}

// Raw appends b as it is (a partial line, an oversized line, CRLF...).
// It does not advance the numbering.
func (w *Writer) Raw(b []byte) {
	w.t.Helper()
	if _, err := w.f.Write(b); err != nil {
		w.t.Fatalf("append to %s: %v", w.path, err)
	}
}

// Next returns the number the next written line will carry.
func (w *Writer) Next() int { return w.next }

// Skip advances the numbering by k without writing, for lines that were
// written by other means.
func (w *Writer) Skip(k int) { w.next += k }

// Reopen closes the descriptor and opens the path again: the writer
// follows a rotation (as after a SIGHUP or SIGUSR1).
func (w *Writer) Reopen() {
	w.t.Helper()
	w.f.Close()
	w.open()
}

// RenameCreate rotates path the way logrotate's default (create) does:
// rename it to to and create an empty file at path. A Writer keeps
// appending to the renamed file until its Reopen.
func RenameCreate(t testing.TB, path, to string) {
	t.Helper()
	if err := os.Rename(path, to); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatalf("rotate: create %s: %v", path, err)
	}
	f.Close()
}

// CopyTruncate rotates path the way logrotate's copytruncate does: copy
// its content to to, then truncate it to zero. between runs after the copy
// and before the truncation; what it writes to path is lost by design.
func CopyTruncate(t testing.TB, path, to string, between func()) {
	t.Helper()
	src, err := os.Open(path)
	if err != nil {
		t.Fatalf("copytruncate: %v", err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatalf("copytruncate: %v", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatalf("copytruncate: copy: %v", err)
	}
	if err := dst.Close(); err != nil {
		t.Fatalf("copytruncate: %v", err)
	}
	if between != nil {
		between()
	}
	Truncate(t, path)
}

// Truncate truncates path to zero bytes in place.
func Truncate(t testing.TB, path string) {
	t.Helper()
	if err := os.Truncate(path, 0); err != nil {
		t.Fatalf("truncate: %v", err)
	}
}

// AtomicReplace replaces path with a new file holding content, written
// aside and renamed over it, as editors and configuration tools do.
func AtomicReplace(t testing.TB, path string, content []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		t.Fatalf("replace: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("replace: %v", err)
	}
}

// Receive waits for n lines from ch, failing the test if they do not all
// arrive within deadline or if ch closes first. Line texts are copied.
func Receive(t testing.TB, ch <-chan ingest.Line, n int, deadline time.Duration) []ingest.Line {
	t.Helper()
	got := make([]ingest.Line, 0, n)
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for len(got) < n {
		select {
		case l, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %d of %d lines", len(got), n)
			}
			l.Text = bytes.Clone(l.Text)
			got = append(got, l)
		case <-timer.C:
			t.Fatalf("received %d of %d lines within %v", len(got), n, deadline)
		}
	}
	return got
}

// Quiet fails the test if a line arrives on ch within d. It is a check
// that nothing more comes, not a synchronisation.
func Quiet(t testing.TB, ch <-chan ingest.Line, d time.Duration) {
	t.Helper()
	select {
	case l, ok := <-ch:
		if ok {
			t.Fatalf("unexpected line %q at %+v", l.Text, l.Pos)
		}
	case <-time.After(d):
	}
}

// Numbers returns the numbers of lines written by a Writer with the
// default format, failing on any other text.
func Numbers(t testing.TB, lines []ingest.Line) []int {
	t.Helper()
	ns := make([]int, len(lines))
	for i, l := range lines {
		s, ok := bytes.CutPrefix(l.Text, []byte("line "))
		n, err := strconv.Atoi(string(s))
		if !ok || err != nil {
			t.Fatalf("line %d: unexpected text %q", i, l.Text)
		}
		ns[i] = n
	}
	return ns
}

// ExactlyOnce fails the test unless every number in [from, to] occurs
// exactly once in got and nothing else does.
func ExactlyOnce(t testing.TB, got []int, from, to int) {
	t.Helper()
	seen := make(map[int]int, len(got))
	for _, n := range got {
		seen[n]++
	}
	var missing, dup, extra []int
	for n := from; n <= to; n++ {
		switch seen[n] {
		case 0:
			missing = append(missing, n)
		case 1:
		default:
			dup = append(dup, n)
		}
	}
	for n := range seen {
		if n < from || n > to {
			extra = append(extra, n)
		}
	}
	if len(missing)+len(dup)+len(extra) > 0 {
		t.Fatalf("lines %d..%d: missing %s, duplicated %s, unexpected %s",
			from, to, short(missing), short(dup), short(extra))
	}
}

// short renders sorted numbers as ranges: [1-100 205 300-310].
func short(ns []int) string {
	slices.Sort(ns)
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < len(ns); {
		j := i
		for j+1 < len(ns) && ns[j+1] == ns[j]+1 {
			j++
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		if j > i {
			fmt.Fprintf(&b, "%d-%d", ns[i], ns[j])
		} else {
			fmt.Fprintf(&b, "%d", ns[i])
		}
		if b.Len() > 200 {
			b.WriteString(" ...")
			break
		}
		i = j + 1
	}
	b.WriteByte(']')
	return b.String()
}

// Ticker drives a source's check ticker from a test. Each tick carries a
// test-controlled time, so waits measured in ticks (such as a rotate wait)
// pass only when the test advances it.
type Ticker struct {
	t  testing.TB
	C  chan time.Time
	mu sync.Mutex
	at time.Time
}

// NewTicker returns a Ticker whose channel is unbuffered: a send completes
// only when the source takes the tick.
func NewTicker(t testing.TB) *Ticker {
	return &Ticker{t: t, C: make(chan time.Time), at: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Advance moves the ticks' time forward by d.
func (k *Ticker) Advance(d time.Duration) {
	k.mu.Lock()
	k.at = k.at.Add(d)
	k.mu.Unlock()
}

func (k *Ticker) now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.at
}

// Tick delivers one tick and returns once the source has taken it.
func (k *Ticker) Tick() {
	k.t.Helper()
	select {
	case k.C <- k.now():
	case <-time.After(10 * time.Second):
		k.t.Fatal("source did not take a tick within 10s")
	}
}

// Step delivers two ticks. A source handles ticks one at a time, so when
// Step returns the first tick has been handled completely.
func (k *Ticker) Step() {
	k.t.Helper()
	k.Tick()
	k.Tick()
}

// Run delivers ticks every interval of real time until stop is called,
// for tests that write concurrently with the source. stop waits for the
// delivering goroutine to end.
func (k *Ticker) Run(interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		rt := time.NewTicker(interval)
		defer rt.Stop()
		for {
			select {
			case <-done:
				return
			case <-rt.C:
			}
			select {
			case k.C <- k.now():
			case <-done:
				return
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
