package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// hapiPublicTemplate is the format of HAPI's public test server
// (CommonConfig.java).
const hapiPublicTemplate = "Path[${servletPath}] Source[${requestHeader.x-forwarded-for}] Operation[${operationType} ${operationName} ${idOrResourceName}] UA[${requestHeader.user-agent}] Params[${requestParameters}] ResponseEncoding[${responseEncodingNoDefault}]"

// hapiCases maps each fixture in testdata/formats/hapi-fhir to its template.
var hapiCases = map[string]string{
	"default_template": "",
	"public_server":    hapiPublicTemplate,
}

func TestParseHAPIGolden(t *testing.T) {
	files := fixtures(t, "hapi-fhir")
	if len(files) != len(hapiCases) {
		t.Errorf("%d fixtures for %d cases", len(files), len(hapiCases))
	}
	for _, path := range files {
		name := caseName(path)
		t.Run(name, func(t *testing.T) {
			tmpl, ok := hapiCases[name]
			if !ok {
				t.Fatalf("no template for fixture %s", name)
			}
			p := newTestGateway(t, rules.Source{Format: "hapi-fhir", Template: tmpl})
			got := parseFile(t, p, "hapi-fhir", path)
			checkGolden(t, got, strings.TrimSuffix(path, ".log")+".golden.json")
		})
	}
}

func TestParseHAPIMalformed(t *testing.T) {
	const prefix = "2024-01-02 10:11:12.345 [qtp1811075214-23] INFO  fhirtest.access - "
	runGWMalformed(t, rules.Source{Format: "hapi-fhir", Template: hapiPublicTemplate}, []gwMalformed{
		{"other logger", "2024-01-02 10:11:19.000 [main] INFO  o.s.b.SpringApplication - Started Application in 21.3 seconds", ReasonBadFormat, ""},
		{"truncated", prefix + "Path[/baseR4] Source[198.51.100.23] Operation[read  Patient/1] UA[x]", ReasonBadFormat, ""},
		{"extra text", prefix + "Path[/baseR4] Source[] Operation[read  Patient/1] UA[x] Params[] ResponseEncoding[JSON] trailing", ReasonBadFormat, ""},
		{"no prefix", "Path[/baseR4] Source[] Operation[read  Patient/1] UA[x] Params[] ResponseEncoding[JSON]", ReasonNoTime, "time"},
		{"bad time", strings.Replace(prefix, "01-02", "02-30", 1) + "Path[/baseR4] Source[] Operation[read  Patient/1] UA[x] Params[] ResponseEncoding[JSON]", ReasonBadTime, "time"},
		{"empty operation", prefix + "Path[/baseR4] Source[] Operation[  Patient/1] UA[x] Params[] ResponseEncoding[JSON]", ReasonBadField, "operationType"},
	})
	runGWMalformed(t, rules.Source{Format: "hapi-fhir"}, []gwMalformed{
		{"default no separator", "2024-01-02 10:11:12.345 [qtp-1] INFO  fhirtest.access", ReasonBadFormat, ""},
		{"default missing id part", prefix + "read", ReasonBadFormat, ""},
		{"default no prefix", "read - Patient/1", ReasonNoTime, "time"},
	})
}

func TestNewParserHAPI(t *testing.T) {
	tests := []struct{ name, tmpl, wantErr string }{
		{"default", "", ""},
		{"public server", hapiPublicTemplate, ""},
		{"unterminated", "${operationType} - ${idOrResourceName", "unterminated"},
		{"adjacent variables", "${operationType}${idOrResourceName}", "follows another variable"},
		{"empty variable", "${operationType} ${}", "empty ${}"},
		{"no operation type", "${idOrResourceName}", "no ${operationType}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewParser(rules.Source{Name: "hapi", Format: "hapi-fhir", Template: tt.tmpl})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if (tt.wantErr == "") != (err == nil) || !strings.Contains(got, tt.wantErr) || (err != nil && p != nil) {
				t.Errorf("NewParser error = %q, want it to contain %q", got, tt.wantErr)
			}
		})
	}
}

func FuzzParseHAPI(f *testing.F) {
	fuzzGateway(f, rules.Source{Format: "hapi-fhir", Template: hapiPublicTemplate})
}

