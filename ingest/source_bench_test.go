package ingest_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/ingest/ingesttest"
)

// benchFile writes n lines of about 700 bytes, shaped like an access log
// line with a long query string, and returns the path and byte size.
func benchFile(b *testing.B, n int) (string, int64) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "bench.log")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	pad := strings.Repeat("a", 560)
	for i := range n {
		fmt.Fprintf(w, `203.0.113.%d - - [12/Mar/2025:10:00:00 +0000] "GET /api/v1/items/%d?client_id=svc-%d&q=%s HTTP/1.1" 200 512`+"\n", i%250, i, i%97, pad)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	fi, _ := os.Stat(path)
	return path, fi.Size()
}

// BenchmarkScan measures the read side of a Scan: lines split and sent
// over a channel to a receiver that only counts them.
func BenchmarkScan(b *testing.B) {
	const n = 200_000
	path, size := benchFile(b, n)
	b.ReportAllocs()
	b.SetBytes(size)
	var lines int
	for b.Loop() {
		out := make(chan ingest.Line, 4096)
		done := make(chan error, 1)
		go func() {
			done <- ingest.NewScan(ingest.ScanOptions{Name: "bench", Paths: []string{path}}).Run(context.Background(), out)
			close(out)
		}()
		for range out {
			lines++
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkTail measures a File source reading an existing file from its
// start, as after a restart with a backlog.
func BenchmarkTail(b *testing.B) {
	const n = 50_000
	path, size := benchFile(b, n)
	b.ReportAllocs()
	b.SetBytes(size)
	var lines int
	for b.Loop() {
		ctx, cancel := context.WithCancel(context.Background())
		out := make(chan ingest.Line, 4096)
		tick := ingesttest.NewTicker(b)
		src := ingest.NewFile(ingest.FileOptions{Name: "bench", Path: path, Tick: tick.C})
		done := make(chan error, 1)
		go func() { done <- src.Run(ctx, out) }()
		deadline := time.After(time.Minute)
		for got := 0; got < n; got++ {
			select {
			case <-out:
			case <-deadline:
				b.Fatalf("received %d of %d lines", got, n)
			}
		}
		lines += n
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(lines)/b.Elapsed().Seconds(), "lines/s")
}
