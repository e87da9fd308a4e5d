package main

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/api"
	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// openAPIPath is the document that describes the HTTP API.
const openAPIPath = "dist/openapi.yaml"

// openAPIDoc is the part of an OpenAPI 3.0 document the tests read.
type openAPIDoc struct {
	Paths      map[string]map[string]openAPIOperation `yaml:"paths"`
	Components struct {
		Responses map[string]openAPIResponse `yaml:"responses"`
		Schemas   map[string]map[string]any  `yaml:"schemas"`
	} `yaml:"components"`
}

type openAPIOperation struct {
	Parameters []struct {
		Name string `yaml:"name"`
		In   string `yaml:"in"`
	} `yaml:"parameters"`
	Responses map[string]openAPIResponse `yaml:"responses"`
}

type openAPIResponse struct {
	Ref     string `yaml:"$ref"`
	Content map[string]struct {
		Schema map[string]any `yaml:"schema"`
	} `yaml:"content"`
}

func loadOpenAPI(t *testing.T) *openAPIDoc {
	t.Helper()
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPIDoc
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", openAPIPath, err)
	}
	if len(doc.Paths) == 0 || len(doc.Components.Schemas) == 0 {
		t.Fatalf("%s: no paths or no schemas", openAPIPath)
	}
	return &doc
}

// response resolves the documented response of an operation for a status.
func (d *openAPIDoc) response(op openAPIOperation, status int) (openAPIResponse, bool) {
	r, ok := op.Responses[strconv.Itoa(status)]
	if !ok {
		return r, false
	}
	if name, ok := strings.CutPrefix(r.Ref, "#/components/responses/"); ok {
		r, ok = d.Components.Responses[name]
		return r, ok
	}
	return r, true
}

// match finds the documented path template that target's path fits.
func (d *openAPIDoc) match(path string) (string, bool) {
	parts := strings.Split(path, "/")
	for tmpl := range d.Paths {
		tp := strings.Split(tmpl, "/")
		if len(tp) != len(parts) {
			continue
		}
		ok := true
		for i := range tp {
			if !strings.HasPrefix(tp[i], "{") && tp[i] != parts[i] {
				ok = false
				break
			}
		}
		if ok {
			return tmpl, true
		}
	}
	return "", false
}

// schemaKeywords are the keywords the validator checks or that only
// describe; a document using another one would claim what no test checks.
var schemaKeywords = []string{"$ref", "type", "format", "required", "properties", "additionalProperties",
	"items", "enum", "minimum", "description"}

// validate checks the decoded JSON value v against schema s and returns
// every problem, each prefixed with its place in the value.
func (d *openAPIDoc) validate(at string, v any, s map[string]any) []string {
	for k := range s {
		if !slices.Contains(schemaKeywords, k) {
			return []string{fmt.Sprintf("%s: schema keyword %q is not checked by this validator", at, k)}
		}
	}
	if ref, ok := s["$ref"].(string); ok {
		name, ok := strings.CutPrefix(ref, "#/components/schemas/")
		target, found := d.Components.Schemas[name]
		if !ok || !found {
			return []string{fmt.Sprintf("%s: unresolved $ref %q", at, ref)}
		}
		return d.validate(at, v, target)
	}
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, at+": "+fmt.Sprintf(format, a...)) }
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		bad("%v is not one of %v", v, enum)
	}
	switch typ, _ := s["type"].(string); typ {
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			bad("want an object, got %T", v)
			break
		}
		props, _ := s["properties"].(map[string]any)
		req, _ := s["required"].([]any)
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				bad("required property %q missing", r)
			}
		}
		if ap, ok := s["additionalProperties"].(bool); !ok || ap {
			bad("schema must set additionalProperties: false")
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			ps, ok := props[k].(map[string]any)
			if !ok {
				bad("property %q is not in the document", k)
				continue
			}
			errs = append(errs, d.validate(at+"."+k, obj[k], ps)...)
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			bad("want an array, got %T", v)
			break
		}
		items, ok := s["items"].(map[string]any)
		if !ok {
			bad("array schema without items")
			break
		}
		for i, x := range arr {
			errs = append(errs, d.validate(at+"["+strconv.Itoa(i)+"]", x, items)...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			bad("want a string, got %T", v)
			break
		}
		switch f, _ := s["format"].(string); f {
		case "":
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				bad("not a date-time: %v", err)
			}
		default:
			bad("format %q is not checked by this validator", f)
		}
	case "integer", "number":
		n, ok := v.(json.Number)
		if !ok {
			bad("want a number, got %T", v)
			break
		}
		f, err := n.Float64()
		if err != nil {
			bad("%v", err)
			break
		}
		if typ == "integer" && (strings.ContainsAny(n.String(), ".eE") || f != math.Trunc(f)) {
			bad("want an integer, got %s", n)
		}
		if m, ok := s["minimum"].(int); ok && f < float64(m) {
			bad("%s is below the minimum %d", n, m)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("want a boolean, got %T", v)
		}
	default:
		bad("schema without a known type: %v", s)
	}
	return errs
}

