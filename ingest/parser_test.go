package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/formats")

// goldenEvent is an Event as written to golden files.
type goldenEvent struct {
	Line      int64    `json:"line"`
	Time      string   `json:"time"`
	Kind      string   `json:"kind"`
	Type      string   `json:"type,omitempty"`
	Client    string   `json:"client"`
	Subject   string   `json:"subject,omitempty"`
	Requested []string `json:"requested,omitempty"`
	Granted   []string `json:"granted,omitempty"`
	Method    string   `json:"method,omitempty"`
	Path      string   `json:"path,omitempty"`
	Query     string   `json:"query,omitempty"`
	Status    int      `json:"status,omitempty"`
	IP        string   `json:"ip,omitempty"`
	Country   string   `json:"country,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	Dropped   []string `json:"dropped,omitempty"`
}

// goldenError is a malformed line as written to golden files.
type goldenError struct {
	Line    int64  `json:"line"`
	Record  int    `json:"record,omitempty"`
	Records int    `json:"records,omitempty"`
	Field   string `json:"field,omitempty"`
	Reason  string `json:"reason"`
}

// goldenIgnored is a well-formed line without an event, with its reason.
type goldenIgnored struct {
	Line   int64  `json:"line"`
	Reason string `json:"reason"`
}

type goldenFile struct {
	Events  []goldenEvent   `json:"events"`
	Errors  []goldenError   `json:"errors"`
	Ignored []goldenIgnored `json:"ignored"`
}

func toGolden(e Event) goldenEvent {
	g := goldenEvent{
		Line: e.Pos.Line, Time: e.Time.UTC().Format(time.RFC3339Nano), Kind: e.Kind.String(), Type: e.Type,
		Client: e.Client, Subject: e.Subject, Requested: e.Requested, Granted: e.Granted,
		Method: e.Method, Path: e.Path, Query: e.Query, Status: e.Status, Country: e.Country, Reason: e.Reason,
	}
	if e.IP.IsValid() {
		g.IP = e.IP.String()
	}
	for i, name := range FieldNames() {
		if e.Dropped&(1<<i) != 0 {
			g.Dropped = append(g.Dropped, name)
		}
	}
	return g
}

// parseFile runs p over every line of the file at path, as a Source would
// hand them over, and collects events and malformed lines.
func parseFile(t *testing.T, p Parser, source, path string) goldenFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := goldenFile{Events: []goldenEvent{}, Errors: []goldenError{}, Ignored: []goldenIgnored{}}
	var offset int64
	var events []Event
	for n, line := range bytes.SplitAfter(data, []byte("\n")) {
		if len(line) == 0 {
			break
		}
		offset += int64(len(line))
		pos := Position{Source: source, Path: path, Offset: offset, Line: int64(n + 1)}
		text := bytes.TrimSuffix(line, []byte("\n"))
		events, err = p.Parse(text, pos, events[:0])
		skip, pe := Outcome(err)
		switch {
		case err == nil && len(events) == 0:
			t.Errorf("line %d: no event, no error and no reason to ignore it", n+1)
		case skip != "":
			if len(events) != 0 {
				t.Errorf("line %d: %d events returned with ignored %s", n+1, len(events), skip)
			}
			got.Ignored = append(got.Ignored, goldenIgnored{Line: int64(n + 1), Reason: string(skip)})
			continue
		case pe != nil:
			if !errors.As(err, &pe) {
				t.Fatalf("line %d: error %v is not a *ParseError", n+1, err)
			}
			if pe.Records == 0 && len(events) != 0 {
				t.Errorf("line %d: %d events returned with an error", n+1, len(events))
			}
			got.Errors = append(got.Errors, goldenError{Line: pe.Line, Record: pe.Record, Records: pe.Records, Field: pe.Field, Reason: pe.Reason})
		}
		for _, e := range events {
			if e.Source != source || e.Pos != pos {
				t.Errorf("line %d: event source %q pos %+v, want %q %+v", n+1, e.Source, e.Pos, source, pos)
			}
			got.Events = append(got.Events, toGolden(e))
		}
	}
	return got
}

// checkGolden compares got with the golden file, or rewrites it with -update.
func checkGolden(t *testing.T, got goldenFile, path string) {
	t.Helper()
	out, err := json.MarshalIndent(got, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, '\n')
	if *update {
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(out, want) {
		t.Errorf("%s differs; got:\n%s", path, diffLines(string(out), string(want)))
	}
}

// diffLines shows the first differing lines of got and want.
func diffLines(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl && shown < 10 {
			b.WriteString("line " + itoa(i+1) + ":\n  got:  " + gl + "\n  want: " + wl + "\n")
			shown++
		}
	}
	return b.String()
}

func itoa(n int) string { return string(appendInt(nil, n)) }

func appendInt(b []byte, n int) []byte {
	if n >= 10 {
		b = appendInt(b, n/10)
	}
	return append(b, byte('0'+n%10))
}

// fixtures lists the .log files of a testdata/formats directory.
func fixtures(t *testing.T, format string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "formats", format, "*.log"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures for %s: %v", format, err)
	}
	return files
}

func caseName(path string) string { return strings.TrimSuffix(filepath.Base(path), ".log") }

func TestNewParser(t *testing.T) {
	tests := []struct {
		name    string
		src     rules.Source
		wantErr string
	}{
		{"keycloak", rules.Source{Name: "kc", Format: "keycloak"}, ""},
		{"keycloak zone", rules.Source{Name: "kc", Format: "keycloak", TimeZone: "Europe/Berlin"}, ""},
		{"keycloak bad zone", rules.Source{Name: "kc", Format: "keycloak", TimeZone: "Mars/Olympus"}, "timezone"},
		{"json", rules.Source{Name: "gw", Format: "json", Fields: rules.JSONFields{Time: "ts"}}, ""},
		{"json layout", rules.Source{Name: "gw", Format: "json", Fields: rules.JSONFields{Time: "ts"}, TimeFormat: "2006-01-02 15:04:05"}, ""},
		{"json no time", rules.Source{Name: "gw", Format: "json", Fields: rules.JSONFields{Client: "c"}}, "fields.time is required"},
		{"json bad time format", rules.Source{Name: "gw", Format: "json", Fields: rules.JSONFields{Time: "ts"}, TimeFormat: "epoch_fortnights"}, "time_format"},
		{"json bad kind", rules.Source{Name: "gw", Format: "json", Fields: rules.JSONFields{Time: "ts"}, Kind: "audit"}, "kind \"audit\""},
		{"json bad kinds", rules.Source{Name: "gw", Format: "json", Fields: rules.JSONFields{Time: "ts"}, Kinds: map[string]string{"x": "maybe"}}, "kinds[\"x\"]"},
		{"json empty path key", rules.Source{Name: "gw", Format: "json", Fields: rules.JSONFields{Time: "ts", Client: "a..b"}}, "fields.client"},
		{"unknown format", rules.Source{Name: "x", Format: "logfmt"}, "unknown format"},
		{"no format", rules.Source{Name: "x"}, "no format"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewParser(tt.src)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("NewParser: %v", err)
			}
			if !strings.Contains(got, tt.wantErr) || (tt.wantErr != "" && p != nil) {
				t.Errorf("NewParser error = %q, want it to contain %q", got, tt.wantErr)
			}
		})
	}
}

func TestParseISOTime(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	tests := []struct {
		in   string
		loc  *time.Location
		want string // RFC 3339 in UTC, "" for a failure
	}{
		{"2021-10-22 21:01:45,403", time.UTC, "2021-10-22T21:01:45.403Z"},
		{"2021-10-22 21:01:45,403", berlin, "2021-10-22T19:01:45.403Z"},
		{"2021-10-22T21:01:45.403Z", berlin, "2021-10-22T21:01:45.403Z"},
		{"2021-10-22T21:01:45.1234567+02:00", time.UTC, "2021-10-22T19:01:45.1234567Z"},
		{"2021-10-22T21:01:45.123456789-0530", time.UTC, "2021-10-23T02:31:45.123456789Z"},
		{"2021-10-22T21:01:45.1234567891Z", time.UTC, "2021-10-22T21:01:45.123456789Z"},
		{"2021-10-22T21:01:45+01", time.UTC, "2021-10-22T20:01:45Z"},
		{"2024-02-29T00:00:00Z", time.UTC, "2024-02-29T00:00:00Z"},
		{"2023-02-29T00:00:00Z", time.UTC, ""},
		{"2017-09-31T22:23:07.777Z", time.UTC, ""},
		{"2021-10-22T24:00:00Z", time.UTC, ""},
		{"2021-10-22T21:01:45.Z", time.UTC, ""},
		{"2021-10-22T21:01:45Zjunk", time.UTC, ""},
		{"2021-10-22", time.UTC, ""},
		{"21-10-22T21:01:45Z", time.UTC, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tm, ok := parseISOTime([]byte(tt.in), tt.loc)
			got := ""
			if ok {
				got = tm.UTC().Format(time.RFC3339Nano)
			}
			if got != tt.want {
				t.Errorf("parseISOTime(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseEpoch(t *testing.T) {
	tests := []struct {
		in   string
		unit time.Duration
		want string
	}{
		{"1700000000", time.Second, "2023-11-14T22:13:20Z"},
		{"1700000000.25", time.Second, "2023-11-14T22:13:20.25Z"},
		{"1700000000123", time.Millisecond, "2023-11-14T22:13:20.123Z"},
		{"1700000000123.5", time.Millisecond, "2023-11-14T22:13:20.1235Z"},
		{"1700000000123456", time.Microsecond, "2023-11-14T22:13:20.123456Z"},
		{"1700000000123456789", time.Nanosecond, "2023-11-14T22:13:20.123456789Z"},
		{"1.7e9", time.Second, "2023-11-14T22:13:20Z"},
		{"-1", time.Second, "1969-12-31T23:59:59Z"},
		{"", time.Second, ""},
		{"12x", time.Second, ""},
		{"1.", time.Second, ""},
		{"99999999999999999999", time.Second, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tm, ok := parseEpoch([]byte(tt.in), int64(tt.unit))
			got := ""
			if ok {
				got = tm.UTC().Format(time.RFC3339Nano)
			}
			if got != tt.want {
				t.Errorf("parseEpoch(%q, %v) = %q, want %q", tt.in, tt.unit, got, tt.want)
			}
		})
	}
}

func TestParseNginxTime(t *testing.T) {
	tests := []struct{ in, want string }{
		{"25/Oct/2016:14:49:33 +0200", "2016-10-25T12:49:33Z"},
		{"01/Jan/2024:00:00:00 -0800", "2024-01-01T08:00:00Z"},
		{"32/Oct/2016:14:49:33 +0200", ""},
		{"25/Okt/2016:14:49:33 +0200", ""},
		{"25/Oct/2016:14:49:33", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tm, ok := parseNginxTime([]byte(tt.in))
			got := ""
			if ok {
				got = tm.UTC().Format(time.RFC3339Nano)
			}
			if got != tt.want {
				t.Errorf("parseNginxTime(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseSyslogTime(t *testing.T) {
	now := time.Date(2022, 1, 3, 10, 0, 0, 0, time.UTC)
	tests := []struct{ in, want string }{
		{"Jan  2 08:00:01", "2022-01-02T08:00:01Z"},
		{"Dec 31 23:59:59", "2021-12-31T23:59:59Z"},
		{"Feb 29 12:00:00", "2020-02-29T12:00:00Z"}, // not in 2022 nor 2021: rejected below
		{"Feb 30 12:00:00", ""},
		{"Foo  2 08:00:01", ""},
	}
	tests[2].want = ""
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tm, ok := parseSyslogTime([]byte(tt.in), time.UTC, now)
			got := ""
			if ok {
				got = tm.UTC().Format(time.RFC3339Nano)
			}
			if got != tt.want {
				t.Errorf("parseSyslogTime(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseIP(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.10", "192.0.2.10"},
		{"0.0.0.0", "0.0.0.0"},
		{"255.255.255.255", "255.255.255.255"},
		{"2001:db8::1", "2001:db8::1"},
		{"::ffff:192.0.2.1", "192.0.2.1"},
		{"fe80::1%eth0", "fe80::1%eth0"},
		{"256.0.0.1", ""},
		{"01.2.3.4", ""},
		{"1.2.3", ""},
		{"1.2.3.4.5", ""},
		{"1.2.3.4 ", ""},
		{"", ""},
		{"null", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			a, ok := parseIP([]byte(tt.in))
			got := ""
			if ok {
				got = a.String()
			}
			if got != tt.want {
				t.Errorf("parseIP(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// checkOutcome checks the contract of Parse for one line: events and no
// error; a Skip of the closed set and no events; or a *ParseError with a
// reason and no events, unless it counts some records of a page malformed.
// It reports whether the line gave events to check further.
func checkOutcome(t *testing.T, line []byte, evs []Event, err error) bool {
	t.Helper()
	skip, pe := Outcome(err)
	switch {
	case err == nil && len(evs) == 0:
		t.Fatalf("Parse(%q): no event, no error, no reason to ignore it", line)
	case skip != "":
		if !slices.Contains(SkipReasons(), skip) || len(evs) != 0 {
			t.Fatalf("Parse(%q) = %d events, ignored %q: want a known reason and no events", line, len(evs), skip)
		}
		return false
	case pe != nil:
		if _, ok := err.(*ParseError); !ok || pe.Reason == "" || (pe.Records == 0 && len(evs) != 0) {
			t.Fatalf("Parse(%q) = %d events, %v: want a *ParseError with a reason and no events", line, len(evs), err)
		}
		return len(evs) > 0
	}
	return true
}
