package rules

import (
	"fmt"
	"testing"
)

// benchRules builds n routes shaped like a real API's: a handful of
// top-level prefixes, resources under each, item and collection routes.
func benchRules(b *testing.B, n int) *Rules {
	b.Helper()
	prefixes := []string{"api", "fhir", "admin", "reports"}
	methods := []string{"GET", "POST", "PUT", "DELETE"}
	r := &Rules{}
	for i := range n {
		p := prefixes[i%len(prefixes)]
		path := fmt.Sprintf("/%s/v1/resource%d/{id}", p, i)
		if i%3 == 0 {
			path = fmt.Sprintf("/%s/v1/resource%d/**", p, i)
		}
		r.Routes = append(r.Routes, Route{
			Method: methods[i%len(methods)],
			Path:   path,
			Scopes: []string{fmt.Sprintf("scope%d", i)},
		})
	}
	if err := r.Compile(); err != nil {
		b.Fatal(err)
	}
	return r
}

func BenchmarkMatchRoute(b *testing.B) {
	r := benchRules(b, 100)
	cases := []struct {
		name, method, path string
	}{
		{"routes_100/first", "GET", "/api/v1/resource0/123"},
		{"routes_100/last", "DELETE", "/reports/v1/resource99/123"},
		{"routes_100/miss_prefix", "GET", "/api/v1/resource1/123/extra/more"},
		{"routes_100/miss_unknown", "GET", "/static/app.js"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r.MatchRoute("fhir-gw", c.method, c.path)
			}
		})
	}
}
