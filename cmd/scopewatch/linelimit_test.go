package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/scopewatch/scopewatch/daemon"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/store"
)

// kcLine returns a Keycloak token event for client, padded in a field of
// its own to exactly size bytes, or of its natural length when size is 0.
func kcLine(client string, size int) string {
	s := `2026-10-01 10:00:00,000 DEBUG [org.keycloak.events] (executor-thread-1) type="CODE_TO_TOKEN", realmId="r", ` +
		`clientId="` + client + `", userId="u1", ipAddress="10.0.0.1", scope="openid view_lab_results"`
	if size == 0 {
		return s
	}
	s += `, pad="`
	return s + strings.Repeat("x", size-len(s)-1) + `"`
}

const kcChatter = `2026-10-01 10:00:01,000 INFO  [io.quarkus] (main) Keycloak 26.0.5 started`

// limitLog returns a Keycloak log of token events of limit-1 and limit
// bytes, lines of limit+1 and 2 MiB, a short event and a line of another
// logger: 6 lines, 3 events, 2 too long, 1 ignored.
func limitLog(limit int) string {
	var b strings.Builder
	for _, size := range []int{limit - 1, limit, limit + 1, 2 << 20} {
		b.WriteString(kcLine("lab-portal", size) + "\n")
	}
	b.WriteString(kcLine("lab-portal", 0) + "\n" + kcChatter + "\n")
	return b.String()
}

// lineLimits are the limits the tests read with: the default, and one a
// source configures.
var lineLimits = []struct {
	name  string
	limit int
	yaml  string // the source's setting
}{
	{"default", 1 << 20, ""},
	{"configured", 4096, ", max_line_bytes: 4096"},
}

// limitConfig writes a configuration of one Keycloak source kc reading
// dir/kc.log, with extra in its entry, and returns its path.
func limitConfig(t *testing.T, dir, format, extra string) string {
	t.Helper()
	cfg := filepath.Join(dir, "cfg.yaml")
	write(t, cfg, fmt.Sprintf("store: %[1]s/s.db\nlisten: 127.0.0.1:0\nsources:\n  - {name: kc, path: %[1]s/kc.log, format: %[2]s%[3]s}\n",
		dir, format, extra))
	return cfg
}

// checkLimitStore checks what a store holds after reading limitLog: 6
// lines, 2 malformed, 1 ignored, the 3 grants, and the position at the end.
func checkLimitStore(t *testing.T, db *store.DB, size int64) {
	t.Helper()
	srcs, err := db.Sources()
	if err != nil || len(srcs) != 1 || srcs[0].Lines != 6 || srcs[0].Malformed != 2 || srcs[0].Ignored != 1 {
		t.Errorf("stored sources = %+v, %v; want kc with 6 lines, 2 malformed, 1 ignored", srcs, err)
	}
	c, ok, err := db.Client("lab-portal")
	if err != nil || !ok || c.Scopes["openid"].Granted.N != 3 {
		t.Errorf("lab-portal = %+v, %v, %v; want openid granted 3 times", c.Scopes["openid"], ok, err)
	}
	ps, err := db.Positions("kc")
	if err != nil || len(ps) != 1 || ps[0].Offset != size || ps[0].Line != 6 {
		t.Errorf("positions = %+v, %v; want offset %d line 6", ps, err, size)
	}
}

func TestValidateSampleLineLimit(t *testing.T) {
	for _, tc := range lineLimits {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := limitConfig(t, dir, "keycloak", tc.yaml)
			sample := filepath.Join(dir, "sample.log")
			write(t, sample, limitLog(tc.limit))
			code, out, errOut := runCmd(t, "validate", "--config", cfg, "--sample", sample)
			if code != exitError {
				t.Errorf("exit %d, want %d", code, exitError)
			}
			for _, want := range []string{
				"6 lines: 3 parsed into 3 events (grant 3), 1 ignored, 2 malformed\n",
				"ignored by reason: other_logger 1\nfirst ignored lines:\n  line 6: other_logger\n      " + kcChatter + "\n",
				"malformed by reason: too_long 2\n",
				fmt.Sprintf("kc: line 3: line of %d bytes is longer than max_line_bytes (%d); skipped\n      (%d bytes, not shown)", tc.limit+1, tc.limit, tc.limit+1),
				fmt.Sprintf("kc: line 4: line of %d bytes is longer than max_line_bytes (%d)", 2<<20, tc.limit),
				"line 1: grant", "line 2: grant", "line 5: grant",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			if want := fmt.Sprintf("2 of 6 lines of %s are malformed for format keycloak of source kc; 2 are longer than max_line_bytes (%d)", sample, tc.limit); !strings.Contains(errOut, want) {
				t.Errorf("stderr %q lacks %q", errOut, want)
			}
		})
	}
}

