package rules

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	exampleConfig = "../testdata/config/example/scopewatch.yaml"
	invalidDir    = "../testdata/config/invalid"
	invalidRules  = "../testdata/config/invalid-rules"
	// marker ends the line a fixture's error must name.
	marker = "# <-"
)

// loadExample loads the example configuration. Its key file is made
// owner-only first: git keeps no mode but the executable bit, and a
// checkout under umask 002 makes it group-writable, which Load refuses.
func loadExample(t *testing.T) (*Config, error) {
	t.Helper()
	if err := os.Chmod(filepath.Join(filepath.Dir(exampleConfig), "pseudonym.key"), 0o600); err != nil {
		t.Fatal(err)
	}
	return Load(exampleConfig, testFormats)
}

func TestLoadExample(t *testing.T) {
	c, err := loadExample(t)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	dir, err := filepath.Abs(filepath.Dir(exampleConfig))
	if err != nil {
		t.Fatal(err)
	}
	in := func(p string) string { return filepath.Join(dir, p) }

	checks := []struct {
		name      string
		got, want any
	}{
		{"File", c.File, exampleConfig},
		{"Store", c.Store, in("state/scopewatch.db")},
		{"Listen", c.Listen, "127.0.0.1:9464"},
		{"RulesAt", c.RulesAt, in("rules.yaml")},
		{"Privacy.PseudonymiseSubjects", c.Privacy.PseudonymiseSubjects, true},
		{"Privacy.KeyFile", c.Privacy.KeyFile, in("pseudonym.key")},
		{"Batch.MaxEvents", c.Batch.MaxEvents, 50_000},
		{"Batch.MaxClients", c.Batch.MaxClients, DefaultMaxClients},
		{"Batch.MaxDelay", c.Batch.MaxDelay.Std(), 250 * time.Millisecond},
		{"Batch.MemoryLimit auto", c.Batch.MemoryLimit.Auto(), true},
		{"Detect.UnusedScope.Window", c.Detect.UnusedScope.Window.Std(), 90 * 24 * time.Hour},
		{"Detect.UnusedScope.MinObservation", c.Detect.UnusedScope.MinObservation.Std(), 30 * 24 * time.Hour},
		{"len(Sources)", len(c.Sources), 2},

		{"Sources[0].Name", c.Sources[0].Name, "keycloak"},
		{"Sources[0].Format", c.Sources[0].Format, "keycloak"},
		{"Sources[0].Path", c.Sources[0].Path, in("logs/keycloak.log")},
		{"Sources[0].Glob", c.Sources[0].Glob, in("logs/keycloak.log") + ".*"},
		{"Sources[0].RotateWait", c.Sources[0].RotateWait.Std(), 5 * time.Second},
		{"Sources[0].TimeZone", c.Sources[0].TimeZone, "Europe/Berlin"},
		{"Sources[0].Location", c.Sources[0].Location.String(), "Europe/Berlin"},
		{"Sources[0].TimeFormat", c.Sources[0].TimeFormat, ""},
		{"Sources[0].Kind", c.Sources[0].Kind, ""},
		{"Sources[0].Line", c.Sources[0].Line, 18},

		{"Sources[1].Name", c.Sources[1].Name, "fhir-gw"},
		{"Sources[1].Format", c.Sources[1].Format, "json"},
		{"Sources[1].Glob", c.Sources[1].Glob, in("logs/fhir_access.json-*.gz")},
		{"Sources[1].RotateWait", c.Sources[1].RotateWait.Std(), 10 * time.Second},
		{"Sources[1].TimeFormat", c.Sources[1].TimeFormat, "rfc3339"},
		{"Sources[1].Kind", c.Sources[1].Kind, "use"},
		{"Sources[1].TimeZone", c.Sources[1].TimeZone, "UTC"},
		{"Sources[1].Fields.Client", c.Sources[1].Fields.Client, "client_id"},
		{"Sources[1].Fields.Path", c.Sources[1].Fields.Path, "request_uri"},
		{"Sources[1].Line", c.Sources[1].Line, 23},

		{"Rules.File", c.Rules.File, in("rules.yaml")},
		{"len(Rules.Scopes)", len(c.Rules.Scopes), 6},
		{"len(Rules.Roles)", len(c.Rules.Roles), 3},
		{"len(Rules.Clients)", len(c.Rules.Clients), 3},
		{"len(Rules.Routes)", len(c.Rules.Routes), 5},
		{"view_lab_results lifecycle (default)", c.Rules.Scopes["view_lab_results"].Lifecycle, Active},
		{"read_all_data lifecycle", c.Rules.Scopes["read_all_data"].Lifecycle, Deprecated},
		{"read_all_data replaced_by", c.Rules.Scopes["read_all_data"].ReplacedBy, "view_lab_results"},
		{"read_all_data sunset", c.Rules.Scopes["read_all_data"].Sunset, "2026-12-31"},
		{"admin lifecycle", c.Rules.Scopes["admin"].Lifecycle, Retired},
		{"patient/*.read sensitivity", c.Rules.Scopes["patient/*.read"].Sensitivity, "phi"},
		{"role lab-technician", fmt.Sprint(c.Rules.Roles["lab-technician"]), "[view_lab_results order_lab_tests]"},
		{"identity scopes", fmt.Sprint(c.Rules.IdentityScopes), "[openid profile fhirUser offline_access launch/patient]"},
		{"IsIdentityScope(fhirUser)", c.Rules.IsIdentityScope("fhirUser"), true},
		{"IsIdentityScope(email)", c.Rules.IsIdentityScope("email"), false},
		{"Routes[4].Line", c.Rules.Routes[4].Line, 59},
		{"GET /api/labs/42", fmt.Sprint(c.Rules.MatchRoute("fhir-gw", "GET", "/api/labs/42")), "[view_lab_results]"},
		{"POST /api/labs/orders", fmt.Sprint(c.Rules.MatchRoute("fhir-gw", "POST", "/api/labs/orders")), "[order_lab_tests]"},
		{"DELETE /api/export/all/now", fmt.Sprint(c.Rules.MatchRoute("fhir-gw", "DELETE", "/api/export/all/now")), "[read_all_data]"},
		{"GET /fhir/Observation/7 from fhir-gw", fmt.Sprint(c.Rules.MatchRoute("fhir-gw", "GET", "/fhir/Observation/7")), "[patient/Observation.rs]"},
		{"GET /fhir/Observation/7 from keycloak", c.Rules.MatchRoute("keycloak", "GET", "/fhir/Observation/7") == nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}

	reg, ok := c.Rules.Registered("mychart-app")
	if !ok {
		t.Fatal(`Registered("mychart-app") = false, want true`)
	}
	if got, want := fmt.Sprintf("%s %v %v", reg.Role, reg.ExpectedCountries, reg.Scopes), "patient-app [US CA] [openid fhirUser launch/patient patient/*.read]"; got != want {
		t.Errorf(`Registered("mychart-app") = %s, want %s`, got, want)
	}
	if _, ok := c.Rules.Registered("unknown-app"); ok {
		t.Error(`Registered("unknown-app") = true, want false`)
	}
}

// writeFiles writes name → content into a new temporary directory and
// returns the directory.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoadDefaults(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"scopewatch.yaml": "store: sw.db\nsources:\n  - {name: api, path: logs/api.json, format: json, fields: {time: ts}}\n",
		"logs/.keep":      "",
	})
	c, err := Load(filepath.Join(dir, "scopewatch.yaml"), testFormats)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	s := c.Sources[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"Store", c.Store, filepath.Join(dir, "sw.db")},
		{"Listen", c.Listen, DefaultListen},
		{"Batch.MaxEvents", c.Batch.MaxEvents, 50_000},
		{"Batch.MaxClients", c.Batch.MaxClients, DefaultMaxClients},
		{"Batch.MaxDelay", c.Batch.MaxDelay.Std(), 250 * time.Millisecond},
		{"Batch.MemoryLimit auto", c.Batch.MemoryLimit.Auto(), true},
		{"Window", c.Detect.UnusedScope.Window.Std(), 90 * 24 * time.Hour},
		{"MinObservation", c.Detect.UnusedScope.MinObservation.Std(), 30 * 24 * time.Hour},
		{"ClientRetention", c.Detect.ClientRetention.Std(), 180 * 24 * time.Hour},
		{"ClientIDSpray.Distinct", c.Detect.ClientIDSpray.Distinct, 100},
		{"ClientIDSpray.Window", c.Detect.ClientIDSpray.Window.Std(), 10 * time.Minute},
		{"Glob", s.Glob, filepath.Join(dir, "logs/api.json") + ".*"},
		{"RotateWait", s.RotateWait.Std(), 5 * time.Second},
		{"Kind", s.Kind, "use"},
		{"TimeFormat", s.TimeFormat, "rfc3339"},
		{"TimeZone", s.TimeZone, "UTC"},
		{"Location", s.Location, time.UTC},
		{"Rules present", c.Rules != nil, true},
		{"RulesAt", c.RulesAt, ""},
		{"identity scopes", fmt.Sprint(c.Rules.IdentityScopes), fmt.Sprint(DefaultIdentityScopes())},
		{"IsIdentityScope(openid)", c.Rules.IsIdentityScope("openid"), true},
		{"MatchRoute with no routes", c.Rules.MatchRoute("api", "GET", "/x") == nil, true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// TestClientRetentionFollowsWindow: left out, client_retention outlasts
// an unused_scope.window longer than its own default.
func TestClientRetentionFollowsWindow(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"scopewatch.yaml": "store: sw.db\nsources:\n  - {name: kc, path: kc.log, format: keycloak}\ndetect:\n  unused_scope: {window: 200d}\n",
	})
	c, err := Load(filepath.Join(dir, "scopewatch.yaml"), testFormats)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Detect.ClientRetention.Std(); got != 200*24*time.Hour {
		t.Errorf("ClientRetention = %v, want the window, 200d", got)
	}
}

