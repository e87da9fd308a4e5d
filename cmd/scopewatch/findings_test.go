package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/api"
	"github.com/scopewatch/scopewatch/internal/probe"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

var findingsT0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// testFindings are the findings of the fixture store: two open, one that
// the configured silence c1 mutes, one resolved.
func testFindings() []store.Finding {
	t0 := findingsT0
	return []store.Finding{
		{FindingKey: store.FindingKey{Kind: "unused_scope", Client: "lab-portal", Subject: "read_all_data"},
			Severity: store.SeverityWarning, State: store.StateOpen, Summary: "lab-portal holds read_all_data but has not used it in 90d",
			First: t0, Last: t0.Add(72 * time.Hour), Count: 4, Opened: t0, Changed: t0},
		{FindingKey: store.FindingKey{Kind: "broad_request", Client: "mychart-app", Subject: "admin"},
			Severity: store.SeverityHigh, State: store.StateOpen, Summary: "mychart-app requested the broad scope admin",
			First: t0.Add(time.Hour), Last: t0.Add(2 * time.Hour), Count: 2, Opened: t0, Changed: t0},
		{FindingKey: store.FindingKey{Kind: "token_in_url", Subject: "fhir-gw"},
			Severity: store.SeverityHigh, State: store.StateOpen, Summary: "access tokens appear in request URLs of fhir-gw",
			First: t0, Last: t0, Count: 1, Opened: t0, Changed: t0},
		{FindingKey: store.FindingKey{Kind: "unfamiliar_geo", Client: "lab-portal", Subject: "KP"},
			Severity: store.SeverityHigh, State: store.StateResolved, Summary: "lab-portal was used from KP for the first time",
			First: t0, Last: t0, Count: 1, Opened: t0, Resolved: t0.Add(7 * 24 * time.Hour), Changed: t0.Add(7 * 24 * time.Hour)},
	}
}