func TestScanLineLimit(t *testing.T) {
	for _, tc := range lineLimits {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := limitConfig(t, dir, "keycloak", tc.yaml)
			log := filepath.Join(dir, "kc.log.1")
			content := limitLog(tc.limit)
			write(t, log, content)
			code, out, errOut := runCmd(t, "scan", "--config", cfg, log)
			if code != exitOK || !strings.HasPrefix(out, "scanned 6 new lines from 1 file(s)") {
				t.Fatalf("scan: exit %d, stdout %q, stderr %q; want 0 and 6 lines", code, out, errOut)
			}
			db, err := store.Open(filepath.Join(dir, "s.db"), store.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			checkLimitStore(t, db, int64(len(content)))
		})
	}
}

// limitDaemon is the daemon run in-process on a configuration, logging
// into a buffer.
type limitDaemon struct {
	p    *daemon.Daemon
	log  *syncBuffer
	stop func()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startLimitDaemon(t *testing.T, cfgPath string) *limitDaemon {
	t.Helper()
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d := &limitDaemon{log: &syncBuffer{}}
	d.p, _, d.stop = runInProcess(t, cfg, slog.New(slog.NewTextHandler(d.log, nil)))
	return d
}

// metric returns the value of the series of name with the given label
// pairs, as the daemon's /metrics would show it.
func (d *limitDaemon) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	fams, err := d.p.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
					return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
				}) {
					continue series
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// waitCommitted waits, up to a deadline, until n lines are committed.
func (d *limitDaemon) waitCommitted(t *testing.T, n uint64) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for d.p.Committed() < n {
		select {
		case <-d.p.Progress():
		case <-deadline:
			t.Fatalf("%d of %d lines committed within 30s; log:\n%s", d.p.Committed(), n, d.log)
		}
	}
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestRunLineLimit appends the lines to a tailed log: the too-long ones
// are malformed too_long, every position is committed, and the lines after
// them are read.
func TestRunLineLimit(t *testing.T) {
	for _, tc := range lineLimits {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := limitConfig(t, dir, "keycloak", tc.yaml)
			log := filepath.Join(dir, "kc.log")
			write(t, log, "")
			d := startLimitDaemon(t, cfg)
			content := limitLog(tc.limit)
			appendFile(t, log, content)
			d.waitCommitted(t, 6)
			if got := d.metric(t, "scopewatch_lines_malformed_total", "source", "kc", "reason", ingest.ReasonTooLong); got != 2 {
				t.Errorf("lines_malformed_total{reason=too_long} = %v, want 2", got)
			}
			if got := d.metric(t, "scopewatch_lines_oversized_total", "source", "kc"); got != 2 {
				t.Errorf("lines_oversized_total = %v, want 2", got)
			}
			d.stop()
			db, err := store.Open(filepath.Join(dir, "s.db"), store.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			checkLimitStore(t, db, int64(len(content)))
		})
	}
}

// nginxLines returns n nginx combined lines.
func nginxLines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `203.0.113.%d - - [01/Oct/2026:10:%02d:00 +0000] "GET /fhir/Observation/%d HTTP/1.1" 200 512 "-" "curl/8.5.0"`+"\n", i%250, i%60, i)
	}
	return b.String()
}

