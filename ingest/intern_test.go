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
	if n := len(in.m.m); n > internMaxEntries {
		t.Errorf("table holds %d entries, want at most %d", n, internMaxEntries)
	}
	long := strings.Repeat("x", internMaxLen+1)
	if got := in.bytes([]byte(long)); got != long {
		t.Error("long value changed")
	}
	if _, ok := in.m.m[long]; ok {
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
	if n := len(in.subjects.m); n > subjectMaxEntries {
		t.Errorf("subjects' table holds %d entries, want at most %d", n, subjectMaxEntries)
	}
	if again := in.bytes([]byte("lab-app")); unsafe.StringData(again) != unsafe.StringData(client) {
		t.Error("the client id was pushed out of the table by subjects")
	}
	var fresh interner
	if a, b := fresh.subject([]byte("u1")), fresh.subject([]byte("u1")); unsafe.StringData(a) != unsafe.StringData(b) {
		t.Error("a repeated subject is not shared")
	}
}

// TestAdmissionDropsValuesThatDoNotRepeat fills tables with values seen
// once each: once full, a table is dropped and keeps nothing for
// admitPauses times its capacity in lookups, then fills again; a table
// whose values repeat is emptied when full and goes on, and one that
// never fills is never judged.
func TestAdmissionDropsValuesThatDoNotRepeat(t *testing.T) {
	var in interner
	for i := range subjectMaxEntries + 1 {
		in.subject([]byte("user-" + strconv.Itoa(i)))
	}
	if in.subjects.m != nil {
		t.Fatalf("after %d subjects seen once each the table holds %d, want it dropped", subjectMaxEntries+1, len(in.subjects.m))
	}
	for i := range admitPauses*subjectMaxEntries - 1 {
		if s := in.subject([]byte("user-" + strconv.Itoa(i%10))); s != "user-"+strconv.Itoa(i%10) {
			t.Fatalf("subject %q, want user-%d", s, i%10)
		}
	}
	if in.subjects.m != nil {
		t.Fatal("a value was added during the pause")
	}
	in.subject([]byte("user-1"))
	if len(in.subjects.m) != 1 {
		t.Fatalf("after the pause the table holds %d values, want the one seen", len(in.subjects.m))
	}
	// Values that repeat often enough: the full table is emptied, not
	// dropped, and fills again.
	for i := range 4 * subjectMaxEntries {
		in.subject([]byte("user-" + strconv.Itoa(i%(subjectMaxEntries+subjectMaxEntries/8))))
		in.subject([]byte("user-1"))
	}
	if in.subjects.m == nil {
		t.Error("a table whose values repeat was dropped")
	}

	// 10,000 clients' scope lists, each repeating: the table never fills
	// and is never judged, though a first pass finds nothing.
	var c scopeLists
	for i := range 10_000 {
		c.split([]byte("openid s" + strconv.Itoa(i)))
	}
	if len(c.m) != 10_000 {
		t.Errorf("10,000 lists seen once: the table holds %d, want them all", len(c.m))
	}
	for i := range scopeListMaxEntries {
		c.split([]byte("openid x" + strconv.Itoa(i)))
	}
	if c.m != nil {
		t.Errorf("after %d more lists seen once each the table holds %d, want it dropped", scopeListMaxEntries, len(c.m))
	}
	if l := c.split([]byte("openid launch")); len(l) != 2 || l[0] != "openid" || l[1] != "launch" {
		t.Errorf("split during the pause: %q", l)
	}
}

// TestAdmissionBacksOff fills a table again and again with values seen
// once each: each drop in a row doubles the pause, up to
// admitPauses<<admitBackoffs, and a table found full of repeating values
// starts the pauses again from admitPauses.
func TestAdmissionBacksOff(t *testing.T) {
	var tb table
	const max = 64
	n := 0
	fresh := func() { // a value never seen before
		n++
		tb.intern([]byte("v"+strconv.Itoa(n)), max)
	}
	// pauseAfterDrop fills the table with new values until it is dropped
	// and returns how many lookups it then takes to add one (the pause
	// counts that one).
	pauseAfterDrop := func() int {
		for i := 0; tb.m != nil || i == 0; i++ {
			if i > max+1 {
				t.Fatalf("a full table of values seen once holds %d, want it dropped", len(tb.m))
			}
			fresh()
		}
		p := 0
		for tb.m == nil {
			fresh()
			p++
		}
		return p
	}
	for i := range admitBackoffs + 2 {
		want := admitPauses * max << min(i, admitBackoffs)
		if got := pauseAfterDrop(); got != want {
			t.Fatalf("drop %d in a row: paused %d lookups, want %d", i+1, got, want)
		}
	}
	// A table that fills with values that repeat is emptied, not dropped,
	// and the next drop pauses as the first did.
	for i := range 4 * max {
		tb.intern([]byte("r"+strconv.Itoa(i%(max+max/8))), max)
		tb.intern([]byte("r1"), max)
	}
	if tb.m == nil {
		t.Fatal("a table whose values repeat was dropped")
	}
	if got := pauseAfterDrop(); got != admitPauses*max {
		t.Errorf("first drop after a good fill: paused %d lookups, want %d", got, admitPauses*max)
	}
}