// findingsFixture writes a store holding testFindings and a configuration
// with one silence, whose listen address nothing answers, so commands read
// and write the file. It returns the configuration's path.
func findingsFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	addr, err := probe.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfgPath, fmt.Sprintf(`store: %[1]s/scopewatch.db
listen: %[2]s
sources:
  - {name: keycloak, path: %[1]s/keycloak.log, format: keycloak}
detect:
  silences:
    - {kind: token_in_url, subject: fhir-gw, until: 2099-12-31, reason: gateway fix scheduled}
`, dir, addr))
	db, err := store.Open(filepath.Join(dir, "scopewatch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := store.NewBatch()
	st := store.NewState(db, 0)
	for _, f := range testFindings() {
		b.Findings[f.FindingKey] = f
		if f.Client != "" {
			st.Client(f.Client).Seen.Add(1, f.First)
		}
	}
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return cfgPath
}

// decodeFindings decodes `findings --format json` into "kind client subject
// state silence" lines.
func decodeFindings(t *testing.T, js string) []string {
	t.Helper()
	var views []report.FindingView
	if err := json.Unmarshal([]byte(js), &views); err != nil {
		t.Fatalf("%v in\n%s", err, js)
	}
	out := []string{}
	for _, v := range views {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s %s %s", v.Kind, v.Client, v.Subject, v.State, v.Silence)))
	}
	return out
}

func TestFindingsFromFile(t *testing.T) {
	cfg := findingsFixture(t)
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"default: open", nil, []string{
			"broad_request mychart-app admin open",
			"unused_scope lab-portal read_all_data open"}},
		{"all", []string{"--state", "all"}, []string{
			"broad_request mychart-app admin open",
			"token_in_url  fhir-gw silenced c1",
			"unfamiliar_geo lab-portal KP resolved",
			"unused_scope lab-portal read_all_data open"}},
		{"silenced by the configuration", []string{"--state", "silenced"}, []string{"token_in_url  fhir-gw silenced c1"}},
		{"resolved", []string{"--state", "resolved"}, []string{"unfamiliar_geo lab-portal KP resolved"}},
		{"kind", []string{"--state", "all", "--kind", "unused_scope"}, []string{"unused_scope lab-portal read_all_data open"}},
		{"client", []string{"--state", "all", "--client", "lab-portal"}, []string{
			"unfamiliar_geo lab-portal KP resolved",
			"unused_scope lab-portal read_all_data open"}},
		{"nothing matches", []string{"--client", "lab-portal", "--kind", "broad_request"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"findings", "--config", cfg, "--format", "json"}, tt.args...)
			code, out, errOut := runCmd(t, args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if got := decodeFindings(t, out); !slices.Equal(got, tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestFindingsTable(t *testing.T) {
	cfg := findingsFixture(t)
	code, out, errOut := runCmd(t, "findings", "--config", cfg, "--state", "all")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := `ID            KIND            SEVERITY  STATE     CLIENT       SUBJECT        COUNT  FIRST              LAST               SUMMARY
fda22a7b65ca  broad_request   high      open      mychart-app  admin          2      2026-03-01T11:00Z  2026-03-01T12:00Z  mychart-app requested the broad scope admin
549f72ab60b5  token_in_url    high      silenced  -            fhir-gw        1      2026-03-01T10:00Z  2026-03-01T10:00Z  access tokens appear in request URLs of fhir-gw
69ff0bfe5fa8  unfamiliar_geo  high      resolved  lab-portal   KP             1      2026-03-01T10:00Z  2026-03-01T10:00Z  lab-portal was used from KP for the first time
251137f8b85d  unused_scope    warning   open      lab-portal   read_all_data  4      2026-03-01T10:00Z  2026-03-04T10:00Z  lab-portal holds read_all_data but has not used it in 90d

4 findings (2 open, 1 silenced, 1 resolved)
`
	if out != want {
		t.Errorf("got:\n%s\nwant:\n%s", out, want)
	}
}

func TestFindingsAndSilenceBadFlags(t *testing.T) {
	cfg := findingsFixture(t)
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"unknown state", []string{"findings", "--config", cfg, "--state", "closed"}, `unknown state "closed"; use open, silenced, resolved, all`},
		{"unknown kind", []string{"findings", "--config", cfg, "--kind", "unused"}, `unknown finding kind "unused"; use broad_request, client_id_spray, impossible_travel, stale_source, token_in_url, unfamiliar_burst, unfamiliar_geo, unused_scope`},
		{"unknown format", []string{"findings", "--config", cfg, "--format", "csv"}, `unknown format "csv"; use table or json`},
		{"stray argument", []string{"findings", "--config", cfg, "open"}, `unexpected argument "open"`},
		{"no action", []string{"silence"}, "silence needs an action: add, list, expire"},
		{"unknown action", []string{"silence", "mute"}, `unknown silence action "mute"`},
		{"add without reason", []string{"silence", "add", "--config", cfg, "--client", "lab-portal", "--for", "30d"}, "--reason: required"},
		{"add without expiry", []string{"silence", "add", "--config", cfg, "--client", "lab-portal", "--reason", "r"}, "--for: required"},
		{"add with both expiries", []string{"silence", "add", "--config", cfg, "--client", "x", "--reason", "r", "--for", "1d", "--until", "2099-01-01"}, "--for: give for or until, not both"},
		{"add with a past date", []string{"silence", "add", "--config", cfg, "--client", "x", "--reason", "r", "--until", "2020-01-01"}, "--until: 2020-01-02T00:00:00Z is not in the future"},
		{"add with a bad duration", []string{"silence", "add", "--config", cfg, "--client", "x", "--reason", "r", "--for", "30 days"}, "--for: duration"},
		{"add with a bad pattern", []string{"silence", "add", "--config", cfg, "--client", "lab-[", "--reason", "r", "--for", "1d"}, `--client: bad pattern "lab-["`},
		{"add matching everything", []string{"silence", "add", "--config", cfg, "--client", "*", "--reason", "r", "--for", "1d"}, "--client: name at least one of client, kind and subject"},
		{"add with an unknown kind", []string{"silence", "add", "--config", cfg, "--kind", "geo", "--reason", "r", "--for", "1d"}, `--kind: unknown finding kind "geo"`},
		{"all problems at once", []string{"silence", "add", "--config", cfg, "--kind", "geo"}, "--kind: unknown finding kind \"geo\"; use broad_request, client_id_spray, impossible_travel, stale_source, token_in_url, unfamiliar_burst, unfamiliar_geo, unused_scope\n--reason: required"},
		{"list format", []string{"silence", "list", "--config", cfg, "--format", "csv"}, `unknown format "csv"`},
		{"expire without id", []string{"silence", "expire", "--config", cfg}, "needs the id of a silence"},
		{"expire two ids", []string{"silence", "expire", "--config", cfg, "s1", "s2"}, `unexpected argument "s2"`},
		{"expire a configured silence", []string{"silence", "expire", "c1", "--config", cfg},
			"silence c1 comes from the configuration (detect.silences[0] "},
		{"expire a configured silence: what to do", []string{"silence", "expire", "c1", "--config", cfg},
			"); remove it there or change its until to end it"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			if code != exitConfig {
				t.Errorf("exit %d, want %d; stdout %q", code, exitConfig, out)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q lacks %q", errOut, tt.want)
			}
		})
	}
}

