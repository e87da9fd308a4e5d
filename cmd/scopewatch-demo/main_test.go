package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

func TestScopewatchCommand(t *testing.T) {
	tests := []struct {
		name, arg0, want string
	}{
		{"on PATH", "scopewatch-demo", "scopewatch"},
		{"relative path", "./bin/scopewatch-demo", "./bin/scopewatch"},
		{"absolute path", "/usr/local/bin/scopewatch-demo", "/usr/local/bin/scopewatch"},
		{"go run, work directory", "/tmp/go-build3862251430/b001/exe/scopewatch-demo", "go run ./cmd/scopewatch"},
		{"go run, build cache", "/root/.cache/go-build/79/791fefde55a7-d/scopewatch-demo", "go run ./cmd/scopewatch"},
		{"path with a space", "/home/ana/my tools/scopewatch-demo", "'/home/ana/my tools/scopewatch'"},
		{"path with a quote", "/opt/it's/scopewatch-demo", `'/opt/it'\''s/scopewatch'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scopewatchCommand(tt.arg0); got != tt.want {
				t.Errorf("scopewatchCommand(%q) = %q, want %q", tt.arg0, got, tt.want)
			}
		})
	}
}

// runDemo runs the demo in-process with args.
func runDemo(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	err := run(context.Background(), args, &o, &e)
	switch {
	case err == nil:
	case errors.As(err, new(usageError)):
		code = 2
		e.WriteString(err.Error())
	default:
		code = 1
		e.WriteString(err.Error())
	}
	return code, o.String(), e.String()
}

// TestDemoOutput runs the demo and checks what it tells the user: the
// lines committed add up (events, the ignored banner, the malformed
// line), no address of the stopped daemon is printed, and the commands
// to try are written as this program was run.
func TestDemoOutput(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runDemo(t, "--dir", dir, "--events", "600")
	if code != 0 {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	cfg := filepath.Join(dir, "scopewatch.yaml")
	cmd := scopewatchCommand(os.Args[0])
	for _, want := range []string{
		"all 602 lines committed; daemon stopped cleanly\n",
		"  600 events, and 2 lines of the kinds real logs also hold: 1 ignored (Keycloak's start-up banner, not an event), 1 malformed (a gateway line cut short)\n",
		"(its HTTP API and /metrics are served only while the demo runs)\n",
		"\nTry: " + cmd + " findings --config " + cfg + "\n",
		"\n     " + cmd + " clients --config " + cfg + "\n",
		"\n     " + cmd + " report unused --config " + cfg + " --format csv\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "http://") {
		t.Errorf("demo output gives an address of the daemon it stopped:\n%s", out)
	}
	if strings.Contains(out, "Try: scopewatch ") && cmd != "scopewatch" {
		t.Errorf("demo output assumes scopewatch is on PATH:\n%s", out)
	}
	sources := demoSources(t, dir)
	if sources != (demoCounts{lines: 602, events: 600, ignored: 1, malformed: 1}) {
		t.Errorf("store counts %+v, want 602 lines: 600 events, 1 ignored, 1 malformed", sources)
	}

	// A second run in the same directory is refused and leaves the store
	// as it was, rather than adding to its counts.
	code, out2, errOut := runDemo(t, "--dir", dir, "--events", "600")
	if code != 2 {
		t.Errorf("second demo in %s: exit %d, want %d\nstdout:\n%s", dir, code, 2, out2)
	}
	if want := "--dir " + dir + " already holds a demo store: running the demo again there would add this run's traffic to its counts; remove it or pick another directory"; !strings.Contains(errOut, want) {
		t.Errorf("second demo: stderr %q lacks %q", errOut, want)
	}
	if got := demoSources(t, dir); got != sources {
		t.Errorf("after the refused run the store counts %+v, want %+v", got, sources)
	}
}

// TestDemoRefusesForeignFiles checks that the demo does not overwrite a
// config or rules file it did not write.
func TestDemoRefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), []byte("clients: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runDemo(t, "--dir", dir, "--events", "100")
	if code != 2 {
		t.Errorf("demo: exit %d, want %d", code, 2)
	}
	if want := "--dir " + dir + " already holds files the demo writes (rules.yaml): remove them or pick another directory"; !strings.Contains(errOut, want) {
		t.Errorf("stderr %q lacks %q", errOut, want)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "rules.yaml")); err != nil || string(b) != "clients: {}\n" {
		t.Errorf("rules.yaml = %q, %v: overwritten", b, err)
	}
}

type demoCounts struct{ lines, events, ignored, malformed uint64 }

// demoSources sums the demo store's per-source counts.
func demoSources(t *testing.T, dir string) demoCounts {
	t.Helper()
	db, err := store.Open(filepath.Join(dir, "scopewatch.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srcs, err := db.Sources()
	if err != nil {
		t.Fatal(err)
	}
	var c demoCounts
	for _, s := range srcs {
		c.lines += s.Lines
		c.events += s.Events.N
		c.ignored += s.Ignored
		c.malformed += s.Malformed
	}
	return c
}

// TestDemoReport checks the demo's story: its cast is built so that
// exactly these scopes are unused, with these narrower sets.
func TestDemoReport(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	code, out, errOut := runDemo(t, "--dir", dir, "--events", "6000")
	if code != 0 {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// The demo's cast is built so that these and only these are unused.
	rep := demoUnused(t, dir)
	got := map[string]string{}
	for _, u := range rep.Unused {
		got[u.Client+" "+u.Scope] = u.Status
	}
	want := map[string]string{
		"lab-portal read_all_data":            detect.StatusNeverUsed,
		"billing-export view_lab_results":     detect.StatusNeverUsed,
		"billing-export admin":                detect.StatusNeverUsed,
		"billing-export view_imaging":         detect.StatusNeverRequested, // registered, never asked for
		"ehr-sync view_notes":                 detect.StatusUnused,         // used in the first weeks only
		"lab-portal patient/Observation.read": detect.StatusBroader,        // reads, never searches
		"mychart-app patient/*.read":          detect.StatusBroader,        // Observation and Condition only
		"ehr-sync system/Group.read":          detect.StatusBroader,        // reads groups, never searches
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: status %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected unused scope %s", k)
		}
	}
	narrower := map[string]string{}
	for _, u := range rep.Unused {
		narrower[u.Client+" "+u.Scope] = strings.Join(u.Narrower, " ")
	}
	if got := narrower["mychart-app patient/*.read"]; got != "patient/Condition.r patient/Observation.rs" {
		t.Errorf("mychart-app patient/*.read narrower = %q", got)
	}
	if got := narrower["lab-portal patient/Observation.read"]; got != "patient/Observation.r" {
		t.Errorf("lab-portal patient/Observation.read narrower = %q", got)
	}
	if len(rep.Pending) != 1 || rep.Pending[0].Client != "triage-bot" {
		t.Errorf("pending = %+v, want triage-bot only", rep.Pending)
	}
	if !strings.Contains(out, "read_all_data") || !strings.Contains(out, "all ") {
		t.Errorf("demo output lacks the report:\n%s", out)
	}
}

// demoUnused is the unused-scope report of the demo in dir, from its
// store.
func demoUnused(t *testing.T, dir string) detect.UnusedReport {
	t.Helper()
	cfg, err := rules.Load(filepath.Join(dir, "scopewatch.yaml"), ingest.Formats{})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.Open(cfg.Store, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rep, err := report.Unused(cfg, db, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
