package ingest

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func TestInternerShares(t *testing.T) {
	var in interner
	a := in.bytes([]byte("lab-app"))
	b := in.bytes([]byte("lab-app"))
	if a != "lab-app" || strings.Compare(a, b) != 0 {
		t.Fatalf("got %q and %q", a, b)
	}
	allocs := testing.AllocsPerRun(100, func() { _ = in.bytes([]byte("lab-app")) })
	if allocs != 0 {
		t.Errorf("a hit allocates %v times, want 0", allocs)
	}
	if in.bytes(nil) != "" {
		t.Error("empty input did not give the empty string")
	}
}

func TestInternerBounded(t *testing.T) {
	var in interner
	for i := range internMaxEntries + 10 {
		in.bytes([]byte("client-" + strconv.Itoa(i)))
	}
	if n := len(in.m); n > internMaxEntries {
		t.Errorf("table holds %d entries, want at most %d", n, internMaxEntries)
	}
	long := strings.Repeat("x", internMaxLen+1)
	if got := in.bytes([]byte(long)); got != long {
		t.Error("long value changed")
	}
	if _, ok := in.m[long]; ok {
		t.Error("a value longer than internMaxLen was kept")
	}
}

func TestScopeListsBounded(t *testing.T) {
	var c scopeLists
	for i := range scopeListMaxEntries + 10 {
		c.split([]byte("openid s" + strconv.Itoa(i)))
	}
	if n := len(c.m); n > scopeListMaxEntries {
		t.Errorf("table holds %d entries, want at most %d", n, scopeListMaxEntries)
	}
}

// TestSubjectsApart checks that a stream of users seen once each neither
// grows the subjects' table past its bound nor pushes the client ids out
// of the main one.
func TestSubjectsApart(t *testing.T) {
	var in interner
	client := in.bytes([]byte("lab-app"))
	for i := range internMaxEntries + 10 {
		in.subject([]byte("user-" + strconv.Itoa(i)))
	}
	if n := len(in.subjects); n > subjectMaxEntries {
		t.Errorf("subjects' table holds %d entries, want at most %d", n, subjectMaxEntries)
	}
	if again := in.bytes([]byte("lab-app")); unsafe.StringData(again) != unsafe.StringData(client) {
		t.Error("the client id was pushed out of the table by subjects")
	}
	if a, b := in.subject([]byte("u1")), in.subject([]byte("u1")); unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("a repeated subject is not shared")
	}
}
