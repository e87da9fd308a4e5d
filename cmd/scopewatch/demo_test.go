package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/store"
)

func TestDemoInvokedAs(t *testing.T) {
	tests := []struct {
		name, arg0, want string
	}{
		{"on PATH", "scopewatch", "scopewatch"},
		{"relative path", "./bin/scopewatch", "./bin/scopewatch"},
		{"absolute path", "/usr/local/bin/scopewatch", "/usr/local/bin/scopewatch"},
		{"go run, work directory", "/tmp/go-build3862251430/b001/exe/scopewatch", "go run ./cmd/scopewatch"},
		{"go run, build cache", "/root/.cache/go-build/79/791fefde55a7-d/scopewatch", "go run ./cmd/scopewatch"},
		{"path with a space", "/home/ana/my tools/scopewatch", "'/home/ana/my tools/scopewatch'"},
		{"path with a quote", "/opt/it's/scopewatch", `'/opt/it'\''s/scopewatch'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := invokedAs(tt.arg0); got != tt.want {
				t.Errorf("invokedAs(%q) = %q, want %q", tt.arg0, got, tt.want)
			}
		})
	}
}

// TestDemoOutput runs the demo and checks what it tells the user: the
// lines committed add up (events, the ignored banner, the malformed
// line), no address of the stopped daemon is printed, and the commands
// to try are written as this program was run.
func TestDemoOutput(t *testing.T) {
	dir := t.TempDir()
	code, out, errOut := runCmd(t, "demo", "--dir", dir, "--events", "600")
	if code != exitOK {
		t.Fatalf("demo: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	cfg := filepath.Join(dir, "scopewatch.yaml")
	cmd := invokedAs(os.Args[0])
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
	code, out2, errOut := runCmd(t, "demo", "--dir", dir, "--events", "600")
	if code != exitConfig {
		t.Errorf("second demo in %s: exit %d, want %d\nstdout:\n%s", dir, code, exitConfig, out2)
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
	write(t, filepath.Join(dir, "rules.yaml"), "clients: {}\n")
	code, _, errOut := runCmd(t, "demo", "--dir", dir, "--events", "100")
	if code != exitConfig {
		t.Errorf("demo: exit %d, want %d", code, exitConfig)
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
