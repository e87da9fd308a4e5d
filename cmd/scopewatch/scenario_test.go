package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/scopewatch/scopewatch/detect/geoip/geoiptest"
	"github.com/scopewatch/scopewatch/internal/probe"
	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
)

var updateScenario = flag.Bool("update", false, "rewrite the rules and expected findings in testdata/scenarios")

const scenarioDir = "../../testdata/scenarios/thirty_days"

// TestScenarioThirtyDays runs thirty days of generated Keycloak and nginx
// traffic of a few hundred clients through `scopewatch scan`, then reads
// the findings with `scopewatch findings`, and compares them with the
// problems the generator injected (testdata/scenarios/thirty_days/
// expected.json): every kind of finding must have precision and recall
// 1.0, and no clean client may have a finding.
//
// validate and scan run as the built binary: the test is about what the
// detectors find, and the race detector would slow the 100,000 lines
// tenfold without covering anything the in-process tests of scan do not.
func TestScenarioThirtyDays(t *testing.T) {
	t.Parallel()
	bin := scopewatchBinary(t)
	start := time.Now()
	s := traffic.NewScenario()
	truth := s.Truth()
	rulesPath, err := filepath.Abs(filepath.Join(scenarioDir, "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, rulesPath, []byte(s.RulesYAML()))
	want, err := json.MarshalIndent(truth, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join(scenarioDir, "expected.json"), append(want, '\n'))
	// Read the ground truth back from the file, as a reviewer reads it.
	var expected traffic.ScenarioTruth
	if err := json.Unmarshal(readFile(t, filepath.Join(scenarioDir, "expected.json")), &expected); err != nil {
		t.Fatal(err)
	}

	for _, src := range []string{traffic.ScenarioKeycloak, traffic.ScenarioAPI} {
		if gap := s.MaxGap(src); gap > 12*time.Hour {
			t.Errorf("%s log is silent for %s: coverage would break", src, gap)
		}
	}

	dir := t.TempDir()
	for _, d := range []string{"logs", "geoip"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	kcPath, apiPath, err := s.WriteLogs(filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatal(err)
	}
	entries := traffic.ScenarioGeoEntries()
	if err := geoiptest.WriteCity(filepath.Join(dir, "geoip", "GeoLite2-City.mmdb"), entries); err != nil {
		t.Fatal(err)
	}
	if err := geoiptest.WriteASN(filepath.Join(dir, "geoip", "GeoLite2-ASN.mmdb"), entries); err != nil {
		t.Fatal(err)
	}
	cfg := writeScenarioConfig(t, dir, rulesPath)
	generated := time.Since(start)

	// Every generated line must be one the parsers read: validate --sample
	// counts the events by kind and fails on any malformed line.
	for _, f := range []struct{ src, path string }{{traffic.ScenarioKeycloak, kcPath}, {traffic.ScenarioAPI, apiPath}} {
		code, out, errOut := runBinary(t, bin, "validate", "--config", cfg, "--sample", f.path, "--source", f.src)
		if code != exitOK {
			t.Fatalf("validate --sample %s: exit %d\n%s\n%s", f.src, code, out, errOut)
		}
		if !strings.Contains(out, f.path+" as source "+f.src+": "+expected.Events[f.src]+"\n") {
			t.Errorf("validate --sample %s: want %q in\n%s", f.src, expected.Events[f.src], out)
		}
	}

	scanStart := time.Now()
	code, out, errOut := runBinary(t, bin, "scan", "--config", cfg, kcPath, apiPath)
	if code != exitOK {
		t.Fatalf("scan: exit %d\n%s\n%s", code, out, errOut)
	}
	lines := expected.Lines[traffic.ScenarioKeycloak] + expected.Lines[traffic.ScenarioAPI]
	if !strings.HasPrefix(out, fmt.Sprintf("scanned %d new lines from 2 file(s)", lines)) {
		t.Errorf("scan: want %d lines scanned, got %q", lines, out)
	}
	scanned := time.Since(scanStart)

	code, out, errOut = runCmd(t, "findings", "--config", cfg, "--state", "all", "--format", "json")
	if code != exitOK {
		t.Fatalf("findings: exit %d\n%s\n%s", code, out, errOut)
	}
	var raised []report.FindingView
	if err := json.Unmarshal([]byte(out), &raised); err != nil {
		t.Fatalf("findings output: %v\n%s", err, out)
	}

	rep := scoreScenario(expected.Findings, raised, s.CleanClients())
	t.Logf("%d clients (%d clean), %d Keycloak + %d API lines; generated in %s, scanned in %s\n%s",
		expected.Clients, expected.CleanClients, expected.Lines[traffic.ScenarioKeycloak], expected.Lines[traffic.ScenarioAPI],
		generated.Round(time.Millisecond), scanned.Round(time.Millisecond), rep.table())
	for _, k := range rep.kinds {
		if k.precision() != 1 || k.recall() != 1 {
			t.Errorf("%s: precision %.2f, recall %.2f; want 1.00 and 1.00", k.kind, k.precision(), k.recall())
		}
	}
	for _, f := range rep.missed {
		t.Errorf("missed: %s %q %q (%s)", f.Kind, f.Client, f.Subject, f.Why)
	}
	for _, f := range rep.unexpected {
		t.Errorf("unexpected: %s %q %q %s %s: %s [%s]", f.Kind, f.Client, f.Subject, f.Severity, f.State, f.Summary, f.Evidence.Detail)
	}
	for _, m := range rep.severity {
		t.Error(m)
	}
	if rep.falseAlarms != 0 {
		t.Errorf("%d findings on clean clients, want 0", rep.falseAlarms)
	}
}

// runBinary runs the built binary with args and returns its exit code and
// output, as runCmd does in-process.
func runBinary(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return code, o.String(), e.String()
}

// writeScenarioConfig fills in the scenario's configuration template and
// returns the path of the configuration.
func writeScenarioConfig(t *testing.T, dir, rulesPath string) string {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join(scenarioDir, "scopewatch.yaml.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	addr, err := probe.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, struct{ Listen, Rules string }{addr, rulesPath}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "scopewatch.yaml")
	write(t, path, b.String())
	return path
}

// golden compares got with the file at path, or rewrites the file with
// -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *updateScenario {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want := readFile(t, path); !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what the generator makes; if the change is intended, run go test -run Scenario ./cmd/scopewatch/ -update and review the diff", path)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kindScore counts the findings of one kind.
type kindScore struct {
	kind                  string
	expected, raised, tps int
}

func (k kindScore) precision() float64 {
	if k.raised == 0 {
		return 1 // nothing raised, nothing wrong
	}
	return float64(k.tps) / float64(k.raised)
}

func (k kindScore) recall() float64 {
	if k.expected == 0 {
		return 1
	}
	return float64(k.tps) / float64(k.expected)
}

// scenarioScore compares raised findings with the expected ones by kind,
// client and subject.
type scenarioScore struct {
	kinds       []kindScore
	missed      []traffic.ScenarioFinding
	unexpected  []report.FindingView
	severity    []string
	falseAlarms int // findings on clean clients
	cleanCount  int
}

func scoreScenario(expected []traffic.ScenarioFinding, raised []report.FindingView, clean map[string]bool) scenarioScore {
	type key struct{ kind, client, subject string }
	want := map[key]traffic.ScenarioFinding{}
	for _, f := range expected {
		want[key{f.Kind, f.Client, f.Subject}] = f
	}
	got := map[key]bool{}
	sc := scenarioScore{cleanCount: len(clean)}
	byKind := map[string]*kindScore{}
	for _, k := range rules.FindingKinds() {
		byKind[k] = &kindScore{kind: k}
	}
	score := func(kind string) *kindScore {
		if byKind[kind] == nil {
			byKind[kind] = &kindScore{kind: kind}
		}
		return byKind[kind]
	}
	for _, f := range expected {
		score(f.Kind).expected++
	}
	for _, f := range raised {
		k := key{f.Kind, f.Client, f.Subject}
		got[k] = true
		ks := score(f.Kind)
		ks.raised++
		if clean[f.Client] {
			sc.falseAlarms++
		}
		w, ok := want[k]
		if !ok {
			sc.unexpected = append(sc.unexpected, f)
			continue
		}
		ks.tps++
		if f.Severity != w.Severity {
			sc.severity = append(sc.severity, fmt.Sprintf("%s %q %q: severity %s, want %s", f.Kind, f.Client, f.Subject, f.Severity, w.Severity))
		}
	}
	for _, f := range expected {
		if !got[key{f.Kind, f.Client, f.Subject}] {
			sc.missed = append(sc.missed, f)
		}
	}
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range byKind {
			if !yield(k) {
				return
			}
		}
	}) {
		sc.kinds = append(sc.kinds, *byKind[k])
	}
	return sc
}

// table renders the scores for the test log.
func (sc scenarioScore) table() string {
	var b bytes.Buffer
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "KIND\tEXPECTED\tRAISED\tTRUE POS\tPRECISION\tRECALL\t")
	for _, k := range sc.kinds {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%.2f\t%.2f\t\n", k.kind, k.expected, k.raised, k.tps, k.precision(), k.recall())
	}
	tw.Flush()
	fmt.Fprintf(&b, "false alarms on clean clients: %d of %d clients (rate %.3f)\n",
		sc.falseAlarms, sc.cleanCount, float64(sc.falseAlarms)/float64(max(sc.cleanCount, 1)))
	return b.String()
}
