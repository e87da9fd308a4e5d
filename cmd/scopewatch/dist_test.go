package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// The monitoring files shipped beside the daemon.
const (
	distDashboard = "dist/grafana/scopewatch.json"
	distRules     = "dist/prometheus/scopewatch-alerts.yml"
	distRulesTest = "dist/prometheus/scopewatch-alerts_test.yml"
)

type distRuleFile struct {
	Groups []struct {
		Name  string
		Rules []distRule
	}
}

type distRule struct {
	Alert       string
	Record      string
	Expr        string
	For         string
	Labels      map[string]string
	Annotations map[string]string
}

func distLoadRules(t *testing.T) []distRule {
	t.Helper()
	b, err := os.ReadFile(distRules)
	if err != nil {
		t.Fatal(err)
	}
	var f distRuleFile
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", distRules, err)
	}
	var rules []distRule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules", distRules)
	}
	return rules
}

// TestDistAlertRules checks the alerting rules with promtool, runs their
// unit tests, and checks that every alert has a severity, a summary and a
// description, a for: duration, and unit tests that see it fire and stay
// quiet.
func TestDistAlertRules(t *testing.T) {
	t.Run("promtool", func(t *testing.T) {
		promtool := needPromtool(t)
		for _, args := range [][]string{
			{"check", "rules", filepath.Base(distRules)},
			{"test", "rules", filepath.Base(distRulesTest)},
		} {
			cmd := exec.Command(promtool, args...)
			cmd.Dir = filepath.Dir(distRules) // the unit tests name the rules file relative to themselves
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	})

	alerts := map[string]bool{}
	for _, r := range distLoadRules(t) {
		if r.Alert == "" {
			t.Errorf("rule %q is not an alert; the file holds alerting rules only", r.Record)
			continue
		}
		alerts[r.Alert] = true
		if sev := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, sev) {
			t.Errorf("%s: severity %q, want critical, warning or info", r.Alert, sev)
		}
		for _, a := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: no %s annotation", r.Alert, a)
			}
		}
		if d, err := time.ParseDuration(r.For); err != nil || d < time.Minute {
			t.Errorf("%s: for: %q, want at least 1m so that it does not flap", r.Alert, r.For)
		}
	}

	b, err := os.ReadFile(distRulesTest)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string
				ExpAlerts []any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		}
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatalf("%s: %v", distRulesTest, err)
	}
	firing, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if !alerts[a.Alertname] {
				t.Errorf("%s tests %q, which no rule defines", distRulesTest, a.Alertname)
			}
			if len(a.ExpAlerts) > 0 {
				firing[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for a := range alerts {
		if !firing[a] {
			t.Errorf("%s: no unit test in which it fires", a)
		}
		if !quiet[a] {
			t.Errorf("%s: no unit test in which it stays quiet", a)
		}
	}
}

type distDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type distPanel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  *distDatasource `json:"datasource"`
	GridPos     *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		RefID      string          `json:"refId"`
		Datasource *distDatasource `json:"datasource"`
		Expr       string          `json:"expr"`
	} `json:"targets"`
	Panels []distPanel `json:"panels"` // of a collapsed row
}