func TestLoadKeepsExplicitZeroRotateWait(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"scopewatch.yaml": "store: sw.db\nsources:\n  - {name: kc, path: kc.log, format: keycloak, rotate_wait: 0s}\n",
	})
	c, err := Load(filepath.Join(dir, "scopewatch.yaml"), testFormats)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := c.Sources[0].RotateWait; got != 0 {
		t.Errorf("RotateWait = %v, want 0", got)
	}
}

// fixture is an invalid file and the error it must produce.
type fixture struct {
	want string // the "# want:" text of the first line
	file string // the file whose line carries the marker
	line int    // that line
}

// readFixture reads the expectation of the fixture at path. The marker
// is in the fixture itself or, for errors in a rules file the fixture
// names, in its companion rules/<name> beside it.
func readFixture(t *testing.T, path string) fixture {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(data), "\n")
	want, ok := strings.CutPrefix(first, "# want: ")
	if !ok {
		t.Fatalf("%s: first line %q does not start with %q", path, first, "# want: ")
	}
	f := fixture{want: want}
	for _, candidate := range []string{path, filepath.Join(filepath.Dir(path), "rules", filepath.Base(path))} {
		data, err := os.ReadFile(candidate)
		if err != nil {
			continue
		}
		for i, l := range strings.Split(string(data), "\n") {
			if strings.HasSuffix(l, marker) {
				if f.line != 0 {
					t.Fatalf("%s: more than one line marked %q", path, marker)
				}
				f.file, f.line = candidate, i+1
			}
		}
	}
	if f.line == 0 {
		t.Fatalf("%s: no line marked %q", path, marker)
	}
	return f
}

