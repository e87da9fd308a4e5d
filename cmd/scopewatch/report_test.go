package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/internal/probe"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// reportFixture writes a store whose clients were issued and used scopes
// over the last 200 days, and a configuration with a catalog and
// registrations, whose listen address nothing answers, so commands read
// the file. It returns the configuration's path.
func reportFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	addr, err := probe.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "rules.yaml"), `scopes:
  read_all_data: {lifecycle: deprecated, replaced_by: view_lab_results, sunset: 2026-12-31}
  view_lab_results: {description: Read lab results}
roles:
  lab-technician: [view_lab_results]
clients:
  lab-portal: {role: lab-technician, owner: lab_systems@clinic.example, scopes: [view_lab_results]}
  billing: {owner: finance@clinic.example, scopes: [read_all_data]}
`)
	cfgPath := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfgPath, fmt.Sprintf(`store: %[1]s/scopewatch.db
listen: %[2]s
rules: %[1]s/rules.yaml
sources:
  - {name: keycloak, path: %[1]s/keycloak.log, format: keycloak}
`, dir, addr))
	db, err := store.Open(filepath.Join(dir, "scopewatch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	old, recent := now.Add(-200*24*time.Hour), now.Add(-2*24*time.Hour)
	b := store.NewBatch()
	st := store.NewState(db, 0)
	saw := func(client, scope string, granted, used time.Time) {
		c := st.Client(client)
		c.Seen.Add(1, old)
		c.Seen.Add(1, recent)
		if !granted.IsZero() {
			c.CountScope(scope, store.ScopeGranted, 3, granted)
		}
		if !used.IsZero() {
			c.CountScope(scope, store.ScopeUsed, 2, used)
		}
	}
	saw("lab-portal", "read_all_data", recent, recent)
	saw("lab-portal", "view_lab_results", recent, recent)
	saw("lab-portal", "admin", recent, time.Time{})
	saw("ehr-sync", "read_all_data", recent, old)
	saw("mychart", "patient/*.read", recent, time.Time{})
	saw("mychart", "fhir:Observation.r", time.Time{}, recent)
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return cfgPath
}

func TestReportScopeFromFile(t *testing.T) {
	cfg := reportFixture(t)
	tests := []struct {
		name        string
		args        []string
		wantClients []string
		wantUsedBy  []string
	}{
		{"plain scope, name first", []string{"report", "scope", "read_all_data", "--config", cfg, "--format", "json"},
			[]string{"billing", "ehr-sync", "lab-portal"}, []string{"lab-portal"}},
		{"SMART scope, name last", []string{"report", "scope", "--config", cfg, "--format", "json", "patient/*.read"},
			[]string{"mychart"}, []string{"mychart"}},
		{"registered only", []string{"report", "scope", "view_lab_results", "--config", cfg, "--format", "json"},
			[]string{"lab-portal"}, []string{"lab-portal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var rep report.ScopeReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("%v in\n%s", err, out)
			}
			var clients []string
			for _, h := range rep.Clients {
				clients = append(clients, h.Client)
			}
			if !slices.Equal(clients, tt.wantClients) || !slices.Equal(rep.UsedBy, tt.wantUsedBy) {
				t.Errorf("clients %q, used by %q; want %q, %q", clients, rep.UsedBy, tt.wantClients, tt.wantUsedBy)
			}
		})
	}
}

