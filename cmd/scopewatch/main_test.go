package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// scopewatchBinary builds the real binary once per test run.
func scopewatchBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scopewatch-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "scopewatch")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = &buildFailure{out: string(out), err: err}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type buildFailure struct {
	out string
	err error
}

func (b *buildFailure) Error() string { return "go build: " + b.err.Error() + "\n" + b.out }

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// runCmd runs a subcommand in-process and returns its exit code and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = dispatch(context.Background(), args, &o, &e)
	return code, o.String(), e.String()
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	write(t, good, "store: "+dir+"/s.db\nsources:\n  - {name: kc, path: "+dir+"/kc.log, format: keycloak}\n")
	code, out, errOut := runCmd(t, "validate", "--config", good)
	if code != exitOK {
		t.Fatalf("validate good config: exit %d, stderr %s", code, errOut)
	}
	if !strings.Contains(out, "kc") || !strings.Contains(out, "keycloak") {
		t.Errorf("validate did not print what it would tail:\n%s", out)
	}

	bad := filepath.Join(dir, "bad.yaml")
	write(t, bad, "store: "+dir+"/s.db\nsources:\n  - name: kc\n    path: "+dir+"/kc.log\n    format: keycloack\n  - {name: kc, path: "+dir+"/x.log, format: json}\n")
	code, _, errOut = runCmd(t, "validate", "--config", bad)
	if code != exitConfig {
		t.Errorf("validate bad config: exit %d, want %d", code, exitConfig)
	}
	for _, want := range []string{bad + ":5: sources[0].format", bad + ":6: sources[1].name"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error output lacks %q:\n%s", want, errOut)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	if code, _, _ := runCmd(t, "frobnicate"); code != exitConfig {
		t.Errorf("exit %d, want %d", code, exitConfig)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestValidateSample(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cfg.yaml")
	write(t, cfg, "store: "+dir+"/s.db\nsources:\n  - {name: kc, path: "+dir+"/kc.log, format: keycloak}\n")
	good := `2026-10-01 10:00:00,000 DEBUG [org.keycloak.events] (executor-thread-1) type="CODE_TO_TOKEN", realmId="r", clientId="lab-portal", userId="u1", ipAddress="10.0.0.1", scope="openid view_lab_results"`
	chatter := `2026-10-01 10:00:01,000 INFO  [io.quarkus] (main) Keycloak 26.0.5 started`
	broken := `2026-10-01 10:00:02,000 DEBUG [org.keycloak.events] (executor-thread-1) type="CODE_TO_TOKEN", clientId="lab-portal", scope="openid`
	sample := filepath.Join(dir, "sample.log")

	write(t, sample, good+"\n"+chatter+"\n")
	code, out, errOut := runCmd(t, "validate", "--config", cfg, "--sample", sample, "--source", "kc")
	if code != exitOK {
		t.Fatalf("clean sample: exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "2 lines: 1 parsed into 1 events (grant 1), 1 ignored, 0 malformed") ||
		!strings.Contains(out, "client=lab-portal") || !strings.Contains(out, "granted=[openid view_lab_results]") {
		t.Errorf("sample summary:\n%s", out)
	}

	write(t, sample, good+"\n"+broken+"\n")
	code, out, errOut = runCmd(t, "validate", "--config", cfg, "--sample", sample, "--source", "kc")
	if code != exitError {
		t.Errorf("sample with a broken line: exit %d, want %d", code, exitError)
	}
	if !strings.Contains(out, "kc: line 2: field scope:") || !strings.Contains(errOut, "1 of 2 lines") {
		t.Errorf("broken line not explained:\nstdout:\n%s\nstderr:\n%s", out, errOut)
	}
}

// TestScanBadFileEnds checks that a one-shot scan of a damaged file
// commits what it could read and fails instead of retrying for ever.
func TestScanBadFileEnds(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cfg.yaml")
	write(t, cfg, "store: "+dir+"/s.db\nsources:\n  - {name: kc, path: "+dir+"/kc.log, format: keycloak}\n")
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	for i := range 2000 {
		fmt.Fprintf(zw, `2026-10-01 10:00:00,000 DEBUG [org.keycloak.events] (t) type="CODE_TO_TOKEN", realmId="r", clientId="app-%d", scope="openid"`+"\n", i%7)
	}
	zw.Close()
	gz := filepath.Join(dir, "kc.log.1.gz")
	write(t, gz, string(buf.Bytes()[:buf.Len()-20])) // cut short, as a full disk leaves it

	code, _, errOut := runCmd(t, "scan", "--config", cfg, gz)
	if code != exitError || !strings.Contains(errOut, "kc.log.1.gz") {
		t.Fatalf("scan of a truncated gzip: exit %d, stderr %q; want exit 1 naming the file", code, errOut)
	}
	if n := committedLines(t, filepath.Join(dir, "s.db")); n < 1900 {
		t.Errorf("committed %d lines before the damage, want nearly all 2000", n)
	}
}
