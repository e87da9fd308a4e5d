package store

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"
)

// FuzzDecodeClient decodes arbitrary bytes as a client record, of any
// format, against the scope names of the seeds' store: a record that is
// not one fails with ErrCorrupt and never panics. One that decodes is
// held in a State and encoded again as format 6, which decodes, holds
// only what the record held with the same counts, and encodes again to
// the same bytes. (A State drops an address of an older format that does
// not parse, and holds instants from 1678 to 2262 only, so the times
// and addresses of the first encoding may differ from the input's.)
func FuzzDecodeClient(f *testing.F) {
	fb := fullBatch()
	names := fb.ScopeNames
	v6 := fb.Records[0].Value
	f.Add(v6)
	if v4, err := selfContained(names, v6); err == nil {
		f.Add(v4)
	}
	f.Add(formatV5(f, names, v6))
	f.Fuzz(func(t *testing.T, v []byte) {
		c, err := decodeClient(names, "fuzzed", v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		st := NewState(nil, 0)
		for _, n := range names {
			st.ScopeNumber(n) // the store's numbers, as a State opened on it has
		}
		encode := func(c Client) []byte {
			cs := &ClientState{state: st, id: c.ID}
			st.fill(cs, c)
			return st.appendRecord(nil, cs)
		}
		again := encode(c)
		c2, err := decodeClient(st.names, "fuzzed", again)
		if err != nil {
			t.Fatalf("re-encoded record does not decode: %v\n%x", err, again)
		}
		if third := encode(c2); !bytes.Equal(third, again) {
			t.Fatalf("encoding is not stable:\n%x\n%x", again, third)
		}
		if c2.Seen.N != c.Seen.N || c2.Issued.N != c.Issued.N || len(c2.Scopes) != len(c.Scopes) || len(c2.Countries) != len(c.Countries) {
			t.Fatalf("round trip changed the client:\n got %+v\nwant %+v", c2, c)
		}
		for name, u := range c2.Scopes {
			if w, ok := c.Scopes[name]; !ok || u.Requested.N != w.Requested.N || u.Granted.N != w.Granted.N || u.Used.N != w.Used.N {
				t.Fatalf("scope %q: %+v, want %+v", name, u, w)
			}
		}
		for name, n := range c2.Countries {
			if w, ok := c.Countries[name]; !ok || n.N != w.N {
				t.Fatalf("country %q: %+v, want %+v", name, n, w)
			}
		}
		for text, n := range c2.IPs {
			a := netip.MustParseAddr(text)
			found := false
			for wt, w := range c.IPs {
				if wa, err := netip.ParseAddr(wt); err == nil && wa == a && w.N == n.N {
					found = true
				}
			}
			if !found {
				t.Fatalf("address %s (%+v) not in the record: %v", text, n, c.IPs)
			}
		}
	})
}

// FuzzDecodeSnapshot decodes arbitrary bytes as a partition's changelog,
// which a Kafka topic brings: a partition record and one client's state.
// What does not decode fails with ErrCorrupt and never panics; what does
// holds only clients whose records a State can number and write again.
func FuzzDecodeSnapshot(f *testing.F) {
	fb := fullBatch()
	rec, err := selfContained(fb.ScopeNames, fb.Records[0].Value)
	if err != nil {
		f.Fatal(err)
	}
	state := append([]byte{clientStateFormat}, appendString(nil, rec)...)
	state = append(state, 0, 0, 0) // no findings, windows or groups
	var pos Position
	for _, p := range fb.Positions {
		pos = p
	}
	partition, err := EncodePartition(pos, []Span{{Start: at(0), End: at(time.Hour)}}, 7)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(partition, state)
	f.Add(partition, append([]byte{1}, state[1:len(state)-1]...)) // format 1: no groups
	key := PositionKey{Source: pos.Source, File: pos.File}
	f.Fuzz(func(t *testing.T, partition, state []byte) {
		s, err := DecodeSnapshot(key, partition, map[string][]byte{"ehr-app": state})
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		st := NewState(nil, 0)
		for _, c := range s.Clients {
			cs := &ClientState{state: st, id: c.ID}
			st.fill(cs, c)
			if _, err := decodeClient(st.names, c.ID, st.appendRecord(nil, cs)); err != nil {
				t.Fatalf("client %q restored, then written as a record that does not decode: %v", c.ID, err)
			}
		}
		for _, name := range st.names {
			if name == "" {
				t.Fatalf("restored a scope without a name: %q", st.names)
			}
		}
	})
}
