package rules

import (
	"fmt"
	"strings"
	"testing"
)

// matchRules is a rules set whose routes exercise every pattern element.
// Scopes are named after the route that yields them.
func matchRules(t testing.TB) *Rules {
	t.Helper()
	r := &Rules{Routes: []Route{
		{Method: "GET", Path: "/api/labs/{id}", Scopes: []string{"labs-one"}},
		{Method: "get", Path: "/api/labs/", Scopes: []string{"labs-list"}},
		{Method: "POST", Path: "/api/labs/orders", Scopes: []string{"labs-order"}},
		{Method: "*", Path: "/api/labs/orders", Scopes: []string{"labs-order-any"}},
		{Path: "/api/*/summary", Scopes: []string{"any-summary"}},
		{Sources: []string{"fhir-gw"}, Method: "GET", Path: "/fhir/Observation/**", Scopes: []string{"obs-fhir-gw"}},
		{Method: "GET", Path: "/fhir/Observation/**", Scopes: []string{"obs"}},
		{Method: "DELETE", Path: "/{tenant}/admin/**", Scopes: []string{"tenant-admin"}},
		{Method: "GET", Path: "/", Scopes: []string{"root"}},
		{Method: "PUT", Path: "/**", Scopes: []string{"put-anything"}},
	}}
	if err := r.Compile(); err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return r
}

func TestMatchRoute(t *testing.T) {
	r := matchRules(t)
	tests := []struct {
		name                 string
		source, method, path string
		want                 string // the scopes, joined; "" for none
	}{
		{"one segment param", "api", "GET", "/api/labs/42", "labs-one"},
		{"method case", "api", "get", "/api/labs/42", "labs-one"},
		{"trailing slash in path", "api", "GET", "/api/labs/42/", "labs-one"},
		{"param needs a segment", "api", "GET", "/api/labs", "labs-list"},
		{"trailing slash in pattern", "api", "GET", "/api/labs/", "labs-list"},
		{"first route wins", "api", "GET", "/api/labs/orders", "labs-one"},
		{"method picks route", "api", "POST", "/api/labs/orders", "labs-order"},
		{"star method", "api", "PATCH", "/api/labs/orders", "labs-order-any"},
		{"param not across segments", "api", "GET", "/api/labs/42/results", ""},
		{"wrong method", "api", "DELETE", "/api/labs/42", ""},
		{"star segment, empty method", "api", "HEAD", "/api/patients/summary", "any-summary"},
		{"star needs a segment", "api", "GET", "/api//summary", ""},
		{"source filter", "fhir-gw", "GET", "/fhir/Observation/7", "obs-fhir-gw"},
		{"source filter skips", "other", "GET", "/fhir/Observation/7", "obs"},
		{"double star none", "other", "GET", "/fhir/Observation", "obs"},
		{"double star many", "other", "GET", "/fhir/Observation/7/_history/2", "obs"},
		{"double star prefix is literal", "other", "GET", "/fhir/ObservationX", ""},
		{"param first", "api", "DELETE", "/acme/admin/users/9", "tenant-admin"},
		{"param first, literal elsewhere", "api", "DELETE", "/acme/other/users/9", ""},
		{"root", "api", "GET", "/", "root"},
		{"root empty path", "api", "GET", "", "root"},
		{"catch all", "api", "PUT", "/anything/at/all", "put-anything"},
		{"catch all root", "api", "PUT", "/", "put-anything"},
		{"unknown first segment", "api", "GET", "/nothing/here", ""},
		{"case-sensitive path", "api", "GET", "/API/labs/42", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(r.MatchRoute(tt.source, tt.method, tt.path), " ")
			if got != tt.want {
				t.Errorf("MatchRoute(%q, %q, %q) = %q, want %q", tt.source, tt.method, tt.path, got, tt.want)
			}
		})
	}
}

func TestMatchRouteDoesNotAllocate(t *testing.T) {
	r := matchRules(t)
	paths := []struct{ source, method, path string }{
		{"api", "GET", "/api/labs/42/"},
		{"other", "GET", "/fhir/Observation/7/_history/2"},
		{"api", "DELETE", "/acme/admin/users/9"},
		{"api", "GET", "/nothing/here"},
	}
	for _, p := range paths {
		if n := testing.AllocsPerRun(100, func() { r.MatchRoute(p.source, p.method, p.path) }); n != 0 {
			t.Errorf("MatchRoute(%q, %q, %q): %v allocations, want 0", p.source, p.method, p.path, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { r.IsIdentityScope("openid") }); n != 0 {
		t.Errorf("IsIdentityScope: %v allocations, want 0", n)
	}
}

func TestMatchRouteBeforeCompile(t *testing.T) {
	if got := (&Rules{}).MatchRoute("api", "GET", "/x"); got != nil {
		t.Errorf("MatchRoute with no routes = %v, want nil", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("MatchRoute on uncompiled routes did not panic")
		}
	}()
	r := &Rules{Routes: []Route{{Path: "/x", Scopes: []string{"x"}}}}
	r.MatchRoute("api", "GET", "/x")
}

func TestCompileRefuses(t *testing.T) {
	tests := []struct {
		name  string
		route Route
		want  string
	}{
		{"empty path", Route{Scopes: []string{"x"}}, "routes[0].path: required"},
		{"relative", Route{Path: "api", Scopes: []string{"x"}}, `routes[0].path: pattern "api" must start with /`},
		{"query", Route{Path: "/api?x=1", Scopes: []string{"x"}}, "holds a query string"},
		{"empty segment", Route{Path: "/api//x", Scopes: []string{"x"}}, "empty segment"},
		{"inner double star", Route{Path: "/a/**/b", Scopes: []string{"x"}}, "** may only end a pattern"},
		{"partial star", Route{Path: "/a/b*", Scopes: []string{"x"}}, `segment "b*" must be a literal`},
		{"empty name", Route{Path: "/a/{}", Scopes: []string{"x"}}, `segment "{}" must be a literal`},
		{"open brace", Route{Path: "/a/{id", Scopes: []string{"x"}}, `segment "{id" must be a literal`},
		{"method", Route{Method: "GET,POST", Path: "/a", Scopes: []string{"x"}}, `routes[0].method: unknown method "GET,POST"`},
		{"no scopes", Route{Path: "/a"}, "routes[0].scopes: required"},
		{"empty scope", Route{Path: "/a", Scopes: []string{""}}, "routes[0].scopes[0]: empty scope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Rules{File: "rules.yaml", Routes: []Route{tt.route}}
			err := r.Compile()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Compile() = %v, want an error containing %q", err, tt.want)
			}
			if r.routes != nil {
				t.Error("Compile installed routes despite the error")
			}
		})
	}
}

func TestIsIdentityScope(t *testing.T) {
	r := &Rules{IdentityScopes: []string{"openid", "launch/patient"}}
	tests := []struct {
		scope string
		want  bool
	}{
		{"openid", true},
		{"launch/patient", true},
		{"profile", false},
		{"", false},
	}
	for _, compiled := range []bool{false, true} {
		if compiled {
			if err := r.Compile(); err != nil {
				t.Fatal(err)
			}
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("compiled=%v/%s", compiled, tt.scope), func(t *testing.T) {
				if got := r.IsIdentityScope(tt.scope); got != tt.want {
					t.Errorf("IsIdentityScope(%q) = %v, want %v", tt.scope, got, tt.want)
				}
			})
		}
	}
}
