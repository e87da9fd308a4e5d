package main

import (
	"os"
	"os/exec"
	"testing"
)

// needTool returns the path of an external program the test needs, looked
// up in PATH. installedBy says what provides it ("Debian package
// prometheus"). Without the program the test is skipped with that reason,
// so that `go test ./...` passes on a fresh machine; with the environment
// variable CI set (.ci/run sets it, and installs every such program) a
// missing program fails the test instead, so that CI never passes with a
// check silently left out.
func needTool(t *testing.T, name, installedBy string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found and CI is set: install it (%s; .ci/run installs it): %v", name, installedBy, err)
	}
	t.Skipf("%s not installed (%s; .ci/run installs it); set CI=1 to make this a failure", name, installedBy)
	return ""
}

// needPromtool returns promtool's path; see needTool.
func needPromtool(t *testing.T) string {
	t.Helper()
	return needTool(t, "promtool", "Debian package prometheus")
}
