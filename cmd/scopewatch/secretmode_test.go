package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/daemon"
	"github.com/scopewatch/scopewatch/internal/traffic"
)

// TestSecretModeWarnings checks, with a real key file, that validate
// prints a warning for a key others may read and still passes, that the
// daemon logs the same warning at start, and that a key others may write
// is refused with file, line, field and mode.
func TestSecretModeWarnings(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules)
	key := filepath.Join(dir, "pseudonym.key")
	write(t, key, "0123456789abcdef0123456789abcdef\n")
	cfgPath := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfgPath, sprintfConfig(dir)+"privacy: {pseudonymise_subjects: true, key_file: pseudonym.key}\n")
	line := strings.Count(sprintfConfig(dir), "\n") + 1
	at := cfgPath + ":" + strconv.Itoa(line) + ": privacy.key_file: " + key

	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCmd(t, "validate", "--config", cfgPath)
	if code != exitOK || !strings.Contains(out, "warning: "+at+" is readable by ") || !strings.Contains(out, "(mode 0644)") ||
		!strings.Contains(out, "configuration is valid") {
		t.Errorf("validate, key 0644: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit 0 with the warning %q", code, out, errOut, at)
	}

	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	d, err := daemon.New(cfg, daemon.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatalf("daemon: %v", err)
	}
	d.Close()
	if !strings.Contains(logs.String(), `level=WARN msg="configuration warning" problem="`+at+" is readable by ") {
		t.Errorf("the daemon did not log the warning:\n%s", logs.String())
	}

	if err := os.Chmod(key, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCmd(t, "validate", "--config", cfgPath); code != exitOK || strings.Contains(out, "warning:") {
		t.Errorf("validate, key 0600: exit %d, stdout:\n%s\nwant exit 0 and no warning", code, out)
	}

	if err := os.Chmod(key, 0o660); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runCmd(t, "validate", "--config", cfgPath)
	if code != exitConfig || !strings.Contains(errOut, at+" is writable by its group ") || !strings.Contains(errOut, "(mode 0660)") ||
		strings.Contains(out, "configuration is valid") {
		t.Errorf("validate, key 0660: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d naming %q", code, out, errOut, exitConfig, at)
	}
}
