package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/scopewatch/scopewatch/store"
)

// damagedStoreConfig writes a good store through the store package, a
// config pointing at it (with no daemon listening) and returns both
// paths.
func damagedStoreConfig(t *testing.T) (cfgPath, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "scopewatch.db")
	db, err := store.Open(dbPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	b := store.NewBatch()
	st := store.NewState(db, 0)
	for i := range 400 {
		c := st.Client(fmt.Sprintf("client-%03d", i))
		c.Seen.Add(1, at)
		for s := range 6 {
			c.CountScope(fmt.Sprintf("patient/Resource%d.read", s), store.ScopeGranted, 2, at)
		}
	}
	*b.Source("keycloak") = store.SourceDelta{Lines: 400}
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	cfgPath = filepath.Join(dir, "scopewatch.yaml")
	write(t, cfgPath, "store: "+dbPath+"\nlisten: 127.0.0.1:1\nsources:\n  - {name: keycloak, path: "+dir+"/kc.log, format: keycloak}\n")
	return cfgPath, dbPath
}

// flipClientsRoot overwrites the type flags in the header of the root
// page of the clients bucket, and returns that page.
func flipClientsRoot(t *testing.T, dbPath string) int64 {
	t.Helper()
	bdb, err := bolt.Open(dbPath, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var root int64
	_ = bdb.View(func(tx *bolt.Tx) error { root = int64(tx.Bucket([]byte("clients")).Root()); return nil })
	ps := int64(bdb.Info().PageSize)
	bdb.Close()
	f, err := os.OpenFile(dbPath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0xff, 0xff}, root*ps+8); err != nil {
		t.Fatal(err)
	}
	return root
}

// corruptClientRecords overwrites, in place, the format byte of n client
// records (every copy of each in the file).
func corruptClientRecords(t *testing.T, dbPath string, n int) {
	t.Helper()
	bdb, err := bolt.Open(dbPath, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var kvs [][]byte
	_ = bdb.View(func(tx *bolt.Tx) error {
		c := tx.Bucket([]byte("clients")).Cursor()
		for k, v := c.First(); k != nil && len(kvs) < n; k, v = c.Next() {
			kvs = append(kvs, append(append([]byte(nil), k...), v...))
		}
		return nil
	})
	bdb.Close()
	data, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		klen := len("client-000")
		i := bytes.Index(data, kv)
		if i < 0 {
			t.Fatalf("record %q not in the file", kv[:klen])
		}
		for ; i >= 0; i = bytes.Index(data, kv) {
			data[i+klen] = 0x7e
		}
	}
	if err := os.WriteFile(dbPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

const damagedSays = "): restore it from a backup, see README Backup"

// TestCheckCommand checks a sound store (exit 0), then damaged ones: a
// flipped page header, a file cut to half its size and 16 corrupt
// records; check lists the problems and exits 1, and run and clients
// exit 1 with the message, never a stack.
func TestCheckCommand(t *testing.T) {
	t.Parallel()
	cfgPath, _ := damagedStoreConfig(t)
	code, out, errOut := runCmd(t, "check", "--config", cfgPath)
	if code != exitOK || !strings.Contains(out, "bucket clients       400 records decoded") || !strings.Contains(out, "no problems found") || errOut != "" {
		t.Fatalf("check of a sound store: exit %d\n%s%s", code, out, errOut)
	}

	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, dbPath string) string // returns what check must print
		opens   bool                                     // whether Open succeeds: the damage is in records
		records int
	}{
		{"page header", func(t *testing.T, p string) string {
			root := flipClientsRoot(t, p)
			return fmt.Sprintf("page %d, bucket clients: bbolt: assertion failed: page %d: has unexpected type/flags: ffff", root, root)
		}, false, 0},
		{"half size", func(t *testing.T, p string) string {
			// Half the pages in use: half the file can still hold
			// them all, as bbolt grows files in steps.
			bdb, err := bolt.Open(p, 0o600, &bolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			var size int64
			_ = bdb.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil })
			bdb.Close()
			if err := os.Truncate(p, size/2); err != nil {
				t.Fatal(err)
			}
			return "it was cut short"
		}, false, 0},
		{"16 records", func(t *testing.T, p string) string {
			corruptClientRecords(t, p, 16)
			return `bucket clients, key "client-015": record format 126, want 6: corrupt record`
		}, true, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfgPath, dbPath := damagedStoreConfig(t)
			says := tc.damage(t, dbPath)
			code, out, errOut := runCmd(t, "check", "--config", cfgPath)
			if code != exitError || !strings.Contains(out, says) || !strings.Contains(errOut, "scopewatch check: store "+dbPath+" is damaged (") {
				t.Errorf("check: exit %d, want 1 and %q\n%s%s", code, says, out, errOut)
			}
			if tc.records > 0 && !strings.Contains(out, fmt.Sprintf("%d problems:\n", tc.records)) {
				t.Errorf("check found other than %d problems:\n%s", tc.records, out)
			}
			code, _, errOut = runCmd(t, "clients", "--config", cfgPath)
			if code != exitError || !strings.Contains(errOut, "store "+dbPath+" is damaged (") || !strings.HasSuffix(errOut, damagedSays+"\n") {
				t.Errorf("clients: exit %d, %s", code, errOut)
			}
			if tc.opens {
				return // the daemon starts, and stops at the first commit of a damaged client
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var o, e bytes.Buffer
			code = dispatch(ctx, []string{"run", "--config", cfgPath}, &o, &e)
			if code != exitError || !strings.Contains(e.String(), "store "+dbPath+" is damaged (") || strings.Contains(e.String(), "goroutine ") {
				t.Errorf("run: exit %d, %s", code, e.String())
			}
		})
	}
}

// TestCheckCommandRefuses checks what check says of a store it cannot
// check: an empty file and a foreign bbolt file.
func TestCheckCommandRefuses(t *testing.T) {
	t.Parallel()
	cfgPath, dbPath := damagedStoreConfig(t)
	if err := os.Truncate(dbPath, 0); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "check", "--config", cfgPath)
	if code != exitError || !strings.Contains(errOut, "store "+dbPath+" is empty: no daemon has written it yet") {
		t.Errorf("check of an empty store: exit %d, %s", code, errOut)
	}
	code, _, errOut = runCmd(t, "clients", "--config", cfgPath)
	if code != exitError || !strings.Contains(errOut, "is empty: no daemon has written it yet") {
		t.Errorf("clients on an empty store: exit %d, %s", code, errOut)
	}
	if err := os.Remove(dbPath); err != nil {
		t.Fatal(err)
	}
	bdb, err := bolt.Open(dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = bdb.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("meta")); return err })
	bdb.Close()
	code, _, errOut = runCmd(t, "check", "--config", cfgPath)
	if code != exitError || !strings.Contains(errOut, "no scopewatch schema marker") || !strings.Contains(errOut, dbPath) {
		t.Errorf("check of a foreign file: exit %d, %s", code, errOut)
	}
}
