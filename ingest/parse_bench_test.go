package ingest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureLine returns line n (1-based) of a fixture file.
func fixtureLine(b *testing.B, format, file string, n int) []byte {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "formats", format, file))
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	if n > len(lines) {
		b.Fatalf("%s has %d lines", file, len(lines))
	}
	return []byte(lines[n-1])
}

func BenchmarkParse(b *testing.B) {
	cases := []struct {
		name   string
		parser func(b *testing.B) Parser
		line   func(b *testing.B) []byte
	}{
		{"keycloak_text",
			func(b *testing.B) Parser { return newTestKeycloak(b, "") },
			func(b *testing.B) []byte { return fixtureLine(b, "keycloak", "new_quoted.log", 1) }},
		{"keycloak_text_old",
			func(b *testing.B) Parser { return newTestKeycloak(b, "") },
			func(b *testing.B) []byte { return fixtureLine(b, "keycloak", "old_unquoted.log", 1) }},
		{"keycloak_quarkus_json",
			func(b *testing.B) Parser { return newTestKeycloak(b, "") },
			func(b *testing.B) []byte { return fixtureLine(b, "keycloak", "quarkus_json.log", 1) }},
		{"keycloak_event_json",
			func(b *testing.B) Parser { return newTestKeycloak(b, "") },
			func(b *testing.B) []byte { return fixtureLine(b, "keycloak", "json_events.log", 1) }},
		{"json_gateway",
			func(b *testing.B) Parser { return newTestJSON(b, jsonCases["envoy_jwt"]) },
			func(b *testing.B) []byte { return fixtureLine(b, "json", "envoy_jwt.log", 1) }},
		{"json_gateway_kong",
			func(b *testing.B) Parser { return newTestJSON(b, jsonCases["kong"]) },
			func(b *testing.B) []byte { return fixtureLine(b, "json", "kong.log", 1) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p, line := c.parser(b), c.line(b)
			pos := Position{Source: "bench", Line: 1}
			dst := make([]Event, 0, 4)
			var err error
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				dst, err = p.Parse(line, pos, dst[:0])
				if err != nil || len(dst) != 1 {
					b.Fatalf("Parse = %d events, %v", len(dst), err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
	// The same Quarkus line decoded by encoding/json into a map, then the
	// client and scope pulled out of the message, for comparison.
	b.Run("stdlib_map_baseline", func(b *testing.B) {
		line := fixtureLine(b, "keycloak", "quarkus_json.log", 1)
		b.ReportAllocs()
		b.SetBytes(int64(len(line)))
		for b.Loop() {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				b.Fatal(err)
			}
			msg, _ := m["message"].(string)
			if m["loggerName"] != "org.keycloak.events" || !strings.Contains(msg, `clientId="fhir-portal"`) {
				b.Fatal("unexpected line")
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
	})
}

// BenchmarkParseVaried parses Keycloak Quarkus JSON token lines as the
// 10,000-client bench writes them: a user of its own on every line and a
// random 4 to 8 of 30 scopes on every token, so that neither the
// subjects nor the scope lists repeat (the case admission is for).
func BenchmarkParseVaried(b *testing.B) {
	tmpl := string(fixtureLine(b, "keycloak", "quarkus_json.log", 1))
	const user = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
	const scope = "openid fhirUser launch/patient patient/Observation.rs patient/Condition.rs offline_access"
	if !strings.Contains(tmpl, user) || !strings.Contains(tmpl, scope) {
		b.Fatal("the fixture line changed")
	}
	rng := uint64(1)
	next := func(n int) int {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int(rng % uint64(n))
	}
	lines := make([][]byte, 1<<16)
	for i := range lines {
		scopes := []string{"openid"}
		for range 4 + next(5) {
			scopes = append(scopes, fmt.Sprintf("patient/R%02d.rs", next(30)))
		}
		l := strings.Replace(tmpl, user, fmt.Sprintf("%08x-e5f6-4a7b-8c9d-0e1f2a3b4c5d", i), 1)
		lines[i] = []byte(strings.Replace(l, scope, strings.Join(scopes, " "), 1))
	}
	p := newTestKeycloak(b, "")
	pos := Position{Source: "bench", Line: 1}
	dst := make([]Event, 0, 4)
	var err error
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		dst, err = p.Parse(lines[i%len(lines)], pos, dst[:0])
		if err != nil || len(dst) != 1 {
			b.Fatalf("%v, %d events", err, len(dst))
		}
		i++
	}
}
