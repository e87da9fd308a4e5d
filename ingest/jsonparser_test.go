package ingest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/rules"
)

// jsonCases maps each fixture in testdata/formats/json to the source
// configuration it is read with.
var jsonCases = map[string]rules.Source{
	// Kong file-log: consumer username as the client, epoch ms.
	"kong": {Fields: rules.JSONFields{
		Time: "started_at", Client: "consumer.username", IP: "client_ip",
		Method: "request.method", Path: "request.uri", Status: "response.status",
	}, TimeFormat: "epoch_ms"},
	// nginx log_format escape=json: every value a string, $time_local.
	"nginx_json": {Fields: rules.JSONFields{
		Time: "time_local", Client: "client_id", IP: "http_x_forwarded_for",
		Method: "request_method", Path: "request_uri", Status: "status",
	}, TimeFormat: "nginx"},
	// Envoy json_format with jwt_authn payload_in_metadata nested under jwt.
	"envoy_jwt": {Fields: rules.JSONFields{
		Time: "start_time", Client: "jwt.client_id", Scopes: "jwt.scope", Subject: "jwt.sub",
		IP: "x_forwarded_for", Method: "method", Path: "path", Status: "response_code",
	}},
	// API Gateway with authorizer claims, written with dotted key names
	// or nested, epoch ms as numbers and strings.
	"epoch_ms": {Fields: rules.JSONFields{
		Time: "requestTimeEpoch", Client: "authorizer.claims.client_id", Scopes: "authorizer.claims.scope",
		IP: "ip", Method: "httpMethod", Path: "resourcePath", Status: "status",
	}, TimeFormat: "epoch_ms"},
	// Auth0-like token log: scope as a string or an array, kinds mapped
	// from the event type code, geography from the log.
	"array_scopes": {Fields: rules.JSONFields{
		Time: "date", Client: "client_id", Scopes: "scope", Subject: "user_id", IP: "ip",
		Kind: "type", Reason: "description", Country: "location_info.country_code",
	}, Kind: "use", Kinds: map[string]string{"seccft": "grant", "seacft": "grant", "feccft": "deny", "f": "deny"}},
	// A service's own log with a Go layout and a zone-less time.
	"go_layout": {Fields: rules.JSONFields{
		Time: "ts", Client: "client", Scopes: "granted_scope", IP: "peer",
		Method: "verb", Path: "uri", Status: "code",
	}, TimeFormat: "2006-01-02 15:04:05.000", TimeZone: "UTC"},
}

