package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/store"
)

// storeDigest is what a copy of the store must keep: every source's
// counts and every client's scopes.
func storeDigest(t *testing.T, path string) (sources []store.Source, clients []string) {
	t.Helper()
	db, err := store.Open(path, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if sources, err = db.Sources(); err != nil {
		t.Fatal(err)
	}
	cs, err := db.Clients()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		for name, u := range c.Scopes {
			clients = append(clients, c.ID+" "+name+" "+u.Granted.Last.Format(time.RFC3339Nano))
		}
	}
	slices.Sort(clients)
	return sources, clients
}

// TestBackupAndCompact backs the store up through the running daemon and
// from the file, refuses to compact under a running daemon, and compacts
// a stopped one keeping the data, the mode and a smaller or equal size.
func TestBackupAndCompact(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	addr, p, stop := startDaemon(t, dir)
	writeDemoTraffic(t, dir, p, 3, mustTime("2026-06-01T00:00:00Z"), 2000, "")
	cfgPath := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfgPath, strings.Replace(sprintfConfig(dir), "127.0.0.1:0", addr, 1))
	dbPath := filepath.Join(dir, "scopewatch.db")

	live := filepath.Join(dir, "live.db")
	code, out, errOut := runCmd(t, "backup", "--config", cfgPath, "--output", live)
	if code != exitOK || !strings.Contains(out, "from the running daemon") {
		t.Fatalf("backup through the daemon: exit %d, %q %s", code, out, errOut)
	}
	if fi, err := os.Stat(live); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v, mode %v; want 0600", err, fi.Mode())
	}
	if code, _, errOut := runCmd(t, "backup", "--config", cfgPath, "--output", live); code != exitConfig || !strings.Contains(errOut, "exists") {
		t.Errorf("backup over an existing file: exit %d, %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "compact", "--config", cfgPath); code != exitError || !strings.Contains(errOut, "in use by pid") {
		t.Errorf("compact under a running daemon: exit %d, %s", code, errOut)
	}
	stop()

	wantSrc, wantClients := storeDigest(t, dbPath)
	if len(wantClients) == 0 {
		t.Fatal("no clients in the store")
	}
	gotSrc, gotClients := storeDigest(t, live)
	if !slices.Equal(gotClients, wantClients) || !slices.EqualFunc(gotSrc, wantSrc, func(a, b store.Source) bool { return a.Name == b.Name && a.Lines == b.Lines }) {
		t.Errorf("the daemon's backup differs from the store:\n%v\n%v", gotSrc, wantSrc)
	}

	offline := filepath.Join(dir, "offline.db")
	code, out, errOut = runCmd(t, "backup", "--config", cfgPath, "--output", offline)
	if code != exitOK || !strings.Contains(out, "from "+dbPath) {
		t.Fatalf("backup from the file: exit %d, %q %s", code, out, errOut)
	}
	if _, c := storeDigest(t, offline); !slices.Equal(c, wantClients) {
		t.Error("the file's backup differs from the store")
	}

	if err := os.Chmod(dbPath, 0o640); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(dbPath)
	code, out, errOut = runCmd(t, "compact", "--config", cfgPath)
	if code != exitOK || !strings.HasPrefix(out, "compacted "+dbPath+": ") {
		t.Fatalf("compact: exit %d, %q %s", code, out, errOut)
	}
	after, err := os.Stat(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if after.Mode().Perm() != 0o640 || after.Size() > before.Size() {
		t.Errorf("compacted store: mode %v, %d bytes (was %d); want 0640 and no bigger", after.Mode(), after.Size(), before.Size())
	}
	if _, err := os.Stat(dbPath + ".compact"); !os.IsNotExist(err) {
		t.Errorf("the temporary copy is left: %v", err)
	}
	if src, c := storeDigest(t, dbPath); !slices.Equal(c, wantClients) || len(src) != len(wantSrc) {
		t.Error("compaction changed the data")
	}
}

// TestCompactRefusesDamaged checks that compact refuses a store that fails
// the check (a flipped page header, 16 corrupt records) before writing
// anything: the store keeps its bytes and no copy is left.
func TestCompactRefusesDamaged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dbPath string)
		says   string
	}{
		{"page header", func(t *testing.T, p string) { flipClientsRoot(t, p) }, "bucket clients: bbolt: assertion failed"},
		{"16 records", func(t *testing.T, p string) { corruptClientRecords(t, p, 16) }, `16 problems, the first: bucket clients, key "client-000": record format 126, want 6`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfgPath, dbPath := damagedStoreConfig(t)
			tc.damage(t, dbPath)
			before, err := os.ReadFile(dbPath)
			if err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCmd(t, "compact", "--config", cfgPath)
			if code != exitError || out != "" || !strings.Contains(errOut, "refused: the store fails the check, nothing was written") ||
				!strings.Contains(errOut, "store "+dbPath+" is damaged (") || !strings.Contains(errOut, tc.says) {
				t.Errorf("compact of a damaged store: exit %d, %q, %s", code, out, errOut)
			}
			if after, _ := os.ReadFile(dbPath); !slices.Equal(after, before) {
				t.Error("compact changed the damaged store")
			}
			if _, err := os.Stat(dbPath + ".compact"); !os.IsNotExist(err) {
				t.Errorf("compact left a copy: %v", err)
			}
		})
	}
}