// openAPIViews are the Go types behind the document's object schemas.
var openAPIViews = map[string]reflect.Type{
	"Client":         reflect.TypeFor[report.ClientView](),
	"ScopeUsage":     reflect.TypeFor[report.ScopeView](),
	"FHIRUse":        reflect.TypeFor[report.FHIRView](),
	"Source":         reflect.TypeFor[report.SourceView](),
	"UnusedReport":   reflect.TypeFor[detect.UnusedReport](),
	"UnusedScope":    reflect.TypeFor[detect.UnusedScope](),
	"PendingClient":  reflect.TypeFor[detect.PendingClient](),
	"ScopeReport":    reflect.TypeFor[report.ScopeReport](),
	"ScopeHolder":    reflect.TypeFor[report.ScopeHolder](),
	"Finding":        reflect.TypeFor[report.FindingView](),
	"Evidence":       reflect.TypeFor[store.Evidence](),
	"LineRef":        reflect.TypeFor[store.LineRef](),
	"Silence":        reflect.TypeFor[report.SilenceView](),
	"SilenceRequest": reflect.TypeFor[api.SilenceRequest](),
	"DeadLetter":     reflect.TypeFor[alert.DeadLetterView](),
}

// TestOpenAPISchemasMatchViews checks each object schema of the document
// against the Go type the API encodes: the same property names, required
// exactly when the field is never left out, and a type that fits. A field
// added to a view, renamed or made optional without the document fails
// here even when no response happens to carry it.
func TestOpenAPISchemasMatchViews(t *testing.T) {
	doc := loadOpenAPI(t)
	for name, s := range doc.Components.Schemas {
		if s["type"] == "object" && openAPIViews[name] == nil {
			t.Errorf("schema %s: no Go type is known for it", name)
		}
	}
	for name, s := range doc.Components.Schemas {
		for _, e := range checkKeywords("#/components/schemas/"+name, s) {
			t.Error(e)
		}
	}
	if got, want := doc.Components.Schemas["FindingKind"]["enum"], rules.FindingKinds(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("FindingKind enum = %v, want %v", got, want)
	}
	for name, typ := range openAPIViews {
		t.Run(name, func(t *testing.T) {
			s := doc.Components.Schemas[name]
			if s == nil {
				t.Fatalf("%s (%s) is not in the document", name, typ)
			}
			props, _ := s["properties"].(map[string]any)
			var required []string
			req, _ := s["required"].([]any)
			for _, r := range req {
				required = append(required, r.(string))
			}
			var fields, always []string
			for f := range typ.Fields() {
				tag := f.Tag.Get("json")
				key, opts, _ := strings.Cut(tag, ",")
				if !f.IsExported() || key == "-" {
					continue
				}
				if key == "" {
					key = f.Name
				}
				fields = append(fields, key)
				if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
					always = append(always, key)
				}
				ps, ok := props[key].(map[string]any)
				if !ok {
					t.Errorf("field %s (json %q) is not in the document", f.Name, key)
					continue
				}
				if got, want := schemaKind(doc, ps), goKind(f.Type); got != want {
					t.Errorf("property %s: documented as %s, the field is %s (%s)", key, got, want, f.Type)
				}
			}
			for p := range props {
				if !slices.Contains(fields, p) {
					t.Errorf("property %s is documented but %s has no such field", p, typ)
				}
			}
			slices.Sort(always)
			slices.Sort(required)
			if name == "SilenceRequest" {
				// A request's required fields are those the server
				// refuses to go without, not those it always encodes.
				always = []string{"reason"}
			}
			if !slices.Equal(required, always) {
				t.Errorf("required = %v, want %v (the fields never left out)", required, always)
			}
		})
	}
}