func FuzzParseHAPIDefault(f *testing.F) {
	fuzzGateway(f, rules.Source{Format: "hapi-fhir"})
}

func TestParseHAPIClientHeader(t *testing.T) {
	tmpl := "Path[${servletPath}] Client[${requestHeader.x-client-id}] Operation[${operationType} ${operationName} ${idOrResourceName}]"
	p, err := NewParser(rules.Source{Name: "hapi", Format: "hapi-fhir", Template: tmpl,
		Fields: rules.JSONFields{Client: "X-Client-Id"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ line, client string }{
		{"2024-01-02 10:11:12.345 [qtp-12] INFO  fhir.access - Path[/fhir] Client[mychart-app] Operation[read  Observation/12]", "mychart-app"},
		{"2024-01-02 10:11:12.345 [qtp-12] INFO  fhir.access - Path[/fhir] Client[] Operation[read  Observation/12]", ""},
	}
	for _, tt := range tests {
		evs, err := p.Parse([]byte(tt.line), Position{Source: "hapi", Line: 1}, nil)
		if err != nil || len(evs) != 1 {
			t.Fatalf("Parse(%q) = %v, %v", tt.line, evs, err)
		}
		if evs[0].Client != tt.client || evs[0].Path != "/Observation/12" || evs[0].Method != "GET" {
			t.Errorf("event = client %q %s %s, want client %q GET /Observation/12", evs[0].Client, evs[0].Method, evs[0].Path, tt.client)
		}
	}
}

// TestParseHAPIOperationQuery checks that a query logged with the
// operation's name stays out of the path, as it does for the id.
func TestParseHAPIOperationQuery(t *testing.T) {
	const prefix = "2024-01-02 10:11:14.500 [qtp1811075214-25] INFO  fhirtest.access - Path[/baseR4] Source[] Operation["
	const suffix = "] UA[bedside-tablet/1.4] Params[?_count=100] ResponseEncoding[]"
	tests := []struct{ op, path string }{
		{"extended-operation-instance $everything Patient/123", "/Patient/123/$everything"},
		{"extended-operation-instance $everything?_count=1 Patient/123", "/Patient/123/$everything"},
		{"extended-operation-instance ?x Patient/123", "/Patient/123/$"}, // an operation of no logged name: no read of Patient/123
		{"extended-operation-server $export? ", "/$export"},
	}
	p := newTestGateway(t, rules.Source{Format: "hapi-fhir", Template: hapiPublicTemplate})
	for _, tt := range tests {
		line := prefix + tt.op + suffix
		evs, err := p.Parse([]byte(line), Position{Source: "hapi", Line: 1}, nil)
		if err != nil || len(evs) != 1 {
			t.Fatalf("Parse(%q) = %v, %v", line, evs, err)
		}
		if evs[0].Path != tt.path || evs[0].Query != "_count=100" {
			t.Errorf("Parse(%q): path %q query %q, want %q and _count=100", line, evs[0].Path, evs[0].Query, tt.path)
		}
	}
}

// TestParseHAPILayouts: the default template behind the logging layouts
// HAPI servers write: logback's "%logger - %msg", HAPI's documented
// "%logger{36} [%file:%line] %msg", and Spring Boot's default
// "--- [thread] logger : msg", with and without the application name.
func TestParseHAPILayouts(t *testing.T) {
	p := newTestGateway(t, rules.Source{Format: "hapi-fhir"})
	for _, line := range []string{
		"2024-01-02 10:11:12.345 [qtp-1] INFO  fhirtest.access - read - Patient/124",
		"2024-01-02 10:11:12.345 [qtp-1] INFO  fhirtest.access [LoggingInterceptor.java:178] read - Patient/124",
		"2024-01-02T10:11:12.345Z  INFO 1 --- [nio-8080-exec-1] fhirtest.access                          : read - Patient/124",
		"2024-01-02T10:11:12.345+00:00  INFO 1 --- [hapi-fhir] [nio-8080-exec-1] c.u.f.j.s.LoggingInterceptor : read - Patient/124",
		"2024-01-02 10:11:12,345 INFO  [fhirtest.access] (qtp-1) read - Patient/124",
	} {
		evs, err := p.Parse([]byte(line), Position{Source: "hapi", Line: 1}, nil)
		if err != nil || len(evs) != 1 {
			t.Errorf("%s: %v, %v", line, evs, err)
			continue
		}
		e := evs[0]
		if e.Type != "read" || e.Path != "/Patient/124" || e.Method != "GET" || !e.Time.Equal(time.Date(2024, 1, 2, 10, 11, 12, 345e6, time.UTC)) {
			t.Errorf("%s: %s %s %s at %v, want read GET /Patient/124 at 10:11:12.345", line, e.Type, e.Method, e.Path, e.Time)
		}
	}
	// logback's " - " first: a layout without a level, a prefix of many
	// brackets (MDC), and a template whose literal is a space, which
	// would match from the thread's "] " with the level as its type.
	for _, c := range []struct{ tmpl, line string }{
		{"", "2024-01-02 10:11:12.345 [main] access - read - Patient/124"},
		{"", "2024-01-02 10:11:12.345 [qtp-1] [a] [b] [c] [d] [e] [f] [g] [h] [i] INFO  fhirtest.access - read - Patient/124"},
		{"${operationType} ${idOrResourceName}", "2024-01-02 10:11:12.345 [qtp-1] INFO  fhirtest.access - read Patient/124"},
	} {
		q := newTestGateway(t, rules.Source{Format: "hapi-fhir", Template: c.tmpl})
		evs, err := q.Parse([]byte(c.line), Position{Source: "hapi", Line: 1}, nil)
		if err != nil || len(evs) != 1 || evs[0].Type != "read" || evs[0].Path != "/Patient/124" {
			t.Errorf("%q behind %s: %+v, %v; want read /Patient/124", c.tmpl, c.line, evs, err)
		}
	}
	// Another logger's line behind the same layouts still matches nothing.
	for _, line := range []string{
		"2024-01-02 10:11:19.000 [main] INFO  o.s.b.SpringApplication - Started Application in 21.3 seconds",
		"2024-01-02T10:11:19.000Z  INFO 1 --- [main] o.s.b.SpringApplication : Started Application in 21.3 seconds",
	} {
		if evs, err := p.Parse([]byte(line), Position{Source: "hapi", Line: 1}, nil); err == nil {
			t.Errorf("%s: %+v, want no event", line, evs)
		}
	}
}

// TestParseHAPIVerbAndOperation: with ${requestVerb} logged, a search
// sent by POST is a search ([type]/_search), not a create of [type]; an
// extended operation whose name is not logged maps to no scope, not to a
// read of the instance or a create on the type.
func TestParseHAPIVerbAndOperation(t *testing.T) {
	p := newTestGateway(t, rules.Source{Format: "hapi-fhir", Template: "${requestVerb} ${operationType} ${idOrResourceName} client=${requestHeader.x-client-id}"})
	for _, c := range []struct {
		msg, path string
		in        rules.Interaction
		mapped    bool
	}{
		{"POST search-type Observation client=a", "/Observation/_search", rules.Search, true},
		{"GET search-type Observation client=a", "/Observation", rules.Search, true},
		{"POST search-system  client=a", "/_search", rules.Search, true},
		{"GET extended-operation-instance Patient/123 client=a", "/Patient/123/$", 0, false},
		{"POST extended-operation-type Patient client=a", "/Patient/$", 0, false},
		{"GET read Patient/123 client=a", "/Patient/123", rules.Read, true},
	} {
		line := "2024-03-14 09:16:27.801 [qtp1-12] INFO  fhirtest.access - " + c.msg
		evs, err := p.Parse([]byte(line), Position{Source: "hapi", Line: 1}, nil)
		if err != nil || len(evs) != 1 {
			t.Errorf("%s: %+v, %v", c.msg, evs, err)
			continue
		}
		e := evs[0]
		_, in, ok := rules.FHIRInteraction(e.Method, e.Path, "")
		if e.Path != c.path || ok != c.mapped || (ok && in != c.in) {
			t.Errorf("%s: %s %s maps to %v %v, want %s mapped %v %v", c.msg, e.Method, e.Path, in, ok, c.path, c.mapped, c.in)
		}
	}
}