// TestScanWrongFormatRescan scans an nginx log with a source set to okta:
// the scan fails naming the file, the reason and the format that reads it,
// and marks nothing as read; with the format fixed, a rescan reads every
// line once.
func TestScanWrongFormatRescan(t *testing.T) {
	dir := t.TempDir()
	cfg := limitConfig(t, dir, "okta", "")
	log := filepath.Join(dir, "kc.log.1")
	write(t, log, nginxLines(12))

	code, out, errOut := runCmd(t, "scan", "--config", cfg, log)
	if code != exitError {
		t.Errorf("wrong format: exit %d, want %d", code, exitError)
	}
	if !strings.HasPrefix(out, "scanned 0 new lines from 1 file(s)") {
		t.Errorf("wrong format: stdout %q, want 0 lines scanned", out)
	}
	for _, want := range []string{
		"scopewatch scan: source kc: " + log + ": no line yields an event and 12 of 12 lines are malformed for format okta (mostly bad_json)",
		"the file is not marked as read",
		`the lines are not JSON (one starts "203.0.113.0 - - [01/Oct/…"): is this a text log?`,
		"these lines parse as nginx (12 of 12 sampled lines yield events): set format: nginx",
		"fix the source and scan the file again",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if n := committedLines(t, filepath.Join(dir, "s.db")); n != 0 {
		t.Errorf("%d lines committed from the refused file, want 0", n)
	}

	cfg = limitConfig(t, dir, "nginx", "")
	for i, want := range []string{"scanned 12 new lines", "scanned 0 new lines"} {
		code, out, errOut = runCmd(t, "scan", "--config", cfg, log)
		if code != exitOK || !strings.HasPrefix(out, want) {
			t.Fatalf("scan %d after the fix: exit %d, stdout %q, stderr %q; want 0 and %q", i+1, code, out, errOut, want)
		}
	}
	db, err := store.Open(filepath.Join(dir, "s.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srcs, err := db.Sources()
	if err != nil || len(srcs) != 1 || srcs[0].Lines != 12 || srcs[0].Malformed != 0 || srcs[0].Events.N != 12 {
		t.Errorf("stored sources = %+v, %v; want 12 lines, 12 events, none malformed, each once", srcs, err)
	}
}

// TestValidateSampleSuggests checks that validate --sample says which
// format reads the lines, and that a JSON format's syntax error on a
// text line says the line is not JSON.
func TestValidateSampleSuggests(t *testing.T) {
	dir := t.TempDir()
	cfg := limitConfig(t, dir, "okta", "")
	sample := filepath.Join(dir, "sample.log")
	write(t, sample, nginxLines(3))
	code, out, errOut := runCmd(t, "validate", "--config", cfg, "--sample", sample)
	if code != exitError {
		t.Errorf("exit %d, want %d", code, exitError)
	}
	if !strings.Contains(out, "(the line is not JSON: is this a text log?)") || !strings.Contains(out, "malformed by reason: bad_json 3") {
		t.Errorf("failing lines not explained:\n%s", out)
	}
	if want := "no line of " + sample + " yields an event for source kc: wrong format? 3 of 3 lines are malformed for format okta (bad_json 3)"; !strings.Contains(errOut, want) ||
		!strings.Contains(errOut, "set format: nginx") {
		t.Errorf("stderr %q\nwant %q and set format: nginx", errOut, want)
	}
}

// TestRunNoEvents feeds a tailed source set to okta 10,000 nginx lines:
// the daemon logs one warning naming the format that reads them and sets
// scopewatch_source_no_events; lines that yield events set it back to 0.
func TestRunNoEvents(t *testing.T) {
	dir := t.TempDir()
	cfg := limitConfig(t, dir, "okta", "")
	log := filepath.Join(dir, "kc.log")
	write(t, log, "")
	d := startLimitDaemon(t, cfg)
	appendFile(t, log, nginxLines(9999))
	d.waitCommitted(t, 9999)
	if got := d.metric(t, "scopewatch_source_no_events", "source", "kc"); got != 0 || strings.Contains(d.log.String(), "yielded no event") {
		t.Fatalf("after 9,999 lines: gauge %v, log %q; want 0 and no warning", got, d.log)
	}
	appendFile(t, log, nginxLines(2))
	d.waitCommitted(t, 10001)
	if got := d.metric(t, "scopewatch_source_no_events", "source", "kc"); got != 1 {
		t.Errorf("after 10,000 lines: gauge %v, want 1", got)
	}
	logs := d.log.String()
	if n := strings.Count(logs, "yielded no event"); n != 1 {
		t.Errorf("%d warnings, want 1:\n%s", n, logs)
	}
	for _, want := range []string{"level=WARN", "source=kc", "lines=10000", "malformed=\"bad_json 10000\"", "these lines parse as nginx", "set format: nginx"} {
		if !strings.Contains(logs, want) {
			t.Errorf("warning lacks %q:\n%s", want, logs)
		}
	}
	appendFile(t, log, `{"eventType":"app.oauth2.as.token.grant.access_token","published":"2026-10-01T10:00:00.000Z","outcome":{"result":"SUCCESS"},"client":{"id":"c1"},"debugContext":{"debugData":{"grantedScopes":"openid"}}}`+"\n")
	d.waitCommitted(t, 10002)
	if got := d.metric(t, "scopewatch_source_no_events", "source", "kc"); got != 0 {
		t.Errorf("after an event: gauge %v, want 0; log:\n%s", got, d.log)
	}
}
