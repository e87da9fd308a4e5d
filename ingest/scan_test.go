package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/ingest/ingesttest"
)

const wait = 10 * time.Second

// numbered returns lines from..to in the Writer's default format.
func numbered(from, to int, eol string) []byte {
	var b bytes.Buffer
	for n := from; n <= to; n++ {
		fmt.Fprintf(&b, "line %06d%s", n, eol)
	}
	return b.Bytes()
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return z.Bytes()
}

// runScan runs a Scan to its end and returns what it sent.
func runScan(t *testing.T, opts ingest.ScanOptions) []ingest.Line {
	t.Helper()
	out := make(chan ingest.Line, 1<<16)
	if err := ingest.NewScan(opts).Run(t.Context(), out); err != nil {
		t.Fatalf("Run: %v", err)
	}
	close(out)
	var got []ingest.Line
	for l := range out {
		got = append(got, l)
	}
	return got
}

func TestScan(t *testing.T) {
	tests := []struct {
		name    string
		content func(t *testing.T) []byte
	}{
		{"plain", func(*testing.T) []byte { return numbered(1, 5000, "\n") }},
		{"crlf", func(*testing.T) []byte { return numbered(1, 5000, "\r\n") }},
		{"gzip", func(t *testing.T) []byte { return gzipped(t, numbered(1, 5000, "\n")) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.log")
			if err := os.WriteFile(path, tc.content(t), 0o644); err != nil {
				t.Fatal(err)
			}
			got := runScan(t, ingest.ScanOptions{Name: "s", Paths: []string{path}})
			ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 5000)
			last := got[len(got)-1].Pos
			if last.Line != 5000 {
				t.Errorf("last line number = %d, want 5000", last.Line)
			}
		})
	}
}

// TestScanResume stops a scan part-way, then starts another from the
// positions of the lines the first one delivered: together they deliver
// every line exactly once, for plain and compressed files.
func TestScanResume(t *testing.T) {
	for _, compressed := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", compressed), func(t *testing.T) {
			content := numbered(1, 20000, "\n")
			if compressed {
				content = gzipped(t, content)
			}
			path := filepath.Join(t.TempDir(), "app.log.1")
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			pos := ingesttest.NewPositions()
			opts := ingest.ScanOptions{Name: "s", Paths: []string{path}, Positions: pos}

			ctx, cancel := context.WithCancel(t.Context())
			out := make(chan ingest.Line) // unbuffered: the scan stops where we stop reading
			done := make(chan error, 1)
			go func() { done <- ingest.NewScan(opts).Run(ctx, out) }()
			first := ingesttest.Receive(t, out, 7777, wait)
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			pos.Commit(first...)

			rest := runScan(t, opts)
			ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, append(first, rest...)), 1, 20000)
			if got, want := rest[0].Pos.Line, int64(7778); got != want {
				t.Errorf("first resumed line number = %d, want %d", got, want)
			}
			pos.Commit(rest...)
			if again := runScan(t, opts); len(again) != 0 {
				t.Errorf("scan after the end sent %d lines", len(again))
			}
		})
	}
}

func TestScanOversized(t *testing.T) {
	var b bytes.Buffer
	b.Write(numbered(1, 3, "\n"))
	b.Write(bytes.Repeat([]byte("x"), 300000)) // spans several chunks
	b.WriteByte('\n')
	b.Write(numbered(4, 6, "\n"))
	b.Write(bytes.Repeat([]byte("y"), 1025))
	b.WriteByte('\n')
	b.Write(numbered(7, 7, "")) // final line without newline
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	m := ingest.NewMetrics(nil)
	got := runScan(t, ingest.ScanOptions{Name: "s", Paths: []string{path}, MaxLineSize: 1024, Metrics: m})
	ingesttest.ExactlyOnce(t, ingesttest.Numbers(t, got), 1, 7)
	if n := testutil.ToFloat64(m.Oversized.WithLabelValues("s")); n != 2 {
		t.Errorf("oversized = %v, want 2", n)
	}
	if last := got[len(got)-1].Pos; last.Offset != int64(b.Len()) || last.Line != 9 {
		t.Errorf("last position = offset %d line %d, want %d and 9", last.Offset, last.Line, b.Len())
	}
}

func TestScanMissingFile(t *testing.T) {
	m := ingest.NewMetrics(nil)
	err := ingest.NewScan(ingest.ScanOptions{Name: "s", Paths: []string{filepath.Join(t.TempDir(), "nope")}, Metrics: m}).
		Run(t.Context(), make(chan ingest.Line))
	var re *ingest.ReadError
	if !asReadError(err, &re) || re.Reason != ingest.ReasonNotFound {
		t.Fatalf("Run = %v, want a not_found *ReadError", err)
	}
	if n := testutil.ToFloat64(m.ReadErrors.WithLabelValues("s", ingest.ReasonNotFound)); n != 1 {
		t.Errorf("read errors = %v, want 1", n)
	}
}