// checkKeywords walks schema s and its properties and items, and reports
// every keyword the validator does not know.
func checkKeywords(at string, s map[string]any) []string {
	var errs []string
	for k := range s {
		if !slices.Contains(schemaKeywords, k) {
			errs = append(errs, fmt.Sprintf("%s: schema keyword %q is not checked by the validator", at, k))
		}
	}
	if props, ok := s["properties"].(map[string]any); ok {
		for name, p := range props {
			ps, ok := p.(map[string]any)
			if !ok {
				errs = append(errs, fmt.Sprintf("%s.%s: not a schema", at, name))
				continue
			}
			errs = append(errs, checkKeywords(at+"."+name, ps)...)
		}
	}
	if items, ok := s["items"].(map[string]any); ok {
		errs = append(errs, checkKeywords(at+"[]", items)...)
	}
	return errs
}

// schemaKind is a schema's type as goKind names it.
func schemaKind(doc *openAPIDoc, s map[string]any) string {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		return schemaKind(doc, doc.Components.Schemas[name])
	}
	typ, _ := s["type"].(string)
	switch typ {
	case "string":
		if s["format"] == "date-time" {
			return "date-time"
		}
	case "array":
		items, _ := s["items"].(map[string]any)
		return "array of " + schemaKind(doc, items)
	}
	return typ
}

// goKind is the JSON type encoding/json gives a Go type.
func goKind(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Time]():
		return "date-time"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "number"
	case t.Kind() == reflect.Slice:
		return "array of " + goKind(t.Elem())
	case t.Kind() == reflect.Struct:
		return "object"
	}
	return t.String()
}

// TestOpenAPIPathsMatchMux checks that the document lists exactly the
// routes the API registers, with their methods.
func TestOpenAPIPathsMatchMux(t *testing.T) {
	doc := loadOpenAPI(t)
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	served := muxPatterns(t)
	slices.Sort(documented)
	slices.Sort(served)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("%s is served but not in %s", r, openAPIPath)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("%s is in %s but not served", r, openAPIPath)
		}
	}
}

// muxPatterns returns the routes the api package's code registers, read
// from its source: every Handle and HandleFunc call with a literal pattern, as
// "METHOD /path" with a trailing wildcard {name...} written {name}.
func muxPatterns(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../../api/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("the api package's source: %v", err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: a route whose pattern is not a literal: the document cannot be checked against it", fset.Position(call.Pos()))
				return true
			}
			pattern, _ := strconv.Unquote(lit.Value)
			method, path, ok := strings.Cut(pattern, " ")
			if !ok {
				t.Errorf("%s: route %q has no method", fset.Position(call.Pos()), pattern)
				return true
			}
			out = append(out, method+" "+strings.ReplaceAll(path, "...}", "}"))
			return true
		})
	}
	if len(out) == 0 {
		t.Fatal("no routes found in the package's source")
	}
	return out
}

