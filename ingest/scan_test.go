package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/ingest/ingesttest"
	"github.com/scopewatch/scopewatch/rules"
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

// limitLines returns lines of limit-1, limit, limit+1 and 2 MiB bytes
// (a carriage return included in the limit's count), each followed by a
// numbered line, and the numbers of the lines that must come out too long.
func limitLines(limit int) (content []byte, tooLong []int64) {
	var b bytes.Buffer
	n := 0
	for _, size := range []int{limit - 1, limit, limit + 1, 2 << 20} {
		b.Write(bytes.Repeat([]byte("x"), size))
		b.WriteByte('\n')
		n++
		if size > limit {
			tooLong = append(tooLong, int64(n))
		}
		n++
		fmt.Fprintf(&b, "line %06d\n", n)
	}
	return b.Bytes(), tooLong
}

// checkLimitLines checks what a reader of limitLines' content delivered:
// every line once, the long ones as too_long lines at their own offsets,
// the others whole.
func checkLimitLines(t *testing.T, got []ingest.Line, content []byte, limit int, tooLong []int64) {
	t.Helper()
	if want := bytes.Count(content, []byte("\n")); len(got) != want {
		t.Fatalf("got %d lines, want %d", len(got), want)
	}
	var off int64
	for i, ln := range got {
		end := bytes.IndexByte(content[off:], '\n')
		want := content[off : off+int64(end)]
		off += int64(end) + 1
		if ln.Pos.Line != int64(i+1) || ln.Pos.Offset != off {
			t.Errorf("line %d: position line %d offset %d, want %d and %d", i+1, ln.Pos.Line, ln.Pos.Offset, i+1, off)
		}
		_, err := ingest.ParseLine(nopParser{}, ln, nil)
		_, pe := ingest.Outcome(err)
		if slices.Contains(tooLong, int64(i+1)) {
			n, l, ok := ingest.TooLong(ln)
			if pe == nil || pe.Reason != ingest.ReasonTooLong || !ok || n != int64(len(want)) || l != limit {
				t.Errorf("line %d (%d bytes): outcome %v, TooLong %d %d %v; want malformed too_long of %d bytes over %d",
					i+1, len(want), err, n, l, ok, len(want), limit)
			}
			if pe != nil && (pe.Line != int64(i+1) || pe.Offset != off) {
				t.Errorf("line %d: ParseError at line %d offset %d, want %d and %d", i+1, pe.Line, pe.Offset, i+1, off)
			}
			continue
		}
		if err != nil || !bytes.Equal(ln.Text, want) {
			t.Errorf("line %d (%d bytes): outcome %v, text of %d bytes; want it whole", i+1, len(want), err, len(ln.Text))
		}
	}
}

// nopParser reads every line into nothing, without error.
type nopParser struct{}

func (nopParser) Parse(_ []byte, _ ingest.Position, dst []ingest.Event) ([]ingest.Event, error) {
	return dst, nil
}

func TestScanTooLong(t *testing.T) {
	const limit = 1 << 20
	content, tooLong := limitLines(limit)
	for _, compressed := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", compressed), func(t *testing.T) {
			data := content
			if compressed {
				data = gzipped(t, content)
			}
			path := filepath.Join(t.TempDir(), "app.log")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			m := ingest.NewMetrics(nil)
			got := runScan(t, ingest.ScanOptions{Name: "s", Paths: []string{path}, Metrics: m}) // default limit
			checkLimitLines(t, got, content, limit, tooLong)
			if n := testutil.ToFloat64(m.Oversized.WithLabelValues("s")); n != 2 {
				t.Errorf("oversized = %v, want 2", n)
			}
			if n := testutil.ToFloat64(m.LinesRead.WithLabelValues("s")); n != 8 {
				t.Errorf("lines read = %v, want 8", n)
			}
		})
	}
}

