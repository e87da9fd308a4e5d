package store

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestCommitReleasesMappedPages rewrites every client of a store of
// several MiB, and walks them all, and checks that the pages of the file
// the process has mapped stay few: a checkpoint of every client visited
// every leaf, and without releasing them the whole file stayed resident.
// The stores are of many small records, and of fewer than 1,024 large
// ones, which a release counted in records (every 1,024) left resident
// until the commit ended.
func TestCommitReleasesMappedPages(t *testing.T) {
	for _, tc := range []struct {
		name                  string
		clients, scopes, addr int
	}{
		{"many small records", 3000, 30, 40},
		{"few large records", 1000, 200, 64},
	} {
		t.Run(tc.name, func(t *testing.T) {
			commitReleasesMappedPages(t, tc.clients, tc.scopes, tc.addr)
		})
	}
}

func commitReleasesMappedPages(t *testing.T, clients, scopes, addrs int) {
	db, path := newTestDB(t)
	st := NewState(db, 0)
	checkpoint := func(round int) {
		for i := range clients {
			c := st.Client(name(i))
			c.Seen.Add(1, at(time.Duration(round)*time.Hour))
			for s := range scopes {
				c.CountScope("scope/"+strconv.Itoa(s), ScopeUsed, 1, at(time.Duration(round)*time.Hour))
			}
			for a := range addrs {
				c.SawIP(ipOf(a+round), at(time.Duration(round)*time.Hour))
			}
		}
		b := NewBatch()
		st.Checkpoint(b)
		if err := db.Commit(b); err != nil {
			t.Fatal(err)
		}
	}
	// Every record replaced, each time reading every leaf through the
	// map; the rounds after the first two grow the file no more, so the
	// map is not made again (which would drop its pages anyway).
	var inside int64 // the largest resident part of the map inside a checkpoint's transaction
	db.beforeCommit = func(*bolt.Tx) error {
		inside = max(inside, mappedRSS(t, path))
		return nil
	}
	for round := range 4 {
		checkpoint(round)
	}
	db.beforeCommit = nil
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	const bound = 2 << 20
	if fi.Size() < 4*bound {
		t.Fatalf("store of %d bytes: too small to tell", fi.Size())
	}
	// Inside the transaction, the leaves of the records put since the last
	// release (under releaseBytes of them, about 1 MiB of leaves) and the
	// branches above them, where the leaves of every client took 6 MiB
	// and more.
	if want := int64(4 << 20); inside > want {
		t.Errorf("inside a checkpoint of every client, %d bytes of the file were resident in the map; want at most %d", inside, want)
	}
	if rss := mappedRSS(t, path); rss > bound {
		t.Errorf("after rewriting every client, %d bytes of the %d-byte file are resident in the map; want at most %d", rss, fi.Size(), bound)
	}
	n := 0
	if err := db.ForEachClient(func(Client) error { n++; return nil }); err != nil || n != clients {
		t.Fatalf("walked %d clients (%v), want %d", n, err, clients)
	}
	if rss := mappedRSS(t, path); rss > bound {
		t.Errorf("after walking every client, %d bytes of the file are resident in the map; want at most %d", rss, bound)
	}
}

// mappedRSS returns the resident bytes of this process's maps of path,
// from /proc/self/smaps.
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	data, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		t.Skipf("no /proc/self/smaps: %v", err)
	}
	var total int64
	in := false
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":") {
			in = len(f) >= 6 && f[len(f)-1] == path
			found = found || in
			continue
		}
		if in && len(f) == 3 && (f[0] == "Rss:" || f[0] == "FilePmdMapped:" || f[0] == "ShmemPmdMapped:") {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("smaps line %q: %v", line, err)
			}
			if f[0] != "Rss:" {
				if kb > 0 {
					t.Skipf("%s is mapped in huge pages (%s): its pages are resident 2 MiB at a time", path, line)
				}
				continue
			}
			total += kb << 10
		}
	}
	if !found {
		t.Fatalf("no map of %s in /proc/self/smaps", path)
	}
	return total
}