// openAPIDaemon runs the real daemon on the demo's configuration and
// fills its store through the real paths: 120 days of demo traffic ending
// now (clients with scopes, both sources, broad-request findings), a
// malformed and an ignored line, a dead letter as the sender buries one,
// a silence added and one added and expired through the API. It returns
// the daemon's address.
func openAPIDaemon(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	addr, p, stop := startDaemon(t, dir)
	t.Cleanup(stop)
	openAPISock = filepath.Join(dir, "ctl.sock")
	end := time.Now().UTC().Truncate(time.Second)
	w, err := traffic.OpenWriters(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const n = 3000
	if err := w.Write(traffic.New(7, traffic.DemoClients(), end.Add(-120*24*time.Hour), end, n), 0, n); err != nil {
		t.Fatal(err)
	}
	w.Keycloak.WriteString(traffic.DemoBanner)
	w.API.WriteString(traffic.DemoTruncated)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	for p.Committed() < n+2 {
		<-p.Progress()
	}
	ms, err := p.Store().Queue(store.Message{Channel: "#gone", Group: store.GroupKey{Kind: "broad_request", Client: "billing-export"},
		Text: "HIGH broad request", Queued: end})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Store().Bury(ms[0], "channel_not_found", end.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	return addr
}

// openAPIRequest is one request of TestOpenAPIResponses.
type openAPIRequest struct {
	method, target, body string
	status               int
	header               []string
	tcp                  bool // over TCP without credentials, not on the control socket
}

// openAPISock is the control socket of the daemon openAPIDaemon started.
var openAPISock string

// TestOpenAPIResponses sends each endpoint real requests and checks every
// answer against the document: the status is documented for the
// operation, the media type too, and a JSON body fits the schema. Every
// documented operation must be answered with a success at least once.
func TestOpenAPIResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	addr := openAPIDaemon(t)
	base := "http://" + addr
	findings := fetchJSON[[]report.FindingView](t, base+"/api/v1/findings")
	if len(findings) == 0 {
		t.Fatal("the demo traffic raised no finding")
	}
	silence := `{"client": "billing-export", "kind": "broad_request", "subject": "admin", "for": "30d", "reason": "retired in Q1"}`
	requests := []openAPIRequest{
		{method: "GET", target: "/healthz", status: 200},
		{method: "GET", target: "/readyz", status: 200},
		{method: "GET", target: "/metrics", status: 200},
		{method: "POST", target: "/api/v1/silences", body: silence, status: 201},
		{method: "POST", target: "/api/v1/silences", body: strings.Replace(silence, "admin", "view_lab_results", 1), status: 201},
		{method: "POST", target: "/api/v1/silences", body: `{"reason": ""}`, status: 400},
		{method: "POST", target: "/api/v1/silences", body: silence, status: 415, header: []string{"Content-Type", "text/plain"}},
		{method: "POST", target: "/api/v1/silences/s2/expire", status: 200},
		{method: "POST", target: "/api/v1/silences/s9/expire", status: 404},
		{method: "GET", target: "/api/v1/clients", status: 200},
		{method: "GET", target: "/api/v1/clients/lab-portal", status: 200},
		{method: "GET", target: "/api/v1/clients/nobody", status: 404},
		{method: "GET", target: "/api/v1/sources", status: 200},
		{method: "GET", target: "/api/v1/reports/unused", status: 200},
		{method: "GET", target: "/api/v1/reports/unused?client=lab-portal", status: 200},
		{method: "GET", target: "/api/v1/reports/unused?format=csv", status: 200},
		{method: "GET", target: "/api/v1/reports/unused?format=markdown", status: 200},
		{method: "GET", target: "/api/v1/reports/unused?format=xml", status: 400},
		{method: "GET", target: "/api/v1/reports/scope/view_lab_results", status: 200},
		{method: "GET", target: "/api/v1/reports/scope/" + strings.ReplaceAll("patient/*.read", "/", "%2F"), status: 200},
		{method: "GET", target: "/api/v1/reports/scope/no_such_scope", status: 404},
		{method: "GET", target: "/api/v1/findings", status: 200},
		{method: "GET", target: "/api/v1/findings?state=silenced", status: 200},
		{method: "GET", target: "/api/v1/findings?state=opne", status: 400},
		{method: "GET", target: "/api/v1/findings/" + findings[0].ID, status: 200},
		{method: "GET", target: "/api/v1/findings/000000000000", status: 404},
		{method: "GET", target: "/api/v1/dead-letters", status: 200},
		{method: "GET", target: "/api/v1/silences", status: 200},
		{method: "GET", target: "/api/v1/backup", status: 200},
		{method: "POST", target: "/api/v1/silences", body: strings.Replace(silence, "}", `, "author": "someone-else"}`, 1), status: 403},
	}
	// Over TCP without basic auth, what reads the store or changes
	// detection state is refused; the probes stay open.
	for _, r := range requests {
		if strings.HasPrefix(r.target, "/api/v1/") && r.status < 300 {
			requests = append(requests, openAPIRequest{method: r.method, target: r.target, body: r.body, status: 403, tcp: true})
		}
	}
	requests = append(requests,
		openAPIRequest{method: "GET", target: "/healthz", status: 200, tcp: true},
		openAPIRequest{method: "GET", target: "/metrics", status: 200, tcp: true})
	answered := map[string]bool{}
	for _, r := range requests {
		name := r.method + " " + r.target
		if r.tcp {
			name += " over TCP"
		}
		t.Run(name, func(t *testing.T) {
			status, ct, body := openAPIDo(t, base, r)
			if status != r.status {
				t.Fatalf("status %d, want %d: %.300s", status, r.status, body)
			}
			path, _, _ := strings.Cut(r.target, "?")
			tmpl, ok := doc.match(path)
			if !ok {
				t.Fatalf("%s is not in the document", path)
			}
			op, ok := doc.Paths[tmpl][strings.ToLower(r.method)]
			if !ok {
				t.Fatalf("%s %s is not in the document", r.method, tmpl)
			}
			resp, ok := doc.response(op, status)
			if !ok {
				t.Fatalf("status %d of %s %s is not in the document", status, r.method, tmpl)
			}
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil {
				t.Fatalf("Content-Type %q: %v", ct, err)
			}
			content, ok := resp.Content[mt]
			if !ok {
				t.Fatalf("media type %s of status %d is not in the document", mt, status)
			}
			if status < 300 {
				answered[r.method+" "+tmpl] = true
			}
			if mt != "application/json" {
				return
			}
			dec := json.NewDecoder(strings.NewReader(body))
			dec.UseNumber()
			var v any
			if err := dec.Decode(&v); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			for _, e := range doc.validate("body", v, content.Schema) {
				t.Error(e)
			}
			if arr, ok := v.([]any); ok && len(arr) == 0 {
				t.Errorf("the store holds nothing for %s: its items went unchecked", r.target)
			}
		})
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			if !answered[strings.ToUpper(method)+" "+path] {
				t.Errorf("%s %s was never answered with a success", strings.ToUpper(method), path)
			}
		}
	}
}