func TestReportScopeTable(t *testing.T) {
	cfg := reportFixture(t)
	code, out, errOut := runCmd(t, "report", "scope", "read_all_data", "--config", cfg)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"Scope read_all_data (window 90d), as of ",
		": in the catalog, deprecated, replaced by view_lab_results, sunset 2026-12-31\n",
		"billing     finance@clinic.example      -               0       registered",
		"removing read_all_data from the catalog would break 1 client that used it within the window: lab-portal.\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestReportScopeErrors(t *testing.T) {
	cfg := reportFixture(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string // in stderr
	}{
		{"unknown scope", []string{"report", "scope", "view_everything", "--config", cfg}, exitError,
			`unknown scope "view_everything": no client was seen with it, no registration lists it and the catalog does not hold it`},
		{"no name", []string{"report", "scope", "--config", cfg}, exitConfig, "report scope needs the name of a scope"},
		{"two names", []string{"report", "scope", "a", "--config", cfg, "b"}, exitConfig, `unexpected argument "b"`},
		{"unknown format", []string{"report", "scope", "a", "--config", cfg, "--format", "xml"}, exitConfig, `unknown format "xml"; use table, json, csv or markdown`},
		{"unknown kind", []string{"report", "scopes", "--config", cfg}, exitConfig, `did you mean "scope"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit %d, want %d; stdout %q", code, tt.wantCode, out)
			}
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr %q lacks %q", errOut, tt.want)
			}
		})
	}
}

func TestReportUnusedMarkdown(t *testing.T) {
	cfg := reportFixture(t)
	code, out, errOut := runCmd(t, "report", "unused", "--config", cfg, "--format", "markdown")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"# Unused OAuth scopes\n\n- Window: 90d\n- Minimum observation: 30d\n- Report time: ",
		"\n## lab\\_systems@clinic.example\n\n### Role: lab-technician\n",
		"| lab-portal | admin | insufficient coverage (0 of 90 days) | ",
		"| mychart | patient/\\*.read | insufficient coverage (0 of 90 days) | ",
		"\n## (no owner)\n", "\n## Not judged yet\n\nObserved for less than 30d:\n\n- billing (never)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestReportScopeAPI(t *testing.T) {
	cfgPath, cfg, h := reportAPI(t)

	rec := serve(h, "GET", "/api/v1/reports/scope/patient%2F%2A.read", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var rep report.ScopeReport
	if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Scope != "patient/*.read" || !slices.Equal(rep.UsedBy, []string{"mychart"}) {
		t.Errorf("report = %+v", rep)
	}
	if rec := serve(h, "GET", "/api/v1/reports/scope/view_everything", ""); rec.Code != http.StatusNotFound ||
		!strings.Contains(rec.Body.String(), `unknown scope "view_everything"`) {
		t.Errorf("unknown scope: status %d, body %q", rec.Code, rec.Body)
	}

	// The command asks the daemon when one listens, the scope's slash
	// escaped in the path.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	code, out, errOut := runCmd(t, "report", "scope", "patient/*.read", "--config", cfgPath, "--format", "csv")
	if code != exitOK || !strings.Contains(out, "patient/*.read,mychart,") {
		t.Errorf("through the daemon: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, _, errOut = runCmd(t, "report", "scope", "view_everything", "--config", cfgPath)
	if code != exitError || !strings.Contains(errOut, `unknown scope "view_everything"`) || !strings.Contains(errOut, "answered by the daemon at "+cfg.Listen) {
		t.Errorf("unknown scope through the daemon: exit %d, stderr %q", code, errOut)
	}
}

func TestReportUnusedAPIFormats(t *testing.T) {
	_, _, h := reportAPI(t)
	tests := []struct {
		query, contentType string
		status             int
		body               string
	}{
		{"", "application/json", http.StatusOK, `"window"`},
		{"?format=csv", "text/csv; charset=utf-8", http.StatusOK, "client,owner,role,scope,status"},
		{"?format=markdown", "text/markdown; charset=utf-8", http.StatusOK, "# Unused OAuth scopes"},
		{"?format=pdf", "text/plain; charset=utf-8", http.StatusBadRequest, `unknown format "pdf"`},
	}
	for _, tt := range tests {
		rec := serve(h, "GET", "/api/v1/reports/unused"+tt.query, "")
		if rec.Code != tt.status || rec.Header().Get("Content-Type") != tt.contentType || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s: status %d, type %q, body %.80q; want %d, %q, containing %q",
				tt.query, rec.Code, rec.Header().Get("Content-Type"), rec.Body, tt.status, tt.contentType, tt.body)
		}
	}
}

// reportAPI serves the read API over the report fixture's store, opened
// read-only.
func reportAPI(t *testing.T) (cfgPath string, cfg *rules.Config, h http.Handler) {
	t.Helper()
	cfgPath = reportFixture(t)
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(cfg.Store, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return cfgPath, cfg, asOperator(t, newAPI(apiPipeline(cfg, db)))
}
