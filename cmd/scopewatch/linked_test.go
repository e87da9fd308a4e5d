package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestShippedBinaryLinksNoTooling reads the module and package list the
// Go toolchain records in the real binary (go version -m) and checks that
// nothing built for tests, the demo or the bench is linked into the
// daemon that is shipped: no GeoIP database writer, no traffic generator.
func TestShippedBinaryLinksNoTooling(t *testing.T) {
	bin := scopewatchBinary(t)
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "go.etcd.io/bbolt") {
		t.Fatalf("go version -m lists no bbolt: not the module list expected\n%s", out)
	}
	for _, mod := range []string{"github.com/maxmind/mmdbwriter", "go4.org/netipx"} {
		if strings.Contains(string(out), mod) {
			t.Errorf("the shipped binary links %s, a test-only module:\n%s", mod, out)
		}
	}
	// Packages do not show in go version -m; the linker's symbol table
	// names them.
	syms, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	for _, pkg := range []string{"scopewatch/internal/traffic.", "scopewatch/internal/probe.", "geoip/geoiptest."} {
		if strings.Contains(string(syms), pkg) {
			t.Errorf("the shipped binary links %s", strings.TrimSuffix(pkg, "."))
		}
	}
	// The crash tests' failpoints are built in with -tags failpoints only.
	raw, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "SCOPEWATCH_FAILPOINTS") {
		t.Error("the shipped binary reads SCOPEWATCH_FAILPOINTS: built with the failpoints tag")
	}
}
