package ingest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/rules"
)

// TestFormatTable checks what every row owes the rest: a unique name in
// sorted order (messages list them, Suggest tries them, in that order), a
// constructor, what its lines show, and fixtures in testdata/formats.
func TestFormatTable(t *testing.T) {
	names := Formats{}.Names()
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("Names() = %v, want sorted and unique", names)
	}
	for i := range formatTable {
		f := &formatTable[i]
		t.Run(f.name, func(t *testing.T) {
			if f.parser == nil {
				t.Error("no parser")
			}
			if f.shows == 0 && f.showsOf == nil {
				t.Error("shows neither grants nor uses")
			}
			if fi, err := os.Stat(filepath.Join("..", "testdata", "formats", f.name)); err != nil || !fi.IsDir() {
				t.Errorf("no fixtures in testdata/formats/%s: %v", f.name, err)
			}
			if got, ok := lookupFormat(f.name); !ok || got != f {
				t.Errorf("lookupFormat(%q) = %v, %v, want its row", f.name, got, ok)
			}
		})
	}
}

// TestFormatsBuildParsers builds every format's parser as a loaded
// configuration hands it over: with the format's defaults applied, and
// what it requires given.
func TestFormatsBuildParsers(t *testing.T) {
	for _, name := range (Formats{}).Names() {
		t.Run(name, func(t *testing.T) {
			src := rules.Source{Name: "s", Format: name}
			var missing []string
			Formats{}.Configure(&src, func(field, msg string) { missing = append(missing, field) })
			if slices.Contains(missing, "fields.time") {
				src.Fields.Time = "ts"
			}
			p, err := NewParser(src)
			if err != nil || p == nil {
				t.Errorf("NewParser = %v, %v", p, err)
			}
		})
	}
}

func TestFormatsConfigure(t *testing.T) {
	tests := []struct {
		name     string
		src      rules.Source
		want     rules.Source // TimeFormat and Kind after Configure
		problems []string     // field: msg
	}{
		{"json defaults", rules.Source{Format: "json", Fields: rules.JSONFields{Time: "ts"}},
			rules.Source{TimeFormat: "rfc3339", Kind: "use"}, nil},
		{"json keeps settings", rules.Source{Format: "json", Fields: rules.JSONFields{Time: "ts"}, TimeFormat: "epoch_ms", Kind: "grant"},
			rules.Source{TimeFormat: "epoch_ms", Kind: "grant"}, nil},
		{"json without time", rules.Source{Format: "json"},
			rules.Source{TimeFormat: "rfc3339", Kind: "use"},
			[]string{"fields.time: required for format json: the path of the event time, e.g. time or request.ts"}},
		{"keycloak has no settings of its own", rules.Source{Format: "keycloak"}, rules.Source{}, nil},
		{"unknown format", rules.Source{Format: "logfmt"}, rules.Source{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := tt.src
			var got []string
			Formats{}.Configure(&src, func(field, msg string) { got = append(got, field+": "+msg) })
			if src.TimeFormat != tt.want.TimeFormat || src.Kind != tt.want.Kind {
				t.Errorf("TimeFormat, Kind = %q, %q, want %q, %q", src.TimeFormat, src.Kind, tt.want.TimeFormat, tt.want.Kind)
			}
			if !slices.Equal(got, tt.problems) {
				t.Errorf("problems = %q, want %q", got, tt.problems)
			}
		})
	}
}

func TestShows(t *testing.T) {
	tests := []struct {
		name         string
		src          rules.Source
		grants, uses bool
	}{
		{"keycloak", rules.Source{Format: "keycloak"}, true, false},
		{"okta", rules.Source{Format: "okta"}, true, false},
		{"auth0", rules.Source{Format: "auth0"}, true, false},
		{"entra", rules.Source{Format: "entra"}, true, false},
		{"nginx", rules.Source{Format: "nginx"}, false, true},
		{"hapi-fhir", rules.Source{Format: "hapi-fhir"}, false, true},
		{"kong", rules.Source{Format: "kong"}, false, true},
		{"json without kind", rules.Source{Format: "json"}, false, true},
		{"json kind use", rules.Source{Format: "json", Kind: "use"}, false, true},
		{"json kind grant", rules.Source{Format: "json", Kind: "grant"}, true, false},
		{"json kind deny", rules.Source{Format: "json", Kind: "deny"}, true, false},
		{"json kinds", rules.Source{Format: "json", Kind: "grant", Kinds: map[string]string{"call": "use"}}, true, true},
		{"unknown format", rules.Source{Format: "logfmt"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			grants, uses := Shows(tt.src)
			if grants != tt.grants || uses != tt.uses {
				t.Errorf("Shows = %v, %v, want %v, %v", grants, uses, tt.grants, tt.uses)
			}
		})
	}
}

func TestServesFHIR(t *testing.T) {
	tests := []struct {
		name string
		src  rules.Source
		want bool
	}{
		{"hapi-fhir", rules.Source{Format: "hapi-fhir"}, true},
		{"hapi-fhir with base", rules.Source{Format: "hapi-fhir", FHIRBase: "/fhir"}, true},
		{"nginx-json with base", rules.Source{Format: "nginx-json", FHIRBase: "/fhir"}, true},
		{"nginx-json", rules.Source{Format: "nginx-json"}, false},
		{"keycloak", rules.Source{Format: "keycloak"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ServesFHIR(tt.src); got != tt.want {
				t.Errorf("ServesFHIR = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSuggestible(t *testing.T) {
	got := suggestible(rules.Source{Format: "okta"})
	if slices.Contains(got, "okta") || slices.Contains(got, "json") || len(got) != len(formatTable)-2 {
		t.Errorf("suggestible(okta) = %v, want every format but okta and json", got)
	}
	if !strings.Contains(strings.Join(got, " "), "keycloak") {
		t.Errorf("suggestible(okta) = %v lacks keycloak", got)
	}
}
