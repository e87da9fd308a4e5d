package traffic

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
)

// TestKeycloakLinesParse writes token events and refusals of the
// generator in both Keycloak layouts and checks that the keycloak parser
// reads each back as the event written: client, user, address, scopes,
// refusal reason.
func TestKeycloakLinesParse(t *testing.T) {
	p, err := ingest.NewParser(rules.Source{Name: "kc", Format: "keycloak"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	gen := New(1, GeneratedClients(1, 20), start, start.Add(time.Hour), 400)
	for _, layout := range []struct {
		name  string
		write func([]byte, Event) []byte
	}{{"quarkus_json", gen.KeycloakQuarkusJSON}, {"text", gen.KeycloakText}} {
		t.Run(layout.name, func(t *testing.T) {
			var refusals int
			for i := range 400 {
				ev := gen.Next(i)
				ev.Grant = true
				line := layout.write(nil, ev)
				if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
					t.Fatalf("line %d is not one line: %q", i, line)
				}
				evs, err := p.Parse(bytes.TrimSuffix(line, []byte("\n")), ingest.Position{Source: "kc", Line: int64(i + 1)}, nil)
				if err != nil || len(evs) != 1 {
					t.Fatalf("line %d: %d events, %v\n%s", i, len(evs), err, line)
				}
				got := evs[0]
				want := ev.Scopes
				if want == nil {
					want = ev.Client.Granted
				}
				if got.Client != ev.Client.ID || got.Subject != ev.User || got.IP.String() != ev.IP || !got.Time.Equal(ev.Time.Truncate(time.Millisecond)) {
					t.Fatalf("line %d: read %+v, wrote %+v", i, got, ev)
				}
				switch {
				case ev.Error != "":
					refusals++
					if got.Kind != ingest.KindDeny || got.Reason != ev.Error {
						t.Errorf("line %d: kind %v reason %q, want a refusal for %q", i, got.Kind, got.Reason, ev.Error)
					}
				case got.Kind != ingest.KindGrant || !slices.Equal(got.Granted, want):
					t.Errorf("line %d: kind %v granted %v, want a grant of %v", i, got.Kind, got.Granted, want)
				}
			}
			if refusals == 0 {
				t.Error("no refusal among the lines: the refusal layout is untested")
			}
		})
	}
}

// TestScenarioLinesParse writes the scenario's logs and reads every line
// of them with the parsers of its sources: none is malformed, and the
// events and ignored lines are what its truth says.
func TestScenarioLinesParse(t *testing.T) {
	s := NewScenario()
	kc, api, err := s.WriteLogs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	truth := s.Truth()
	for _, f := range []struct {
		path string
		src  rules.Source
	}{
		{kc, rules.Source{Name: ScenarioKeycloak, Format: "keycloak"}},
		{api, rules.Source{Name: ScenarioAPI, Format: "nginx-json", Kind: "use"}},
	} {
		p, err := ingest.NewParser(f.src)
		if err != nil {
			t.Fatal(err)
		}
		file, err := os.Open(f.path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(file)
		sc.Buffer(nil, 1<<20)
		var lines, events int
		for sc.Scan() {
			lines++
			evs, err := p.Parse(sc.Bytes(), ingest.Position{Source: f.src.Name, Line: int64(lines)}, nil)
			var skip ingest.Skip
			if err != nil && !errors.As(err, &skip) {
				t.Fatalf("%s:%d: %v\n%s", filepath.Base(f.path), lines, err, sc.Text())
			}
			events += len(evs)
		}
		file.Close()
		if lines != truth.Lines[f.src.Name] {
			t.Errorf("%s: %d lines, truth says %d", f.src.Name, lines, truth.Lines[f.src.Name])
		}
		if events == 0 {
			t.Errorf("%s: no events", f.src.Name)
		}
	}
}
