package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/scopewatch/scopewatch/internal/traffic"
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
	for _, bad := range []string{"0", "1,,2", "two", "13", "1,-1"} {
		err = run(context.Background(), []string{"--kafka-instances", bad}, &out, &errOut)
		if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), "--kafka-instances") {
			t.Errorf("--kafka-instances %s: %v, want a usage error", bad, err)
		}
	}
}

func TestParseInstances(t *testing.T) {
	for in, want := range map[string][]int{
		"":         nil,
		"  ":       nil,
		"1":        {1},
		"1,2,3":    {1, 2, 3},
		" 2 , 12 ": {2, 12},
	} {
		got, err := parseInstances(in)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("parseInstances(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

// TestLineClientID checks that the key of every generated line is the
// client id of its event.
func TestLineClientID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kc.log")
	if _, err := (traffic.KeycloakLog{Lines: 500, Clients: 20, Nets: traffic.Networks(4)}).Write(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	seen := map[string]bool{}
	for sc.Scan() {
		id, err := lineClientID(sc.Bytes())
		if err != nil {
			t.Fatalf("%v: %s", err, sc.Bytes())
		}
		if !regexp.MustCompile(`^client-\d{4}$`).MatchString(id) {
			t.Fatalf("client id %q of %s", id, sc.Bytes())
		}
		seen[id] = true
	}
	if len(seen) != 20 {
		t.Errorf("%d distinct client ids, want 20", len(seen))
	}
	if _, err := lineClientID([]byte(`{"message":"type=\"LOGIN\""}`)); err == nil {
		t.Error("a line without a clientId gave one")
	}
}

// TestBenchKafka runs the Kafka measurement on a small file with groups
// of one and two instances, each without and with a changelog, and
// checks that their rows were printed, the move of one instance's
// partitions with them.
func TestBenchKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary against an in-process Kafka")
	}
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"--lines", "2000", "--clients", "50", "--networks", "16", "--runs", "1",
		"--latency-rate", "0", "--kafka-instances", "1,2", "--kafka-changelog", "--dir", t.TempDir()}, &out, &errOut)
	if err != nil {
		t.Fatalf("bench: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	for _, row := range []string{
		`produced the 2000 lines to an in-process Kafka \(kfake\) topic of 12 partitions`,
		`scopewatch run from Kafka, 1 instance\(s\) +\d+ +\d+ +\d+\.\d+ +\d+\.\d+ +\d+\.\d MiB +\d+\.\d+ +\d+\.\d+ +\d+\.\d+\n` +
			` +the same, with a changelog +\d+ +\d+ +\d+\.\d+ +\d+\.\d+ +\d+\.\d MiB +\d+\.\d+ +\d+\.\d+ +\d+\.\d+\n`,
		`scopewatch run from Kafka, 2 instance\(s\) +\d+ +\d+ +\d+\.\d+ +\d+\.\d+ +\d+\.\d MiB +\d+\.\d+ +\d+\.\d+ +-\n` +
			` +the same, with a changelog +\d+ +\d+ +\d+\.\d+ +\d+\.\d+ +\d+\.\d MiB +\d+\.\d+ +\d+\.\d+ +-\n`,
		fmt.Sprintf(`the in-process Kafka shares the machine's %d cores with the instances`, runtime.NumCPU()),
	} {
		if !regexp.MustCompile(row).MatchString(out.String()) {
			t.Errorf("output lacks %s:\n%s", row, out.String())
		}
	}
}