// TestScanTooLongLast checks a last line without a newline over the
// limit, and a small limit over lines spanning several chunks.
func TestScanTooLongLast(t *testing.T) {
	var b bytes.Buffer
	b.Write(numbered(1, 3, "\n"))
	b.Write(bytes.Repeat([]byte("x"), 300000)) // spans several chunks
	b.WriteByte('\n')
	b.Write(numbered(5, 5, "\n"))
	b.Write(bytes.Repeat([]byte("y"), 1025)) // last, no newline
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runScan(t, ingest.ScanOptions{Name: "s", Paths: []string{path}, MaxLineSize: 1024})
	if len(got) != 6 {
		t.Fatalf("got %d lines, want 6", len(got))
	}
	for i, want := range []int64{300000, 1025} {
		ln := got[[]int{3, 5}[i]]
		if n, limit, ok := ingest.TooLong(ln); !ok || n != want || limit != 1024 {
			t.Errorf("line %d: TooLong = %d, %d, %v; want %d over 1024", ln.Pos.Line, n, limit, ok, want)
		}
	}
	if last := got[5].Pos; last.Offset != int64(b.Len()) || last.Line != 6 {
		t.Errorf("last position = offset %d line %d, want %d and 6", last.Offset, last.Line, b.Len())
	}
}

// TestScanLinesLongerThanChunks reads lines of several chunks each, up to
// the default limit (a chunk grows for them and the next is of the usual
// size again), between short ones, and checks every text and position.
func TestScanLinesLongerThanChunks(t *testing.T) {
	var b bytes.Buffer
	var want [][]byte
	var ends []int64
	for i, n := range []int{10, 300_000, 20, ingest.DefaultMaxLineSize, 5, 700_000, 700_000, 30} {
		line := bytes.Repeat([]byte{byte('a' + i)}, n)
		want = append(want, line)
		b.Write(line)
		b.WriteByte('\n')
		ends = append(ends, int64(b.Len()))
	}
	path := filepath.Join(t.TempDir(), "app.log")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got := runScan(t, ingest.ScanOptions{Name: "s", Paths: []string{path}})
	if len(got) != len(want) {
		t.Fatalf("got %d lines, want %d", len(got), len(want))
	}
	for i, ln := range got {
		if !bytes.Equal(ln.Text, want[i]) || ln.Pos.Offset != ends[i] || ln.Pos.Line != int64(i+1) {
			t.Errorf("line %d: %d bytes ending at %d (line %d); want %d bytes of %q ending at %d", i+1, len(ln.Text), ln.Pos.Offset, ln.Pos.Line, len(want[i]), want[i][0], ends[i])
		}
	}
}

// TestLineReaderTooLong reads the same lines as a scan through the reader
// validate uses, plain and compressed.
func TestLineReaderTooLong(t *testing.T) {
	const limit = 4096
	content, tooLong := limitLines(limit)
	for _, compressed := range []bool{false, true} {
		t.Run(fmt.Sprintf("gzip=%v", compressed), func(t *testing.T) {
			data := content
			if compressed {
				data = gzipped(t, content)
			}
			path := filepath.Join(t.TempDir(), "sample.log")
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			lr, closeFile, err := ingest.OpenLines(path, "s", limit)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFile()
			var got []ingest.Line
			for {
				ln, err := lr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, ln)
			}
			checkLimitLines(t, got, content, limit, tooLong)
		})
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

// TestScanCheckRefusesWrongFormat scans an Okta log and an nginx log as
// an nginx source: the Okta log is sent nothing and named in a
// *FormatError that says it reads as okta, the nginx log is read. Scanned
// again as an Okta source from the positions the first scan left, the
// Okta log is read whole, once; a Keycloak log of nothing but ignored
// lines is read, not refused.
func TestScanCheckRefusesWrongFormat(t *testing.T) {
	dir := t.TempDir()
	copyFixture := func(name, to string) string {
		b, err := os.ReadFile(filepath.Join("..", "testdata", "formats", name))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, to)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	okta := copyFixture("okta/token_grants.log", "okta.log")
	nginx := copyFixture("nginx/combined.log", "access.log")
	quiet := copyFixture("keycloak/non_event_lines.log", "kc-info.log")

	pos := ingesttest.NewPositions()
	nginxSrc := rules.Source{Name: "s", Format: "nginx"}
	out := make(chan ingest.Line, 1<<10)
	err := ingest.NewScan(ingest.ScanOptions{Name: "s", Paths: []string{okta, nginx}, Positions: pos, Check: &nginxSrc}).Run(t.Context(), out)
	close(out)
	var got []ingest.Line
	for l := range out {
		got = append(got, l)
	}
	var fe *ingest.FormatError
	if !errors.As(err, &fe) || fe.Path != okta {
		t.Fatalf("Run = %v, want a *FormatError for %s", err, okta)
	}
	for _, want := range []string{okta + ": no line yields an event and 7 of 7 lines are malformed for format nginx (mostly bad_format)",
		"the file is not marked as read", "these lines parse as okta", "set format: okta", "scan the file again"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q\nwant %q in it", err, want)
		}
	}
	if len(got) != 8 || got[0].Pos.Path != nginx {
		t.Errorf("sent %d lines, the first of %s; want the 8 of %s alone", len(got), got[0].Pos.Path, nginx)
	}
	pos.Commit(got...)

	for _, tc := range []struct {
		src   rules.Source
		path  string
		lines int
	}{
		{rules.Source{Name: "s", Format: "okta"}, okta, 7},
		{rules.Source{Name: "s", Format: "keycloak"}, quiet, 17},
	} {
		got := runScan(t, ingest.ScanOptions{Name: "s", Paths: []string{tc.path, nginx}, Positions: pos, Check: &tc.src})
		if len(got) != tc.lines || got[len(got)-1].Pos.Line != int64(tc.lines) || got[0].Pos.Path != tc.path {
			t.Errorf("%s as %s: %d lines sent, want all %d of it and none of %s", tc.path, tc.src.Format, len(got), tc.lines, nginx)
		}
		pos.Commit(got...)
		if again := runScan(t, ingest.ScanOptions{Name: "s", Paths: []string{tc.path}, Positions: pos, Check: &tc.src}); len(again) != 0 {
			t.Errorf("%s scanned again: %d lines sent, want none", tc.path, len(again))
		}
	}
}

