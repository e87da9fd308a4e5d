package engine

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
)

// noEventsRun runs an engine with a no-events threshold of after over
// lines of the sources, and returns its metrics and what it logged.
func noEventsRun(t *testing.T, after int, sources []rules.Source, lines []ingest.Line) (*Metrics, string) {
	t.Helper()
	parsers := map[string]ingest.Parser{}
	for _, s := range sources {
		p, err := ingest.NewParser(s)
		if err != nil {
			t.Fatal(err)
		}
		parsers[s.Name] = p
	}
	var logs bytes.Buffer
	m := NewMetrics(nil)
	for _, s := range sources {
		m.InitSource(s.Name)
	}
	e := New(Options{
		Parsers: parsers, Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: openTestDB(t),
		Metrics: m, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		NoEventsAfter: after, Sources: sources,
	})
	runLines(t, e, lines...)
	return m, logs.String()
}

func fixture(t *testing.T, src, name string, from int64) []ingest.Line {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "formats", name))
	if err != nil {
		t.Fatal(err)
	}
	var out []ingest.Line
	for i, l := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		out = append(out, line(src, 1, from+int64(i+1)*1000, from+int64(i+1), string(l)))
	}
	return out
}

func TestNoEventsWarnsOnce(t *testing.T) {
	tests := []struct {
		name  string
		src   rules.Source
		lines func(t *testing.T) []ingest.Line
		want  string // in the warning's likely cause
	}{
		{"wrong format", rules.Source{Name: "gw", Format: "nginx"},
			func(t *testing.T) []ingest.Line { return fixture(t, "gw", "okta/token_grants.log", 0) },
			"wrong format? 7 of 7 lines are malformed for format nginx (bad_format 7); these lines parse as okta (7 of 7 sampled lines yield events): set format: okta"},
		{"keycloak at INFO", rules.Source{Name: "kc", Format: "keycloak"},
			func(t *testing.T) []ingest.Line { return fixture(t, "kc", "keycloak/non_event_lines.log", 0)[:7] },
			"success events are logged at DEBUG: raise the org.keycloak.events category (or --spi-events-listener-jboss-logging-success-level=info)"},
		{"wrapper left on", rules.Source{Name: "kc", Format: "keycloak", Wrapper: ingest.WrapNone},
			func(t *testing.T) []ingest.Line { return fixture(t, "kc", "keycloak/docker_json_file.log", 0)[:1] },
			"unknown wrapper"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lines := tc.lines(t)
			n := len(lines)
			// Twice the threshold: still one warning.
			lines = append(lines, tc.lines(t)...)
			for i := range lines {
				lines[i].Pos.Offset, lines[i].Pos.Line = int64(i+1)*1000, int64(i+1)
			}
			m, logs := noEventsRun(t, n, []rules.Source{tc.src}, lines)
			if got := testutil.ToFloat64(m.NoEvents.WithLabelValues(tc.src.Name)); got != 1 {
				t.Errorf("scopewatch_source_no_events = %v, want 1", got)
			}
			if c := strings.Count(logs, "yielded no event"); c != 1 {
				t.Fatalf("%d warnings, want 1:\n%s", c, logs)
			}
			for _, want := range []string{"level=WARN", "source=" + tc.src.Name, fmt.Sprintf("lines=%d", n), tc.want} {
				if !strings.Contains(logs, want) {
					t.Errorf("warning lacks %q:\n%s", want, logs)
				}
			}
		})
	}
}

func TestNoEventsBelowThresholdOrWithEvents(t *testing.T) {
	okta := rules.Source{Name: "idp", Format: "okta"}
	bad := fixture(t, "idp", "okta/malformed.log", 0)
	good := fixture(t, "idp", "okta/token_grants.log", 100)

	// One line short of the threshold: quiet.
	m, logs := noEventsRun(t, len(bad)+1, []rules.Source{okta}, bad)
	if got := testutil.ToFloat64(m.NoEvents.WithLabelValues("idp")); got != 0 || strings.Contains(logs, "no event") {
		t.Errorf("below the threshold: gauge %v, logs %q; want 0 and no warning", got, logs)
	}

	// An event first: never a warning, however many lines follow.
	lines := append(good[:1:1], bad...)
	lines = append(lines, bad...)
	m, logs = noEventsRun(t, 2, []rules.Source{okta}, lines)
	if got := testutil.ToFloat64(m.NoEvents.WithLabelValues("idp")); got != 0 || strings.Contains(logs, "no event") {
		t.Errorf("after an event: gauge %v, logs %q; want 0 and no warning", got, logs)
	}

	// The warning, then an event: the gauge goes back to 0.
	lines = append(bad[:len(bad):len(bad)], good...)
	m, logs = noEventsRun(t, 3, []rules.Source{okta}, lines)
	if got := testutil.ToFloat64(m.NoEvents.WithLabelValues("idp")); got != 0 ||
		!strings.Contains(logs, "yielded no event") || !strings.Contains(logs, "yields events again") {
		t.Errorf("warned, then an event: gauge %v, logs %q; want 0, the warning and the recovery", got, logs)
	}
}

// TestEngineCountsTooLong checks that a line a source handed on as too
// long is malformed too_long and its position committed like any line's.
func TestEngineCountsTooLong(t *testing.T) {
	db := openTestDB(t)
	m := NewMetrics(nil)
	e := New(Options{Parsers: testParsers(t), Accountant: detect.NewAccountant(loadTestRules(t), nil, nil), Store: db, Metrics: m})
	path := filepath.Join(t.TempDir(), "api.log")
	good := `{"ts":"2026-10-01T10:00:01Z","client":"lab","method":"GET","path":"/api/labs/9","status":200}`
	var content bytes.Buffer
	content.WriteString(good + "\n")
	content.WriteString(strings.Repeat("x", 2048) + "\n")
	if err := os.WriteFile(path, content.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	// The real reader, with a limit of 1 KiB.
	src := ingest.NewScan(ingest.ScanOptions{Name: "api", Paths: []string{path}, MaxLineSize: 1024})
	in := make(chan ingest.Line, 8)
	if err := src.Run(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	close(in)
	if err := e.Run(t.Context(), in); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.Malformed.WithLabelValues("api", ingest.ReasonTooLong)); got != 1 {
		t.Errorf("malformed too_long = %v, want 1", got)
	}
	ps, err := db.Positions("api")
	if err != nil || len(ps) != 1 || ps[0].Offset != int64(content.Len()) || ps[0].Line != 2 {
		t.Errorf("positions = %+v, %v; want offset %d line 2", ps, err, content.Len())
	}
	srcs, err := db.Sources()
	if err != nil || len(srcs) != 1 || srcs[0].Lines != 2 || srcs[0].Malformed != 1 {
		t.Errorf("stored source counts = %+v, %v; want 2 lines, 1 malformed", srcs, err)
	}
}
