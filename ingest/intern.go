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
	// internMaxLen is the longest value worth interning; longer values are
	// copied each time so that one odd line cannot pin much memory.
	internMaxLen = 256
	// scopeListMaxEntries bounds the table of split scope lists.
	scopeListMaxEntries = 1 << 14
	// scopeListMaxLen is the longest scope string whose split is kept.
	scopeListMaxLen = 4096
)

// interner maps byte strings to shared string values.
type interner struct {
	m map[string]string
}

// bytes returns b as a string, shared with earlier calls for equal b.
func (t *interner) bytes(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if s, ok := t.m[string(b)]; ok {
		return s
	}
	if len(b) > internMaxLen {
		return string(b)
	}
	if t.m == nil {
		t.m = make(map[string]string, 256)
	} else if len(t.m) >= internMaxEntries {
		clear(t.m)
	}
	s := string(b)
	t.m[s] = s
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
	list = list[:len(list):len(list)]
	if len(raw) > scopeListMaxLen {
		return list
	}
	if c.m == nil {
		c.m = make(map[string][]string, 64)
	} else if len(c.m) >= scopeListMaxEntries {
		clear(c.m)
	}
	c.m[string(raw)] = list
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
	s := string(raw)
	l := SplitScopes(s, make([]string, 0, countFields(raw)))
	if len(l) == 0 {
		l = nil
	}
	return c.store(raw, l)
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
