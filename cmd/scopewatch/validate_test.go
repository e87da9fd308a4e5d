package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/internal/traffic"
)

// TestValidateRefusesStrayArguments checks that a log file given without
// --sample is an error that says how to try it, not a silent pass that
// never looked at the file.
func TestValidateRefusesStrayArguments(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules)
	cfg := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfg, sprintfConfig(dir))
	code, out, errOut := runCmd(t, "validate", "--config", cfg, "access.log")
	if code != exitConfig || !strings.Contains(errOut, "--sample access.log") || strings.Contains(out, "configuration is valid") {
		t.Errorf("validate with a stray argument: exit %d, stdout %q, stderr %q; want exit %d naming --sample", code, out, errOut, exitConfig)
	}
}
