package rules

import "testing"

// fhirCases are the REST calls FHIRInteraction is tested with, written
// without a base; TestFHIRInteraction runs each under several bases.
var fhirCases = []struct {
	name, method, path string
	resource           string
	in                 Interaction
	ok                 bool
}{
	{"read", "GET", "/Patient/123", "Patient", Read, true},
	{"read head", "HEAD", "/Patient/123", "Patient", Read, true},
	{"vread", "GET", "/Patient/123/_history/2", "Patient", Read, true},
	{"history instance", "GET", "/Patient/123/_history", "Patient", Read, true},
	{"history type", "GET", "/Patient/_history", "Patient", Search, true},
	{"history system", "GET", "/_history", "*", Search, true},
	{"search type get", "GET", "/Observation", "Observation", Search, true},
	{"search type post", "POST", "/Observation/_search", "Observation", Search, true},
	{"search type get _search", "GET", "/Observation/_search", "Observation", Search, true},
	{"search system post", "POST", "/_search", "*", Search, true},
	{"search compartment", "GET", "/Patient/123/Observation", "Observation", Search, true},
	{"search compartment post", "POST", "/Patient/123/Observation/_search", "Observation", Search, true},
	{"search compartment all", "GET", "/Patient/123/*", "*", Search, true},
	{"create", "POST", "/Observation", "Observation", Create, true},
	{"update", "PUT", "/Observation/1", "Observation", Update, true},
	{"patch", "PATCH", "/Observation/1", "Observation", Update, true},
	{"conditional update", "PUT", "/Observation?identifier=x", "Observation", Update, true},
	{"conditional update stripped", "PUT", "/Observation", "Observation", Update, true},
	{"conditional patch", "PATCH", "/Observation?identifier=x", "Observation", Update, true},
	{"delete", "DELETE", "/Observation/1", "Observation", Delete, true},
	{"conditional delete", "DELETE", "/Observation?identifier=x", "Observation", Delete, true},
	{"trailing slash read", "GET", "/Patient/123/", "Patient", Read, true},
	{"trailing slash search", "GET", "/Observation/", "Observation", Search, true},
	{"query on read", "GET", "/Patient/123?_format=json", "Patient", Read, true},
	{"export system", "GET", "/$export", "*", Search, true},
	{"export patient", "GET", "/Patient/$export", "*", Search, true},
	{"export group", "GET", "/Group/1/$export", "*", Search, true},
	{"export group post", "POST", "/Group/1/$export", "*", Search, true},
	{"export delete", "DELETE", "/$export", "", 0, false},
	{"batch", "POST", "/", "", 0, false},
	{"root get", "GET", "/", "", 0, false},
	{"root empty", "GET", "", "", 0, false},
	{"metadata", "GET", "/metadata", "", 0, false},
	{"smart configuration", "GET", "/.well-known/smart-configuration", "", 0, false},
	{"other system operation", "POST", "/$reindex", "", 0, false},
	{"type operation", "POST", "/Patient/$match", "", 0, false},
	{"instance operation", "GET", "/Patient/1/$everything", "", 0, false},
	{"post on instance", "POST", "/Patient/1", "", 0, false},
	{"put history", "PUT", "/Patient/1/_history", "", 0, false},
	{"delete history type", "DELETE", "/Patient/_history", "", 0, false},
	{"lower-case type", "GET", "/patient/1", "", 0, false},
	{"type with a space", "GET", "/A ", "", 0, false},
	{"type with a dot", "GET", "/Patient.json/1", "", 0, false},
	{"empty segment", "GET", "/Patient//1", "", 0, false},
	{"too deep", "GET", "/Patient/1/_history/2/x", "", 0, false},
	{"way too deep", "GET", "/a/b/c/d/e/f/g", "", 0, false},
	{"unknown method", "OPTIONS", "/Patient/1", "", 0, false},
	{"lower-case method", "get", "/Patient/1", "", 0, false},
}

func TestFHIRInteraction(t *testing.T) {
	bases := []struct{ name, base string }{
		{"no base", ""},
		{"root base", "/"},
		{"fhir", "/fhir"},
		{"fhir trailing slash", "/fhir/"},
		{"deep base", "/api/fhir/r4"},
	}
	for _, b := range bases {
		for _, c := range fhirCases {
			t.Run(b.name+"/"+c.name, func(t *testing.T) {
				path := joinBase(b.base, c.path)
				res, in, ok := FHIRInteraction(c.method, path, b.base)
				if res != c.resource || in != c.in || ok != c.ok {
					t.Errorf("FHIRInteraction(%q, %q, %q) = %q, %s, %v; want %q, %s, %v",
						c.method, path, b.base, res, in, ok, c.resource, c.in, c.ok)
				}
			})
		}
	}
}