func fixtures(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no fixtures in %s", dir)
	}
	return paths
}

// checkProblem checks that err holds exactly one problem, and that it
// names the fixture's file, line, field and message.
func checkProblem(t *testing.T, err error, f fixture, file string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", f.want)
	}
	want := fmt.Sprintf("%s:%d: %s", file, f.line, f.want)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error:\n%v\nwant it to contain:\n%s", err, want)
	}
	if n := len(Problems(err)); n != 1 {
		t.Errorf("%d problems, want exactly 1:\n%v", n, err)
	}
}

func TestLoadInvalid(t *testing.T) {
	for _, path := range fixtures(t, invalidDir) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
			f := readFixture(t, path)
			file := f.file
			if file != path { // a rules file, named absolute by Load
				var err error
				if file, err = filepath.Abs(file); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Load(path, testFormats)
			checkProblem(t, err, f, file)
		})
	}
}

func TestLoadRulesInvalid(t *testing.T) {
	for _, path := range fixtures(t, invalidRules) {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".yaml"), func(t *testing.T) {
			f := readFixture(t, path)
			_, err := LoadRules(path)
			checkProblem(t, err, f, path)
		})
	}
}

func TestLoadReportsEveryProblem(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"scopewatch.yaml": `listen: nowhere
rules: rules.yaml
sources:
  - {name: kc, path: kc.log, format: keycloak, timezone: Mars/Olympus}
  - {name: kc, path: api.json, format: nginx-jsn}
detect:
  unused_scope: {window: 3months}
`,
		"rules.yaml": `scopes:
  read_all_data: {lifecycle: deprecated, replaced_by: nothing}
clients:
  lab-app: {role: lab-tech}
routes:
  - {path: /api/labs, method: GET, scopes: [view_lab_results], sources: [nope]}
`,
	})
	cfg := filepath.Join(dir, "scopewatch.yaml")
	rules := filepath.Join(dir, "rules.yaml")
	_, err := Load(cfg, testFormats)
	if err == nil {
		t.Fatal("Load: no error")
	}
	var got []string
	for _, p := range Problems(err) {
		got = append(got, fmt.Sprintf("%s:%d: %s", p.File, p.Line, p.Field))
	}
	want := []string{
		cfg + ":1: store",
		cfg + ":1: listen",
		cfg + ":4: sources[0].timezone",
		cfg + ":5: sources[1].name",
		cfg + ":5: sources[1].format",
		cfg + ":7: detect.unused_scope.window",
		rules + ":2: scopes.read_all_data.replaced_by",
		rules + ":4: clients.lab-app.role",
		rules + ":6: routes[0].sources[0]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Errorf("errors.As(err, *ConfigError) = false")
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != len(want) {
		t.Errorf("error has %d lines, want %d:\n%v", n, len(want), err)
	}
}

