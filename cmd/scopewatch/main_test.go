package main

import (
	"bytes"
	"context"
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
