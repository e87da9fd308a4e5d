package ingest

import (
	"testing"

	"github.com/scopewatch/scopewatch/rules"
)

// BenchmarkWrapperLayer measures what the wrapper layer adds to a line
// that carries no wrapper, in one process so that the two figures compare:
// "bare" runs the format's parser alone, "layer" the parser NewParser
// returns, auto-detecting wrappers. The "docker" and "cri" cases measure a
// line inside a wrapper.
func BenchmarkWrapperLayer(b *testing.B) {
	cases := []struct {
		name   string
		src    rules.Source
		format string
		file   string
		line   int
		wrap   func([]byte) []byte
	}{
		{"nginx", rules.Source{Format: "nginx"}, "nginx", "combined.log", 2, nil},
		{"hapi_default", rules.Source{Format: "hapi-fhir"}, "hapi-fhir", "default_template.log", 1, nil},
		{"envoy", rules.Source{Format: "envoy"}, "envoy", "default.log", 1, nil},
		{"keycloak_text", rules.Source{Format: "keycloak"}, "keycloak", "new_quoted.log", 1, nil},
		{"keycloak_json", rules.Source{Format: "keycloak"}, "keycloak", "json_events.log", 1, nil},
		{"keycloak_cri", rules.Source{Format: "keycloak"}, "keycloak", "new_quoted.log", 1, func(l []byte) []byte {
			return append([]byte("2024-03-14T09:15:27.801234567Z stdout F "), l...)
		}},
		{"keycloak_docker", rules.Source{Format: "keycloak"}, "keycloak", "docker_json_file.log", 1, nil},
	}
	for _, c := range cases {
		line := fixtureLine(b, c.format, c.file, c.line)
		if c.wrap != nil {
			line = c.wrap(line)
		}
		layer, err := NewParser(c.src)
		if err != nil {
			b.Fatal(err)
		}
		run := func(b *testing.B, p Parser) {
			pos := Position{Source: "bench", Line: 1}
			dst := make([]Event, 0, 4)
			b.ReportAllocs()
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				dst, err = p.Parse(line, pos, dst[:0])
				if err != nil || len(dst) != 1 {
					b.Fatalf("Parse = %d events, %v", len(dst), err)
				}
			}
		}
		if c.wrap == nil && c.name != "keycloak_docker" {
			b.Run(c.name+"/bare", func(b *testing.B) { run(b, layer.(*unwrapping).inner) })
		}
		b.Run(c.name+"/layer", func(b *testing.B) { run(b, layer) })
	}
}