// TestParseLineTimeOutOfRange checks that a line dated outside the years a
// Unix time in nanoseconds spans is malformed, naming its line and the
// time field, and that the first and last instants within are read.
func TestParseLineTimeOutOfRange(t *testing.T) {
	lines, err := os.ReadFile("../testdata/formats/okta/token_grants.log")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := bytes.Cut(lines, []byte("\n"))
	const published = `"published":"2024-03-14T09:15:27.801Z"`
	if !bytes.Contains(line, []byte(published)) {
		t.Fatalf("fixture line has no %s", published)
	}
	p, err := ingest.NewParser(rules.Source{Name: "okta", Format: "okta"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		when string
		ok   bool
	}{
		{"2024-03-14T09:15:27.801Z", true},
		{"1677-09-21T00:12:43.145224193Z", true},
		{"2262-04-11T23:47:16.854775807Z", true},
		{"1677-09-21T00:12:43.145224192Z", false}, // the least Unix nanosecond, which stands for no time
		{"2262-04-11T23:47:16.854775808Z", false},
		{"9999-12-31T23:59:59Z", false},
		{"0001-01-01T00:00:00Z", false},
	} {
		text := bytes.Replace(line, []byte(published), []byte(`"published":"`+c.when+`"`), 1)
		ln := ingest.Line{Text: text, Pos: ingest.Position{Source: "okta", Line: 7, Offset: 99}}
		evs, err := ingest.ParseLine(p, ln, nil)
		_, pe := ingest.Outcome(err)
		if c.ok {
			if err != nil || len(evs) != 1 || evs[0].Time.Format(time.RFC3339Nano) != c.when {
				t.Errorf("%s: events %v, error %v; want one event at that time", c.when, evs, err)
			}
			continue
		}
		if len(evs) != 0 || pe == nil || pe.Reason != ingest.ReasonBadTime || pe.Field != "time" || pe.Line != 7 || pe.Source != "okta" ||
			pe.Records != 0 || !strings.Contains(pe.Error(), "outside the years 1678 to 2262") {
			t.Errorf("%s: events %v, error %v; want a bad_time error for the time field of line 7", c.when, evs, err)
		}
	}

	// In a page of records, the one out of range loses only its event.
	late := bytes.Replace(line, []byte(published), []byte(`"published":"9999-01-01T00:00:00Z"`), 1)
	page := slices.Concat([]byte("["), line, []byte(","), late, []byte(","), line, []byte("]"))
	evs, err := ingest.ParseLine(p, ingest.Line{Text: page, Pos: ingest.Position{Source: "okta", Line: 8}}, nil)
	_, pe := ingest.Outcome(err)
	if len(evs) != 2 || pe == nil || pe.Reason != ingest.ReasonBadTime || pe.Records != 1 || pe.Count() != 1 {
		t.Errorf("page: %d events, error %v; want 2 events and one bad_time record", len(evs), err)
	}
}
