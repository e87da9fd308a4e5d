package main

import (
	"bytes"
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
)

// TestBenchRuns runs the bench on a small file against the real binary
// built from this checkout and checks that every row was measured and the
// ratios and the append-to-commit latency were printed.
func TestBenchRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--lines", "3000", "--clients", "50", "--networks", "16", "--dir", t.TempDir()}, &out, &errOut)
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	for _, row := range []string{
		`scopewatch scan \(parse, account, detect, commit\) +\d+ `,
		`scopewatch scan --no-detect \(usage only\) +\d+ `,
		`scopewatch run, live tail catching up +\d+ `,
		`scopewatch run, restarted on the scanned store +- `,
		`bufio.Scanner \+ encoding/json map\[string\]any +\d+ `,
		`ratio detectors / usage only: \d+\.\d+ in time`,
		`ratio scan / plain decode: \d+\.\d+ \(target at least 2\.0\); tail / plain decode: \d+\.\d+; tail / scan: \d+\.\d+`,
		`append to commit, 3000 lines appended at \d+ lines/s to a followed file: p50 \d+m?s, p99 \d+m?s`,
	} {
		if !regexp.MustCompile(row).MatchString(out.String()) {
			t.Errorf("output lacks %s:\n%s", row, out.String())
		}
	}
	if !strings.Contains(out.String(), "MiB") {
		t.Errorf("no peak RSS measured:\n%s", out.String())
	}
}

func TestBenchRefusesBadFlags(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--lines", "0"}, &out, &errOut)
	if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "must be positive") {
		t.Errorf("--lines 0: %v, want a usage error", err)
	}
	err = run(context.Background(), []string{"--latency-rate", "-1"}, &out, &errOut)
	if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "--latency-rate") {
		t.Errorf("--latency-rate -1: %v, want a usage error", err)
	}
}
