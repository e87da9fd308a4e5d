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

// interner maps byte strings to shared string values: subjects in a
// table of their own, everything else in m.
type interner struct {
	m, subjects map[string]string
}

// bytes returns b as a string, shared with earlier calls for equal b.
func (t *interner) bytes(b []byte) string {
	return intern(&t.m, b, internMaxEntries)
}

// subject returns a subject (a user id or name) as a string, shared with
// earlier calls for equal b.
func (t *interner) subject(b []byte) string {
	return intern(&t.subjects, b, subjectMaxEntries)
}

// intern looks b up in *m, a table of at most max entries emptied when
// full.
func intern(m *map[string]string, b []byte, max int) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := (*m)[string(b)]; ok {
		return s
	}
	if len(b) > internMaxLen {
		return string(b)
	}
	if *m == nil {
		*m = make(map[string]string, 256)
	} else if len(*m) >= max {
		clear(*m)
	}
	s := string(b)
	(*m)[s] = s
	return s
}

// scopeLists maps a raw scope list (a space-separated string or the text
// of a JSON array) to its split form. The slices it returns are shared
// between events and have len == cap, so an append by a consumer copies;
// consumers must not modify their elements in place.
type scopeLists struct {
	m map[string][]string
}

// lookup returns the cached split of raw.
func (c *scopeLists) lookup(raw []byte) ([]string, bool) {
	l, ok := c.m[string(raw)]
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
	if len(raw) > scopeListMaxLen {
		return list
	}
	if c.m == nil {
		c.m = make(map[string][]string, 64)
	} else if len(c.m) >= scopeListMaxEntries {
		clear(c.m)
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