// joinBase puts path under base as a server would serve it.
func joinBase(base, path string) string {
	for len(base) > 0 && base[len(base)-1] == '/' {
		base = base[:len(base)-1]
	}
	return base + path
}

func TestFHIRInteractionOutsideBase(t *testing.T) {
	cases := []struct {
		name, path, base string
	}{
		{"other prefix", "/api/Patient/1", "/fhir"},
		{"base as a word prefix", "/fhirx/Patient/1", "/fhir"},
		{"no base in path", "/Patient/1", "/fhir"},
		{"base itself", "/fhir", "/fhir"},
		{"base with slash", "/fhir/", "/fhir"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if res, in, ok := FHIRInteraction("GET", c.path, c.base); ok {
				t.Errorf("FHIRInteraction(GET, %q, %q) = %q, %s, true; want not ok", c.path, c.base, res, in)
			}
		})
	}
}

func TestFHIRInteractionAllocs(t *testing.T) {
	for _, c := range fhirCases {
		path := "/fhir" + c.path
		if got := testing.AllocsPerRun(100, func() { FHIRInteraction(c.method, path, "/fhir/") }); got != 0 {
			t.Errorf("FHIRInteraction(%q, %q) allocates %v times, want 0", c.method, path, got)
		}
	}
}

func TestHAPIOperation(t *testing.T) {
	cases := []struct {
		code string
		want Interaction
		ok   bool
	}{
		{"read", Read, true},
		{"vread", Read, true},
		{"history-instance", Read, true},
		{"search-type", Search, true},
		{"search-system", Search, true},
		{"history-type", Search, true},
		{"history-system", Search, true},
		{"create", Create, true},
		{"update", Update, true},
		{"patch", Update, true},
		{"delete", Delete, true},
		{"READ", Read, true},
		{"VREAD", Read, true},
		{"HISTORY_INSTANCE", Read, true},
		{"SEARCH_TYPE", Search, true},
		{"SEARCH_SYSTEM", Search, true},
		{"HISTORY_TYPE", Search, true},
		{"HISTORY_SYSTEM", Search, true},
		{"CREATE", Create, true},
		{"UPDATE", Update, true},
		{"PATCH", Update, true},
		{"DELETE", Delete, true},
		{"Search_Type", Search, true},
		{"batch", 0, false},
		{"TRANSACTION", 0, false},
		{"metadata", 0, false},
		{"GET_PAGE", 0, false},
		{"extended-operation-instance", 0, false},
		{"EXTENDED_OPERATION_SERVER", 0, false},
		{"graphql-request", 0, false},
		{"$meta-add", 0, false},
		{"", 0, false},
		{"history_instancex", 0, false},
	}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			got, ok := HAPIOperation(c.code)
			if got != c.want || ok != c.ok {
				t.Errorf("HAPIOperation(%q) = %s, %v; want %s, %v", c.code, got, ok, c.want, c.ok)
			}
		})
	}
}

func TestHAPIOperationAllocs(t *testing.T) {
	for _, code := range []string{"search-type", "HISTORY_INSTANCE", "read", "batch"} {
		if got := testing.AllocsPerRun(100, func() { HAPIOperation(code) }); got != 0 {
			t.Errorf("HAPIOperation(%q) allocates %v times, want 0", code, got)
		}
	}
}

func FuzzFHIRInteraction(f *testing.F) {
	for _, c := range fhirCases {
		f.Add(c.method, "/fhir"+c.path, "/fhir")
	}
	f.Fuzz(func(t *testing.T, method, path, base string) {
		res, in, ok := FHIRInteraction(method, path, base)
		if !ok {
			if res != "" || in != 0 {
				t.Errorf("FHIRInteraction(%q, %q, %q) = %q, %s, false; want empty results when not ok", method, path, base, res, in)
			}
			return
		}
		if res != "*" && checkResource(res) != "" {
			t.Errorf("FHIRInteraction(%q, %q, %q) resource %q is not a resource type", method, path, base, res)
		}
		if in&(in-1) != 0 || in&AllInteractions == 0 {
			t.Errorf("FHIRInteraction(%q, %q, %q) interaction %s is not one letter", method, path, base, in)
		}
	})
}
