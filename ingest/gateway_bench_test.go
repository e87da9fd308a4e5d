package ingest

import (
	"testing"

	"github.com/scopewatch/scopewatch/rules"
)

func BenchmarkParseGateway(b *testing.B) {
	cases := []struct {
		name string
		src  rules.Source
		file string
		line int
	}{
		{"nginx_combined", rules.Source{Format: "nginx"}, "combined.log", 2},
		{"nginx_vhost_xff", rules.Source{Format: "nginx"}, "vhost_xff.log", 1},
		{"nginx_json", rules.Source{Format: "nginx-json", Fields: rules.JSONFields{Client: "client_id"}}, "escape_json.log", 1},
		{"envoy_text", rules.Source{Format: "envoy"}, "default.log", 1},
		{"envoy_json", envoyJSONSource, "jwt_authn.log", 1},
		{"kong", rules.Source{Format: "kong"}, "file_log.log", 1},
		{"traefik", traefikSource, "v2.log", 1},
		{"apigw", rules.Source{Format: "apigw"}, "console_json.log", 2},
		{"hapi", rules.Source{Format: "hapi-fhir", Template: hapiPublicTemplate}, "public_server.log", 2},
		{"hapi_default", rules.Source{Format: "hapi-fhir"}, "default_template.log", 1},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p := newTestGateway(b, c.src)
			line := fixtureLine(b, c.src.Format, c.file, c.line)
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
}