type distDashboardJSON struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	Tags          []string `json:"tags"`
	SchemaVersion int      `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Type       string          `json:"type"`
			Name       string          `json:"name"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Multi      bool            `json:"multi"`
			Datasource *distDatasource `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []distPanel `json:"panels"`
}

func distLoadDashboard(t *testing.T) distDashboardJSON {
	t.Helper()
	b, err := os.ReadFile(distDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var d distDashboardJSON
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", distDashboard, err)
	}
	return d
}

// distAllPanels returns the panels with those inside collapsed rows.
func distAllPanels(ps []distPanel) []distPanel {
	var all []distPanel
	for _, p := range ps {
		all = append(all, p)
		all = append(all, distAllPanels(p.Panels)...)
	}
	return all
}

// TestDistDashboard checks the Grafana dashboard's structure: its
// identity, the datasource, job, instance and source variables, unique
// panel ids, a position for every panel that overlaps no other, a unit,
// the datasource variable on every panel and query, and queries that
// promtool parses.
func TestDistDashboard(t *testing.T) {
	d := distLoadDashboard(t)
	if d.UID != "scopewatch" || d.Title != "scopewatch" || len(d.Tags) == 0 || d.SchemaVersion < 39 {
		t.Errorf("uid %q, title %q, tags %v, schemaVersion %d; want scopewatch, scopewatch, some tags, 39 or later",
			d.UID, d.Title, d.Tags, d.SchemaVersion)
	}
	vars := map[string]string{} // name → query
	for _, v := range d.Templating.List {
		q := v.Definition
		if q == "" {
			var s string
			if json.Unmarshal(v.Query, &s) == nil {
				q = s
			}
		}
		vars[v.Name] = q
		switch {
		case v.Type == "datasource":
			if v.Name != "datasource" || string(v.Query) != `"prometheus"` {
				t.Errorf("datasource variable %q with query %s, want datasource of type prometheus", v.Name, v.Query)
			}
		case v.Datasource == nil || v.Datasource.UID != "${datasource}":
			t.Errorf("variable %s does not query ${datasource}", v.Name)
		}
		if v.Name == "source" && (!v.Multi || !strings.Contains(q, "label_values(scopewatch_lines_read_total")) {
			t.Errorf("source variable: multi %v, query %q; want multi-value from scopewatch_lines_read_total", v.Multi, q)
		}
	}
	for _, name := range []string{"datasource", "job", "instance", "source"} {
		if _, ok := vars[name]; !ok {
			t.Errorf("no %s variable", name)
		}
	}

	ids := map[int]string{}
	type box struct {
		title      string
		x, y, w, h int
	}
	var boxes []box
	var exprs []string
	for _, p := range distAllPanels(d.Panels) {
		if other, dup := ids[p.ID]; dup || p.ID == 0 {
			t.Errorf("panel %q: id %d, also %q", p.Title, p.ID, other)
		}
		ids[p.ID] = p.Title
		g := p.GridPos
		if g == nil || g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %q: gridPos %+v, want one within the 24 columns", p.Title, g)
			continue
		}
		for _, b := range boxes {
			if g.X < b.x+b.w && b.x < g.X+g.W && g.Y < b.y+b.h && b.y < g.Y+g.H {
				t.Errorf("panel %q overlaps %q", p.Title, b.title)
			}
		}
		boxes = append(boxes, box{p.Title, g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want ${datasource}", p.Title, p.Datasource)
		}
		if p.FieldConfig.Defaults.Unit == "" {
			t.Errorf("panel %q: no unit", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q, query %s: datasource %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
			if refs[tg.RefID] || tg.RefID == "" {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" || !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q, query %s: %q; want an expression filtered by $instance", p.Title, tg.RefID, tg.Expr)
			}
			exprs = append(exprs, tg.Expr)
		}
	}

	// promtool parses every query, with the variables given values, as
	// the expression of a recording rule.
	t.Run("promtool", func(t *testing.T) {
		promtool := needPromtool(t)
		vals := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*", "$source", ".*")
		var rules strings.Builder
		rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
		for i, e := range exprs {
			q, err := json.Marshal(vals.Replace(e)) // JSON strings are YAML strings
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&rules, "      - record: dashboard:query_%d\n        expr: %s\n", i, q)
		}
		path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
		write(t, path, rules.String())
		if out, err := exec.Command(promtool, "check", "rules", "--lint=none", path).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
		}
	})
}

// distMetricRE matches the names of scopewatch's own metrics and of the Go
// and process collectors it registers.
var distMetricRE = regexp.MustCompile(`\b(?:scopewatch|process|go)_[a-z0-9_]+`)

// distReferenced returns every metric name the dashboard and the rules
// mention (in queries, variables, annotations and panel descriptions),
// each with where it is mentioned.
func distReferenced(t *testing.T) map[string][]string {
	t.Helper()
	refs := map[string][]string{}
	add := func(text, where string) {
		for _, m := range distMetricRE.FindAllString(text, -1) {
			if !slices.Contains(refs[m], where) {
				refs[m] = append(refs[m], where)
			}
		}
	}
	for _, r := range distLoadRules(t) {
		add(r.Expr, "rule "+r.Alert)
		for _, a := range r.Annotations {
			add(a, "rule "+r.Alert)
		}
	}
	d := distLoadDashboard(t)
	for _, v := range d.Templating.List {
		add(string(v.Query)+" "+v.Definition, "variable "+v.Name)
	}
	for _, p := range distAllPanels(d.Panels) {
		add(p.Description, "panel "+p.Title)
		for _, tg := range p.Targets {
			add(tg.Expr, "panel "+p.Title)
		}
	}
	return refs
}

// distExposed parses a Prometheus text exposition into the families that
// have samples, with their types.
func distExposed(body []byte) map[string]string {
	types := map[string]string{}
	sampled := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			if name, typ, ok := strings.Cut(rest, " "); ok {
				types[name] = typ
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			sampled[line[:i]] = true
		}
	}
	fams := map[string]string{}
	for name := range sampled {
		fam := name
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suf); ok && (types[base] == "histogram" || types[base] == "summary") {
				fam = base
			}
		}
		fams[fam] = types[fam]
	}
	return fams
}

// distExposes reports whether the families expose the metric name, which
// may be a histogram's _bucket, _sum or _count series.
func distExposes(fams map[string]string, name string) bool {
	if _, ok := fams[name]; ok {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok {
			if typ := fams[base]; typ == "histogram" || (typ == "summary" && suf != "_bucket") {
				return true
			}
		}
	}
	return false
}

// TestDistMetricsExposed checks that every metric the dashboard and the
// rules mention is exposed by the real daemon. The daemon runs with Slack,
// GeoIP and a scheduled report, and is driven through what creates the
// series that exist only once something happened: findings raised and
// resolved, a malformed line, a truncation that loses bytes, a rename
// rotation and a read error.
func TestDistMetricsExposed(t *testing.T) {
	refs := distReferenced(t)
	if len(refs) < 20 {
		t.Fatalf("only %d metric names found in the dashboard and the rules: %v", len(refs), refs)
	}

	bin := scopewatchBinary(t)
	dir := t.TempDir()
	cfg := distFullConfig(t, dir)

	// Kafka: a source whose broker holds a record, and goes away once it
	// is read (the error metrics).
	cluster := kfake.MustCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "kc-events"))
	defer cluster.Close()
	producer, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("kc-events"))
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	line := fmt.Sprintf(`%s DEBUG [org.keycloak.events] (executor-thread-1) type="CLIENT_LOGIN", realmId="clinic", `+
		`clientId="lab-portal", userId="svc-lab", ipAddress="198.51.100.13", grant_type="client_credentials", scope="openid"`,
		time.Now().UTC().Add(-time.Hour).Format("2006-01-02 15:04:05,000"))
	if err := producer.ProduceSync(t.Context(), &kgo.Record{Key: []byte("lab-portal"), Value: []byte(line)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	withKafka := strings.Replace(string(text), "sources:\n", fmt.Sprintf(`sources:
  - {name: kc-kafka, format: keycloak, kafka: {brokers: [%s], topics: [kc-events], group: scopewatch}}
