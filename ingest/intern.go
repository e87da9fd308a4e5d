package ingest

// Interning keeps one copy of the strings that repeat from line to line
// (client ids, scopes, subjects, event types, reasons), so that a repeated
// value costs a map lookup and no allocation. The tables are per parser,
// hence used from one goroutine, and bounded: when one is full it is
// emptied and refilled by the lines that follow, which keeps memory flat
// when a field turns out to be high-cardinality.

const (
	// internMaxEntries bounds each intern table.
	internMaxEntries = 1 << 16
	// subjectMaxEntries bounds the table of subjects, apart: users come
	// and go by the thousand, and in the main table they would push out
	// the client ids, types and reasons that repeat on every line, and
	// make it large enough that each lookup misses the processor's
	// caches.
	subjectMaxEntries = 1 << 12
	// internMaxLen is the longest value worth interning; longer values are
	// copied each time so that one odd line cannot pin much memory.
	internMaxLen = 256
	// scopeListMaxEntries bounds the table of split scope lists.
	scopeListMaxEntries = 1 << 14
	// scopeListMaxLen is the longest scope string whose split is kept.
	scopeListMaxLen = 4096
)

// admitPauses is how many times its capacity in lookups a table that
// filled up with values that did not repeat goes without adding values
// (admission), the first time; each time in a row after that doubles
// the pause, up to admitPauses<<admitBackoffs.
const (
	admitPauses   = 8
	admitBackoffs = 6
)

// admission stops a table from keeping values that do not repeat (a new
// user on every line, a new mix of scopes on every token). When a table
// fills up and fewer than one lookup in eight since it was last emptied
// found its value, the table is dropped, and nothing is added for the
// next admitPauses times its capacity in lookups: they then cost one look
// into an empty map, not a lookup, an insert and a table emptied again
// and again. Then the table fills again and is judged anew when full.
// Each drop in a row doubles the pause (to 64 times the first): a field
// that never repeats (a new mix of scopes on every token) fills its table
// again, up to 5 MB of scope lists, for about one lookup in 513 (a fill
// of its capacity after a pause of 512 times it) instead of one in 9. A table that never fills is never judged: the values of
// a deployment's clients, however many there are, stay shared.
type admission struct {
	lookups, hits int // since the table was last emptied
	pause         int // lookups left during which nothing is added
	drops         int // drops in a row, up to admitBackoffs
}

// saw counts a lookup and whether it found its value.
func (a *admission) saw(hit bool) {
	if a.pause > 0 {
		a.pause--
		return
	}
	a.lookups++
	if hit {
		a.hits++
	}
}

// admits reports whether a value may be added now.
func (a *admission) admits() bool { return a.pause == 0 }

// full judges a table of capacity max found full: it reports whether to
// drop the table (and pauses) rather than empty it and go on.
func (a *admission) full(max int) (drop bool) {
	drop = a.hits*8 < a.lookups
	if drop {
		a.pause = admitPauses * max << a.drops
		a.drops = min(a.drops+1, admitBackoffs)
	} else {
		a.drops = 0
	}
	a.lookups, a.hits = 0, 0
	return drop
}

// table is an intern table of at most max entries, emptied when full or
// dropped (admission).
type table struct {
	m     map[string]string
	admit admission
}

// interner maps byte strings to shared string values: subjects in a
// table of their own, everything else in m.
type interner struct {
	m, subjects table
}

// bytes returns b as a string, shared with earlier calls for equal b.
func (t *interner) bytes(b []byte) string {
	return t.m.intern(b, internMaxEntries)
}

// subject returns a subject (a user id or name) as a string, shared with
// earlier calls for equal b.
func (t *interner) subject(b []byte) string {
	return t.subjects.intern(b, subjectMaxEntries)
}

// intern looks b up in t, a table of at most max entries emptied when
// full.
func (t *table) intern(b []byte, max int) string {
	if len(b) == 0 {
		return ""
	}
	s, ok := t.m[string(b)]
	t.admit.saw(ok)
	if ok {
		return s
	}
	s = string(b)
	if len(b) > internMaxLen || !t.admit.admits() {
		return s
	}
	if !makeRoom(&t.m, max, 256, &t.admit) {
		return s
	}
	t.m[s] = s
	return s
}

// makeRoom readies *m, a table of at most max entries judged by a, for
// one more value: it makes the map (of size hint), empties it when full,
// or drops it when a says so, and then reports false: the value is not
// to be kept.
func makeRoom[V any](m *map[string]V, max, hint int, a *admission) bool {
	switch {
	case *m == nil:
		*m = make(map[string]V, hint)
	case len(*m) >= max:
		if a.full(max) {
			*m = nil
			return false
		}
		clear(*m)
	}
	return true
}

// scopeLists maps a raw scope list (a space-separated string or the text
// of a JSON array) to its split form. The slices it returns are shared
// between events and have len == cap, so an append by a consumer copies;
// consumers must not modify their elements in place.
type scopeLists struct {
	m     map[string][]string
	admit admission
}

// lookup returns the cached split of raw.
func (c *scopeLists) lookup(raw []byte) ([]string, bool) {
	l, ok := c.m[string(raw)]
	c.admit.saw(ok)
	return l, ok
}

// store remembers list as the split of raw and returns it trimmed to
// len == cap.
func (c *scopeLists) store(raw []byte, list []string) []string {
	if len(raw) > scopeListMaxLen {
		return list[:len(list):len(list)]
	}
	return c.keep(string(raw), list)
}

// keep is store with the raw list as a string of its own, which the
// table keeps as its key.
func (c *scopeLists) keep(raw string, list []string) []string {
	list = list[:len(list):len(list)]
	if len(raw) > scopeListMaxLen || !c.admit.admits() {
		return list
	}
	if !makeRoom(&c.m, scopeListMaxEntries, 64, &c.admit) {
		return list
	}
	c.m[raw] = list
	return list
}

// split returns the scopes of a space-separated list, cached.
func (c *scopeLists) split(raw []byte) []string {
	if len(raw) == 0 {
		return nil
	}
	if l, ok := c.lookup(raw); ok {
		return l
	}
	s := string(raw) // the scopes are its substrings, and the table's key
	l := SplitScopes(s, make([]string, 0, countFields(raw)))
	if len(l) == 0 {
		l = nil
	}
	return c.keep(s, l)
}

func countFields(b []byte) int {
	n, in := 0, false
	for _, c := range b {
		if c == ' ' {
			in = false
		} else if !in {
			in = true
			n++
		}
	}
	return n
}