// TestSilenceRoundTripFile adds, lists and expires a silence while no
// daemon runs: the findings it matches show as silenced at once, and as
// open again once it is expired.
func TestSilenceRoundTripFile(t *testing.T) {
	cfg := findingsFixture(t)
	run := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCmd(t, append(args, "--config", cfg)...)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	if got := run("silence", "add", "--client", "lab-*", "--kind", "unused_scope", "--for", "30d",
		"--reason", "quarterly review pending"); got != "s1\n" {
		t.Errorf("silence add printed %q, want the new id s1", got)
	}
	// From the file, the author is the user running the command.
	if code, _, errOut := runCmd(t, "silence", "add", "--config", cfg, "--kind", "unused_scope", "--for", "1d", "--reason", "r", "--author", "someone-else"); code != exitConfig ||
		!strings.Contains(errOut, `--author "someone-else" refused: the silence is recorded as added by "`+currentUser()+`"`) {
		t.Errorf("silence add --author someone-else: exit %d, %s; want a refusal naming %q", code, errOut, currentUser())
	}
	if got, want := decodeFindings(t, run("findings", "--format", "json")), []string{"broad_request mychart-app admin open"}; !slices.Equal(got, want) {
		t.Errorf("open findings after the silence: %q, want %q", got, want)
	}
	if got, want := decodeFindings(t, run("findings", "--state", "silenced", "--format", "json")), []string{
		"token_in_url  fhir-gw silenced c1",
		"unused_scope lab-portal read_all_data silenced s1",
	}; !slices.Equal(got, want) {
		t.Errorf("silenced findings: %q, want %q", got, want)
	}

	var views []report.SilenceView
	if err := json.Unmarshal([]byte(run("silence", "list", "--format", "json")), &views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 2 || views[0].ID != "c1" || views[0].Origin != report.OriginConfig ||
		views[1].ID != "s1" || views[1].Origin != report.OriginStore || !views[1].Active || views[1].Author != currentUser() ||
		views[1].Client != "lab-*" || views[1].Kind != "unused_scope" || views[1].Reason != "quarterly review pending" {
		t.Errorf("silence list: %+v", views)
	}
	if d := time.Until(views[1].Expires); d < 29*24*time.Hour || d > 30*24*time.Hour {
		t.Errorf("s1 expires %v, want in 30 days", views[1].Expires)
	}

	if got := run("silence", "expire", "s1"); !strings.HasPrefix(got, "s1 expired at ") {
		t.Errorf("silence expire printed %q", got)
	}
	if got := run("silence", "list"); !strings.Contains(got, "c1 ") || strings.Contains(got, "s1 ") {
		t.Errorf("silence list after expiry shows more than c1:\n%s", got)
	}
	if got := run("silence", "list", "--all"); !strings.Contains(got, "s1  lab-*") || !strings.Contains(got, " no ") {
		t.Errorf("silence list --all lacks the expired s1:\n%s", got)
	}
	if got, want := decodeFindings(t, run("findings", "--format", "json")), []string{
		"broad_request mychart-app admin open",
		"unused_scope lab-portal read_all_data open",
	}; !slices.Equal(got, want) {
		t.Errorf("open findings after expiry: %q, want %q", got, want)
	}

	code, _, errOut := runCmd(t, "silence", "expire", "s9", "--config", cfg)
	if code != exitError || !strings.Contains(errOut, `no silence "s9"`) {
		t.Errorf("expire of an unknown silence: exit %d, %q", code, errOut)
	}
}

// TestSilenceStoreLocked checks that a silence cannot be written while
// another process holds the store without answering the API, and that
// the message says who holds it.
func TestSilenceStoreLocked(t *testing.T) {
	cfg := findingsFixture(t)
	db, err := store.Open(filepath.Join(filepath.Dir(cfg), "scopewatch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	code, _, errOut := runCmd(t, "silence", "add", "--config", cfg, "--kind", "unused_scope", "--for", "1d", "--reason", "r")
	if code != exitError {
		t.Errorf("exit %d, want %d", code, exitError)
	}
	for _, want := range []string{fmt.Sprintf("is in use by pid %d", os.Getpid()), "no scopewatch API answered on", "if that process is a scan"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr %q lacks %q", errOut, want)
		}
	}
}

// apiFixture returns the API of a pipeline on the fixture store, which is
// open for writing as the daemon holds it; nothing runs.
func apiFixture(t *testing.T) (http.Handler, *apiDaemon) {
	t.Helper()
	cfg, err := loadConfig(findingsFixture(t))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(cfg.Store, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	p := apiPipeline(cfg, db)
	return asOperator(t, newAPI(p)), p
}

func serve(h http.Handler, method, target, body string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://127.0.0.1:9464"+target, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestFindingsAPI(t *testing.T) {
	api, _ := apiFixture(t)
	unusedID := testFindings()[0].ID()
	tests := []struct {
		name       string
		target     string
		wantStatus int
		want       string // in the body
	}{
		{"all by default", "/api/v1/findings", 200, `"state": "resolved"`},
		{"unknown state", "/api/v1/findings?state=closed", 400, `unknown state "closed"; use open, silenced, resolved, all`},
		{"unknown kind", "/api/v1/findings?kind=geo", 400, `unknown finding kind "geo"; use broad_request,`},
		{"one finding", "/api/v1/findings/" + unusedID, 200, `"id": "` + unusedID + `"`},
		{"unknown finding", "/api/v1/findings/000000000000", 404, `no finding "000000000000"`},
		{"silences", "/api/v1/silences", 200, `"origin": "config"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := serve(api, "GET", tt.target, "")
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("GET %s: %d %s\nwant %d with %q", tt.target, rec.Code, rec.Body, tt.wantStatus, tt.want)
			}
		})
	}

	filters := []struct {
		query string
		want  []string
	}{
		{"state=open", []string{"broad_request mychart-app admin open", "unused_scope lab-portal read_all_data open"}},
		{"state=silenced&kind=token_in_url", []string{"token_in_url  fhir-gw silenced c1"}},
		{"state=all&client=lab-portal", []string{"unfamiliar_geo lab-portal KP resolved", "unused_scope lab-portal read_all_data open"}},
		{"kind=stale_source", []string{}},
	}
	for _, f := range filters {
		t.Run(f.query, func(t *testing.T) {
			rec := serve(api, "GET", "/api/v1/findings?"+f.query, "")
			if rec.Code != 200 {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			if got := decodeFindings(t, rec.Body.String()); !slices.Equal(got, f.want) {
				t.Errorf("got %q\nwant %q", got, f.want)
			}
		})
	}
}

func TestSilenceAPI(t *testing.T) {
	api, p := apiFixture(t)
	signalled := func() bool {
		select {
		case <-p.silences:
			return true
		default:
			return false
		}
	}
	ok := `{"kind": "unused_scope", "client": "lab-*", "for": "30d", "reason": "quarterly review"}`
	bad := []struct {
		name       string
		body       string
		header     []string
		wantStatus int
		want       string
	}{
		{"no reason", `{"kind": "unused_scope", "for": "1d"}`, nil, 400, "reason: required"},
		{"no expiry", `{"kind": "unused_scope", "reason": "r"}`, nil, 400, "for: required"},
		{"expiry in the past", `{"kind": "unused_scope", "reason": "r", "until": "2020-01-01T00:00:00Z"}`, nil, 400, "until: 2020-01-01T00:00:00Z is not in the future"},
		{"bad pattern", `{"subject": "[", "reason": "r", "for": "1d"}`, nil, 400, `subject: bad pattern "["`},
		{"unknown kind", `{"kind": "geo", "reason": "r", "for": "1d"}`, nil, 400, `kind: unknown finding kind "geo"`},
		{"matches everything", `{"client": "*", "reason": "r", "for": "1d"}`, nil, 400, "client: name at least one of client, kind and subject"},
		{"unknown field", `{"kind": "unused_scope", "reason": "r", "for": "1d", "forever": true}`, nil, 400, `unknown field "forever"`},
		{"not JSON", `kind=unused_scope`, nil, 400, "bad request body"},
		{"two values", ok + ok, nil, 400, "more than one JSON value"},
		{"too big", `{"reason": "` + strings.Repeat("x", 70<<10) + `"}`, nil, 413, "request body over 65536 bytes"},
		{"not declared JSON", ok, []string{"Content-Type", "text/plain"}, 415, "Content-Type must be application/json"},
		{"from another site", ok, []string{"Sec-Fetch-Site", "cross-site"}, 403, ""},
		{"through a foreign host name", ok, []string{"Host", "rebind.example:9464"}, 403, `host "rebind.example:9464" refused`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "http://127.0.0.1:9464/api/v1/silences", strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}
			if len(tt.header) == 2 && tt.header[0] == "Host" {
				req.Host = tt.header[1]
			}
			rec := httptest.NewRecorder()
			api.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("%d %q, want %d with %q", rec.Code, rec.Body, tt.wantStatus, tt.want)
			}
			if signalled() {
				t.Error("a refused silence signalled the engine")
			}
		})
	}
	if ss, err := p.Store().Silences(); err != nil || len(ss) != 0 {
		t.Fatalf("refused requests stored silences: %+v, %v", ss, err)
	}

	rec := serve(api, "POST", "/api/v1/silences", ok)
	if rec.Code != http.StatusCreated || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("add: %d %s %s", rec.Code, rec.Header(), rec.Body)
	}
	var v report.SilenceView
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	if v.ID != "s1" || !v.Active || v.Origin != report.OriginStore || v.Author != currentUserName() || v.Kind != "unused_scope" {
		t.Errorf("added %+v", v)
	}
	if !signalled() {
		t.Error("adding a silence did not signal the engine")
	}
	if got := decodeFindings(t, serve(api, "GET", "/api/v1/findings?kind=unused_scope", "").Body.String()); !slices.Equal(got, []string{"unused_scope lab-portal read_all_data silenced s1"}) {
		t.Errorf("after the silence: %q", got)
	}

	expire := []struct {
		id         string
		wantStatus int
		want       string
	}{
		{"s9", 404, `no silence "s9"`},
		{"c1", 409, "silence c1 comes from the configuration"},
		{"s1", 200, `"active": false`},
	}
	for _, tt := range expire {
		t.Run("expire "+tt.id, func(t *testing.T) {
			rec := serve(api, "POST", "/api/v1/silences/"+tt.id+"/expire", "")
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("%d %q, want %d with %q", rec.Code, rec.Body, tt.wantStatus, tt.want)
			}
			if got, want := signalled(), tt.wantStatus == 200; got != want {
				t.Errorf("engine signalled: %v, want %v", got, want)
			}
		})
	}
	if got := decodeFindings(t, serve(api, "GET", "/api/v1/findings?kind=unused_scope", "").Body.String()); !slices.Equal(got, []string{"unused_scope lab-portal read_all_data open"}) {
		t.Errorf("after the expiry: %q", got)
	}
	rec = serve(api, "GET", "/api/v1/silences", "")
	var views []report.SilenceView
	if err := json.Unmarshal(rec.Body.Bytes(), &views); err != nil {
		t.Fatal(err)
	}
	if len(views) != 2 || views[0].ID != "c1" || !views[0].Active || views[1].ID != "s1" || views[1].Active {
		t.Errorf("silences: %+v", views)
	}
}

// TestFindingsAndSilenceThroughDaemon runs the commands while the daemon
// holds the store: they must go through its API.
func TestFindingsAndSilenceThroughDaemon(t *testing.T) {
	dir := t.TempDir()
	addr, p, stop := startDaemon(t, dir)
	defer stop()
	key := store.FindingKey{Kind: "token_in_url", Subject: "test-gateway"}
	b := store.NewBatch()
	b.Findings[key] = store.Finding{Severity: store.SeverityHigh, State: store.StateOpen, Summary: "tokens in URLs",
		First: findingsT0, Last: findingsT0, Count: 1, Opened: findingsT0, Changed: findingsT0}
	if err := p.Store().Commit(b); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfgPath, strings.Replace(sprintfConfig(dir), "127.0.0.1:0", addr, 1))
	run := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCmd(t, append(args, "--config", cfgPath)...)
		if code != exitOK {
			t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		return out
	}
	has := func(fs []string, want string) bool { return slices.Contains(fs, want) }
	if got := decodeFindings(t, run("findings", "--kind", "token_in_url", "--format", "json")); !has(got, "token_in_url  test-gateway open") {
		t.Fatalf("findings through the daemon: %q", got)
	}
	if got := run("silence", "add", "--kind", "token_in_url", "--subject", "test-*", "--for", "1h", "--reason", "test gateway"); got != "s1\n" {
		t.Errorf("silence add through the daemon printed %q", got)
	}
	if got := decodeFindings(t, run("findings", "--state", "silenced", "--format", "json")); !has(got, "token_in_url  test-gateway silenced s1") {
		t.Errorf("silenced findings through the daemon: %q", got)
	}
	if got := run("silence", "list"); !strings.Contains(got, "s1  *       token_in_url  test-*") {
		t.Errorf("silence list through the daemon:\n%s", got)
	}
	if got := run("silence", "expire", "s1"); !strings.HasPrefix(got, "s1 expired at ") {
		t.Errorf("silence expire through the daemon printed %q", got)
	}
	if ss, err := p.Store().Silences(); err != nil || len(ss) != 1 || ss[0].Expires.After(time.Now()) {
		t.Errorf("the daemon's store holds %+v, %v; want s1, expired", ss, err)
	}
}

// apiDaemon is the part of a daemon the HTTP API asks, on cfg and db,
// with nothing running.
type apiDaemon struct {
	cfg      *rules.Config
	db       *store.DB
	silences chan struct{}
}

func apiPipeline(cfg *rules.Config, db *store.DB) *apiDaemon {
	return &apiDaemon{cfg: cfg, db: db, silences: make(chan struct{}, 1)}
}

func (d *apiDaemon) Config() *rules.Config { return d.cfg }
func (d *apiDaemon) Ready() bool           { return true }
func (d *apiDaemon) Store() *store.DB      { return d.db }
func (d *apiDaemon) SilencesChanged() {
	select {
	case d.silences <- struct{}{}:
	default:
	}
}

// newAPI serves the API of d as the daemon does.
func newAPI(d *apiDaemon) http.Handler {
	return api.NewHandler(api.Options{Daemon: d, Store: d.db, Metrics: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
}

// currentUserName is this process's user name, as the daemon records a
// caller on the control socket.
func currentUserName() string {
	id := strconv.Itoa(os.Getuid())
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username
	}
	return id
}