func TestLoadUnreadableFiles(t *testing.T) {
	dir := writeFiles(t, map[string]string{"scopewatch.yaml": "store: sw.db\n"})
	if _, err := Load(filepath.Join(dir, "missing.yaml"), testFormats); err == nil || len(Problems(err)) != 0 || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want a wrapped not-exist error", err)
	}
	if _, err := LoadRules(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("LoadRules(missing) = %v, want a wrapped not-exist error", err)
	}
}

func TestLoadUnreadableSourceDir(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("permissions do not bind root")
	}
	dir := writeFiles(t, map[string]string{
		"scopewatch.yaml": "store: sw.db\nsources:\n  - {name: kc, path: locked/kc.log, format: keycloak}\n",
		"locked/kc.log":   "",
	})
	locked := filepath.Join(dir, "locked")
	if err := os.Chmod(locked, 0o311); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	_, err := Load(filepath.Join(dir, "scopewatch.yaml"), testFormats)
	if want := ":3: sources[0].path: cannot read directory"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Load = %v, want an error containing %q", err, want)
	}
}

func TestEmptyConfig(t *testing.T) {
	dir := writeFiles(t, map[string]string{"scopewatch.yaml": "# nothing yet\n"})
	path := filepath.Join(dir, "scopewatch.yaml")
	_, err := Load(path, testFormats)
	var got []string
	for _, p := range Problems(err) {
		got = append(got, p.Error())
	}
	want := []string{
		path + ":1: store: required: the path of the state database, e.g. /var/lib/scopewatch/scopewatch.db",
		path + ":1: sources: at least one source is required, e.g. {name: keycloak, path: /var/log/keycloak/keycloak.log, format: keycloak}",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestConfigErrorString(t *testing.T) {
	tests := []struct {
		name string
		err  ConfigError
		want string
	}{
		{"field", ConfigError{File: "sw.yaml", Line: 7, Field: "sources[1].format", Msg: "unknown format"}, "sw.yaml:7: sources[1].format: unknown format"},
		{"no field", ConfigError{File: "sw.yaml", Line: 3, Msg: "did not find expected key"}, "sw.yaml:3: did not find expected key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	c, err := loadExample(t)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := c.Summary()
	for _, want := range []string{
		"store    " + c.Store + "\n",
		"listen   127.0.0.1:9464\n",
		"rules    " + c.RulesAt + ": 6 scopes, 3 roles, 3 clients, 5 routes\n",
		"keycloak  keycloak  " + c.Sources[0].Path,
		"exists",
		"fhir-gw   json      " + c.Sources[1].Path,
		"missing (waits for it)",
		c.Sources[1].Glob,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("Summary() lacks %q:\n%s", want, got)
		}
	}
}

func TestValidTimeFormat(t *testing.T) {
	tests := []struct {
		format string
		want   bool
	}{
		{"rfc3339", true},
		{"epoch_ms", true},
		{"nginx", true},
		{"02/Jan/2006:15:04:05 -0700", true},
		{"2006-01-02 15:04:05.000", true},
		{"Jan _2 15:04:05", true},
		{"rfc3399", false},
		{"epoch", false},
		{"iso8601", false},
		{"2006-01-02", false},
		{"03:04:05", false},
		{"Jan 2 3:04PM", true},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			if got := validTimeFormat(tt.format); got != tt.want {
				t.Errorf("validTimeFormat(%q) = %v, want %v", tt.format, got, tt.want)
			}
		})
	}
}
