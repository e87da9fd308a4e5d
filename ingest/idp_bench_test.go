package ingest

import "testing"

// BenchmarkParseIdP measures the identity-provider parsers on one token
// event each, the way BenchmarkParse measures the others (that benchmark's
// cases are a closed list, hence a second function).
func BenchmarkParseIdP(b *testing.B) {
	cases := []struct {
		name, format, file string
		line               int
	}{
		{"okta", "okta", "token_grants.log", 1},             // 2.4 KB, custom server access token
		{"okta_org_server", "okta", "token_grants.log", 4},  // 2.0 KB, org server client credentials
		{"auth0", "auth0", "log_stream.log", 3},             // 1.0 KB, log-stream seacft
		{"auth0_array_scope", "auth0", "log_stream.log", 4}, // 1.0 KB, scope as an array
		{"entra", "entra", "signin_records.log", 1},         // 1.6 KB, interactive sign-in
		{"entra_failure", "entra", "signin_records.log", 4}, // 1.7 KB, failed sign-in with a reason
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p, line := newTestIdP(b, c.format), fixtureLine(b, c.format, c.file, c.line)
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
