package ingest

import "github.com/scopewatch/scopewatch/rules"

// This file is the table of log formats: the one place that says which
// names a source's format setting may take and what each name means. The
// parser switch, the configuration check (through Formats, which
// rules.Load is handed), the coverage of unused-scope findings (Shows),
// the SMART-on-FHIR mapping (ServesFHIR) and the suggestions of validate
// and scan (Suggest) all read it. A new format is its parser file, one
// row here and its fixtures in testdata/formats/<name>.

// format is one row of the table.
type format struct {
	name string
	// parser returns the format's parser for a source, reading lines
	// already out of their wrappers.
	parser func(rules.Source) (Parser, error)
	// shows is which events the format's lines carry. showsOf, when set,
	// works it out from the source's settings instead.
	shows   shows
	showsOf func(rules.Source) shows
	// fhir is set for a format whose lines name FHIR interactions on
	// paths relative to the server's FHIR base (HAPI FHIR's own log): its
	// sources get the SMART-on-FHIR mapping without a fhir_base.
	fhir bool
	// mapped is set for a format that reads only what a source's fields
	// mapping names (json): Suggest does not try it, since without a
	// mapping it reads nothing and with a guessed one it reads any JSON.
	mapped bool
	// configure, when set, applies the format's defaults to a source and
	// reports each setting the format lacks or refuses (see
	// Formats.Configure).
	configure func(s *rules.Source, bad func(field, msg string))
	// ignoredHint, when set, is the advice for a source whose lines are
	// mostly ignored as other loggers' or other events'.
	ignoredHint string
}

// shows is which events a format's lines can carry.
type shows uint8

const (
	// showsGrants: token grants and refusals, an identity provider's log.
	// It also shows identity scopes in use, which count as used when a
	// token carrying them is issued.
	showsGrants shows = 1 << iota
	// showsUses: API calls, an access log.
	showsUses
)

// formatTable holds the formats, sorted by name: the order in which
// messages list them and Suggest tries them.
var formatTable = [...]format{
	{name: "apigw", parser: preset(apigwPreset), shows: showsUses},
	{name: "auth0", parser: newAuth0Parser, shows: showsGrants},
	{name: "entra", parser: newEntraParser, shows: showsGrants},
	{name: "envoy", parser: newEnvoyParser, shows: showsUses},
	{name: "envoy-json", parser: preset(envoyJSONPreset), shows: showsUses},
	{name: "hapi-fhir", parser: newHAPIParser, shows: showsUses, fhir: true},
	{name: "json", parser: parserOf(newJSONParser), showsOf: jsonShows, mapped: true, configure: configureJSON},
	{name: "keycloak", parser: parserOf(newKeycloakParser), shows: showsGrants, ignoredHint: keycloakDebugHint},
	{name: "kong", parser: preset(kongPreset), shows: showsUses},
	{name: "nginx", parser: parserOf(nginxParserOf), shows: showsUses},
	{name: "nginx-json", parser: preset(nginxJSONPreset), shows: showsUses},
	{name: "okta", parser: newOktaParser, shows: showsGrants},
	{name: "traefik", parser: preset(traefikPreset), shows: showsUses},
}

// lookupFormat returns the row of the format named name.
func lookupFormat(name string) (*format, bool) {
	for i := range formatTable {
		if formatTable[i].name == name {
			return &formatTable[i], true
		}
	}
	return nil, false
}

// parserOf adapts a constructor of a concrete parser type to the table,
// so that a failed one yields a nil Parser rather than a typed nil.
func parserOf[P Parser](newP func(rules.Source) (P, error)) func(rules.Source) (Parser, error) {
	return func(src rules.Source) (Parser, error) {
		p, err := newP(src)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}

// preset returns the constructor of a JSON access-log preset's parser.
func preset(pre gwPreset) func(rules.Source) (Parser, error) {
	return func(src rules.Source) (Parser, error) { return newPresetParser(src, pre) }
}

// nginxParserOf is newNginxParser in the shape of the other constructors.
func nginxParserOf(src rules.Source) (*nginxParser, error) { return newNginxParser(src), nil }

// Formats is the table of log formats as rules.Load consults it: which
// names a source's format may take, and the defaults and settings each
// asks of a source. It has no state; the zero value is the table.
type Formats struct{}

var _ rules.Formats = Formats{}

// Names returns every name a source's format may take, sorted.
func (Formats) Names() []string {
	names := make([]string, len(formatTable))
	for i := range formatTable {
		names[i] = formatTable[i].name
	}
	return names
}

// Configure applies the defaults of s's format to s and reports through
// bad each setting the format lacks or refuses, by its field path below
// the source (fields.time) and a message. A format without settings of
// its own, or one the table lacks, reports nothing.
func (Formats) Configure(s *rules.Source, bad func(field, msg string)) {
	if f, ok := lookupFormat(s.Format); ok && f.configure != nil {
		f.configure(s, bad)
	}
}

// Shows reports which events src's log can carry: token grants and
// refusals (an identity provider's log) and API calls (an access log). A
// json source shows what its kind and kinds settings name; a source of a
// format the table lacks is taken for an access log.
func Shows(src rules.Source) (grants, uses bool) {
	s := showsUses
	if f, ok := lookupFormat(src.Format); ok {
		s = f.shows
		if f.showsOf != nil {
			s = f.showsOf(src)
		}
	}
	return s&showsGrants != 0, s&showsUses != 0
}

// ServesFHIR reports whether src's API calls are FHIR interactions to map
// to SMART-on-FHIR scopes: it names a fhir_base, or its format's lines
// name them relative to the FHIR base (HAPI FHIR's own log).
func ServesFHIR(src rules.Source) bool {
	if src.FHIRBase != "" {
		return true
	}
	f, ok := lookupFormat(src.Format)
	return ok && f.fhir
}

// suggestible returns the formats Suggest tries on lines src's format
// leaves: every other one that needs no mapping, in table order.
func suggestible(src rules.Source) []string {
	var out []string
	for i := range formatTable {
		if f := &formatTable[i]; f.name != src.Format && !f.mapped {
			out = append(out, f.name)
		}
	}
	return out
}
