package ingest

import (
	"encoding/json"
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