func openAPIDo(t *testing.T, base string, r openAPIRequest) (status int, contentType, body string) {
	t.Helper()
	req, err := http.NewRequest(r.method, base+r.target, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(r.header); i += 2 {
		req.Header.Set(r.header[i], r.header[i+1])
	}
	client := socketClient(openAPISock)
	if r.tcp {
		client = &http.Client{Transport: &http.Transport{Proxy: nil}}
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func fetchJSON[T any](t *testing.T, url string) T {
	t.Helper()
	var v T
	resp, err := socketClient(openAPISock).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return v
}

// TestSourcesAPI checks the shape of GET /api/v1/sources on the demo
// traffic: snake_case counts that add up, and that programs decoding the
// former shape (store.Source) still read the names and line counts.
func TestSourcesAPI(t *testing.T) {
	base := "http://" + openAPIDaemon(t)
	views := fetchJSON[[]report.SourceView](t, base+"/api/v1/sources")
	if len(views) != 2 || views[0].Name != "api-gateway" || views[1].Name != "keycloak" {
		t.Fatalf("sources = %+v", views)
	}
	var lines, events uint64
	for _, v := range views {
		if v.Lines != v.Malformed+v.Ignored+v.Events {
			t.Errorf("%s: %d lines != %d malformed + %d ignored + %d events", v.Name, v.Lines, v.Malformed, v.Ignored, v.Events)
		}
		if v.FirstEvent.IsZero() || v.LastEvent.Before(v.FirstEvent) {
			t.Errorf("%s: events from %v to %v", v.Name, v.FirstEvent, v.LastEvent)
		}
		lines += v.Lines
		events += v.Events
	}
	if views[0].Malformed != 1 || views[1].Ignored != 1 || lines != 3002 || events != 3000 {
		t.Errorf("sources = %+v, want 3000 events, the truncated gateway line malformed and the banner ignored", views)
	}
	old := fetchJSON[[]store.Source](t, base+"/api/v1/sources")
	for i, s := range old {
		if s.Name != views[i].Name || s.Lines != views[i].Lines || s.Malformed != views[i].Malformed {
			t.Errorf("decoded as store.Source: %+v, want the counts of %+v", s, views[i])
		}
	}
}

// TestOpenAPIFindingKinds: the document's FindingKind enum is the table of
// finding kinds.
func TestOpenAPIFindingKinds(t *testing.T) {
	doc := loadOpenAPI(t)
	var got []string
	enum, _ := doc.Components.Schemas["FindingKind"]["enum"].([]any)
	for _, v := range enum {
		s, _ := v.(string)
		got = append(got, s)
	}
	if want := rules.FindingKinds(); !slices.Equal(got, want) {
		t.Errorf("FindingKind enum %v, want the table's %v", got, want)
	}
}