func newTestJSON(t testing.TB, src rules.Source) Parser {
	t.Helper()
	src.Format = "json"
	if src.Name == "" {
		src.Name = "gateway"
	}
	p, err := NewParser(src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParseJSONGolden(t *testing.T) {
	files := fixtures(t, "json")
	if len(files) != len(jsonCases) {
		t.Errorf("%d fixtures for %d cases", len(files), len(jsonCases))
	}
	for _, path := range files {
		name := caseName(path)
		t.Run(name, func(t *testing.T) {
			src, ok := jsonCases[name]
			if !ok {
				t.Fatalf("no configuration for fixture %s", name)
			}
			got := parseFile(t, newTestJSON(t, src), "gateway", path)
			checkGolden(t, got, strings.TrimSuffix(path, ".log")+".golden.json")
		})
	}
}

func TestParseJSONMalformed(t *testing.T) {
	base := rules.Source{Fields: rules.JSONFields{
		Time: "ts", Client: "client", Scopes: "scope", IP: "ip", Status: "status",
		Method: "method", Path: "path", Subject: "sub", Kind: "kind", Reason: "why", Country: "geo.cc",
	}}
	epoch := base
	epoch.TimeFormat = "epoch_ms"
	tests := []struct {
		name       string
		src        rules.Source
		line       string
		wantReason string
		wantField  string
	}{
		{"invalid json", base, `{"ts":"2024-03-14T09:15:27Z","client":"a"`, ReasonBadJSON, ""},
		{"trailing garbage", base, `{"ts":"2024-03-14T09:15:27Z"} x`, ReasonBadJSON, ""},
		{"not an object", base, `["2024-03-14T09:15:27Z"]`, ReasonBadFormat, ""},
		{"no time", base, `{"client":"a"}`, ReasonNoTime, "time"},
		{"null time", base, `{"ts":null,"client":"a"}`, ReasonNoTime, "time"},
		{"bad time", base, `{"ts":"2024-02-30T09:15:27Z"}`, ReasonBadTime, "time"},
		{"number for rfc3339", base, `{"ts":1710407727}`, ReasonBadTime, "time"},
		{"bad epoch", epoch, `{"ts":"soon"}`, ReasonBadTime, "time"},
		{"epoch bool", epoch, `{"ts":true}`, ReasonBadTime, "time"},
		{"client object", base, `{"ts":"2024-03-14T09:15:27Z","client":{"id":"a"}}`, ReasonBadField, "client"},
		{"scopes number array", base, `{"ts":"2024-03-14T09:15:27Z","scope":["a",1]}`, ReasonBadField, "scopes"},
		{"scopes object", base, `{"ts":"2024-03-14T09:15:27Z","scope":{}}`, ReasonBadField, "scopes"},
		{"bad ip", base, `{"ts":"2024-03-14T09:15:27Z","ip":"10.0.0.300"}`, ReasonBadField, "ip"},
		{"ip number", base, `{"ts":"2024-03-14T09:15:27Z","ip":17}`, ReasonBadField, "ip"},
		{"bad status", base, `{"ts":"2024-03-14T09:15:27Z","status":"OK"}`, ReasonBadField, "status"},
		{"fractional status", base, `{"ts":"2024-03-14T09:15:27Z","status":200.5}`, ReasonBadField, "status"},
		{"subject array", base, `{"ts":"2024-03-14T09:15:27Z","sub":["x"]}`, ReasonBadField, "subject"},
		{"method object", base, `{"ts":"2024-03-14T09:15:27Z","method":{}}`, ReasonBadField, "method"},
		{"path array", base, `{"ts":"2024-03-14T09:15:27Z","path":[]}`, ReasonBadField, "path"},
		{"kind object", base, `{"ts":"2024-03-14T09:15:27Z","kind":{}}`, ReasonBadField, "kind"},
		{"reason array", base, `{"ts":"2024-03-14T09:15:27Z","why":[]}`, ReasonBadField, "reason"},
		{"country object", base, `{"ts":"2024-03-14T09:15:27Z","geo":{"cc":{}}}`, ReasonBadField, "country"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestJSON(t, tt.src)
			checkParseError(t, p, tt.line, Position{Source: "gw-prod", Line: 9, Offset: 1234}, nil, tt.wantReason, tt.wantField)
		})
	}
}

func TestParseJSONFields(t *testing.T) {
	src := rules.Source{Fields: rules.JSONFields{
		Time: "t", Client: "c", Scopes: "s", Requested: "r", IP: "ip", Path: "p", Kind: "k", Status: "st",
	}, TimeFormat: "epoch_s", Kind: "grant", Kinds: map[string]string{"no": "deny"}}
	tests := []struct {
		name, line string
		want       string
	}{
		{"defaults", `{"t":1}`, "grant|||[]|[]|invalid IP||0"},
		{"client missing is not an error", `{"t":1,"c":null,"p":"/a?b=1?c"}`, "grant|/a|b=1?c|[]|[]|invalid IP||0"},
		{"kinds and requested", `{"t":1,"k":"no","c":"x","s":"  a   b ","r":["c d","e"],"st":"503"}`, "deny|||[a b]|[c d e]|invalid IP|x|503"},
		{"dash client", `{"t":1,"c":"-"}`, "grant|||[]|[]|invalid IP||0"},
		{"unmapped kind", `{"t":1,"k":"maybe","st":0}`, "grant|||[]|[]|invalid IP||0"},
		{"xff placeholders", `{"t":1,"ip":"-, unknown"}`, "grant|||[]|[]|invalid IP||0"},
		{"xff array", `{"t":1,"ip":["-","[2001:db8::1]:443","192.0.2.1"]}`, "grant|||[]|[]|2001:db8::1||0"},
		{"escaped strings", `{"t":1,"c":"caf\u00e9\ud83d\ude00","s":"a\/b\tc"}`, "grant|||[a/b\tc]|[]|invalid IP|café😀|0"},
		{"number client", `{"t":1,"c":42}`, "grant|||[]|[]|invalid IP|42|0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTestJSON(t, src)
			evs, err := p.Parse([]byte(tt.line), Position{Line: 1}, nil)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Parse = %d events, %v", len(evs), err)
			}
			e := evs[0]
			got := strings.Join([]string{e.Kind.String(), e.Path, e.Query, fmtList(e.Granted), fmtList(e.Requested), e.IP.String(), e.Client, itoa(e.Status)}, "|")
			if got != tt.want {
				t.Errorf("event = %q, want %q", got, tt.want)
			}
		})
	}
}

func fmtList(l []string) string { return "[" + strings.Join(l, " ") + "]" }

func TestParseJSONBlankLine(t *testing.T) {
	p := newTestJSON(t, jsonCases["kong"])
	evs, err := p.Parse([]byte("  \r"), Position{Line: 1}, nil)
	if err != SkipBlank || len(evs) != 0 {
		t.Errorf("Parse(blank) = %d events, %v; want none, SkipBlank", len(evs), err)
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, path := range fixturesF(f, "json") {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			f.Add([]byte(line))
		}
	}
	f.Add([]byte(`{"t":"1.5e3","c":"\ud800","s":["a",null],"ip":"::ffff:1.2.3.4%x"}`))
	// One parser per configuration, reused across inputs as in production.
	names := make([]string, 0, len(jsonCases))
	for name := range jsonCases {
		names = append(names, name)
	}
	parsers := make([]Parser, 0, len(jsonCases)+1)
	for _, name := range names {
		parsers = append(parsers, newTestJSON(f, jsonCases[name]))
	}
	parsers = append(parsers, newTestJSON(f, rules.Source{Fields: rules.JSONFields{
		Time: "t", Client: "c", Scopes: "s", IP: "ip", Status: "st", Path: "p",
	}, TimeFormat: "epoch_ns"}))
	f.Fuzz(func(t *testing.T, line []byte) {
		for _, p := range parsers {
			evs, err := p.Parse(line, Position{Source: "fuzz", Line: 3}, nil)
			if !checkOutcome(t, line, evs, err) {
				continue
			}
			if len(evs) > 1 {
				t.Fatalf("Parse(%q) = %d events, want at most one", line, len(evs))
			}
			for _, e := range evs {
				if strings.Contains(e.Path, "?") {
					t.Fatalf("Parse(%q): query left in path %q", line, e.Path)
				}
				for _, s := range e.Granted {
					if s == "" || strings.Contains(s, " ") {
						t.Fatalf("Parse(%q): bad scope %q", line, s)
					}
				}
			}
		}
	})
}

func TestJSONCasesHaveFixtures(t *testing.T) {
	for name := range jsonCases {
		if _, err := os.Stat(filepath.Join("..", "testdata", "formats", "json", name+".log")); err != nil {
			t.Errorf("case %s: %v", name, err)
		}
	}
}