`, cluster.ListenAddrs()[0]), 1)
	write(t, cfg, withKafka)

	// An open finding about a client nobody knows any more: the first
	// sweep resolves it.
	db, err := store.Open(filepath.Join(dir, "scopewatch.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC().Add(-48 * time.Hour)
	b := store.NewBatch()
	b.Findings[store.FindingKey{Kind: rules.KindUnusedScope, Client: "retired-portal", Subject: "view_notes"}] = store.Finding{
		Severity: store.SeverityWarning, State: store.StateOpen, First: t0, Last: t0, Count: 1,
	}
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	d := startGeoDaemon(t, bin, cfg)
	// Traffic: a token, a token asking for admin (a broad_request finding),
	// an API call, a malformed line.
	gt := &geoTraffic{dir: dir}
	at := time.Now().UTC().Add(-time.Hour)
	gt.token(t, at, "lab-portal", "198.51.100.10")
	gt.append(t, "kc.log", fmt.Sprintf(`%s DEBUG [org.keycloak.events] (executor-thread-1) type="CLIENT_LOGIN", realmId="clinic", `+
		`clientId="lab-portal", userId="svc-lab", ipAddress="198.51.100.12", grant_type="client_credentials", scope="openid admin"`,
		at.Add(time.Minute).Format("2006-01-02 15:04:05,000")))
	gt.call(t, at.Add(2*time.Minute), "lab-portal", "198.51.100.11")
	gt.append(t, "api.log", "{broken")
	d.waitCommitted(t, gt.lines)

	// A partial line the daemon has seen, then a truncation: the bytes
	// past its position are lost, and counted.
	apiLog := filepath.Join(dir, "api.log")
	f, err := os.OpenFile(apiLog, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"time":"2026-`); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(apiLog)
	if err != nil {
		t.Fatal(err)
	}
	d.waitMetric(t, `scopewatch_file_size_bytes{source="api-gateway"}`, float64(fi.Size()))
	if err := os.Truncate(apiLog, 0); err != nil {
		t.Fatal(err)
	}
	d.waitMetric(t, `scopewatch_lost_bytes_total{source="api-gateway"}`, 1)

	// The Keycloak log renamed away and a directory in its place: a
	// rotation, then a read error on every attempt to open the path.
	kcLog := filepath.Join(dir, "kc.log")
	if err := os.Rename(kcLog, kcLog+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(kcLog, 0o755); err != nil {
		t.Fatal(err)
	}
	d.waitMetric(t, `scopewatch_read_errors_total{reason="io",source="keycloak"}`, 1)
	d.waitMetric(t, `scopewatch_kafka_records_total{source="kc-kafka"}`, 1)
	cluster.Close()

	// Everything else is exposed at start or appears with the traffic
	// above; poll until the exposition has every referenced name.
	var missing []string
	d.poll(t, "every metric of the dashboard and the rules exposed", func() (bool, string) {
		code, body, err := d.get("/metrics")
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("/metrics: %d %v", code, err)
		}
		fams := distExposed(body)
		missing = missing[:0]
		for name, where := range refs {
			if !distExposes(fams, name) {
				missing = append(missing, fmt.Sprintf("%s (%s)", name, strings.Join(where, "; ")))
			}
		}
		sort.Strings(missing)
		return len(missing) == 0, "not exposed:\n\t" + strings.Join(missing, "\n\t")
	})
	d.stop(t)
}
