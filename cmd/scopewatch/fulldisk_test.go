package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/store"
)

// TestFullDiskStaysUp runs the real daemon with its store on a small
// tmpfs, fills the file system, and checks that the daemon stays up while
// its commits fail (/readyz 503, scopewatch_store_commit_failing 1, the
// process alive), then, once space is freed, commits what it held and
// what came meanwhile, every count exact.
func TestFullDiskStaysUp(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("the full-disk test mounts a tmpfs, which needs root, and CI is set")
		}
		t.Skip("mounting a tmpfs needs root; set CI=1 to make this a failure")
	}
	bin := scopewatchBinary(t)
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk")
	if err := os.Mkdir(disk, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", disk, "tmpfs", 0, "size=2m"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount a tmpfs for the full-disk test: %v", err)
		}
		t.Skipf("cannot mount a tmpfs here (%v); set CI=1 to make this a failure", err)
	}
	t.Cleanup(func() { syscall.Unmount(disk, syscall.MNT_DETACH) })

	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules)
	cfg := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfg, fmt.Sprintf("store: %[2]s/scopewatch.db\nlisten: 127.0.0.1:0\nrules: %[1]s/rules.yaml\n"+
		"batch: {max_events: 1000, max_delay: 50ms}\nsources:\n  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}\n", dir, disk))
	gt := &geoTraffic{dir: dir}
	at := time.Now().UTC().Add(-time.Hour)
	for i := range 20 {
		gt.token(t, at.Add(time.Duration(i)*time.Second), "lab-portal", "10.0.0.5")
	}
	d := startGeoDaemon(t, bin, cfg)
	d.waitCommitted(t, 20)

	// Fill the file system, then log grants of many new clients: their
	// records need pages the store has not got.
	filler := filepath.Join(disk, "filler")
	fill(t, filler)
	for i := range 400 {
		gt.token(t, at.Add(time.Minute+time.Duration(i)*time.Millisecond), fmt.Sprintf("client-%03d-%s", i, "padding-to-make-the-record-bigger"), "10.0.0.6")
	}
	d.poll(t, "commits fail and the daemon says so", func() (bool, string) {
		v, last := d.metric("scopewatch_store_commit_failing")
		code, _, _ := d.get("/readyz")
		return v == 1 && code == http.StatusServiceUnavailable, fmt.Sprintf("%s, /readyz %d", last, code)
	})
	if code, _, err := d.get("/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz while the disk is full: %d %v", code, err)
	}
	if v, _ := d.metric("scopewatch_store_commit_errors_total"); v < 1 {
		t.Errorf("scopewatch_store_commit_errors_total = %v while commits fail", v)
	}
	for i := range 10 { // more lines while the batch is held
		gt.token(t, at.Add(2*time.Minute+time.Duration(i)*time.Second), "lab-portal", "10.0.0.5")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	d.waitCommitted(t, gt.lines)
	d.poll(t, "ready again", func() (bool, string) {
		v, last := d.metric("scopewatch_store_commit_failing")
		code, _, _ := d.get("/readyz")
		return v == 0 && code == http.StatusOK, fmt.Sprintf("%s, /readyz %d", last, code)
	})
	d.stop(t)

	db, err := store.Open(filepath.Join(disk, "scopewatch.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srcs, err := db.Sources()
	if err != nil || len(srcs) != 1 || srcs[0].Lines != 430 {
		t.Fatalf("sources %+v, %v; want keycloak with 430 lines", srcs, err)
	}
	c, ok, err := db.Client("lab-portal")
	if err != nil || !ok || c.Scopes["view_lab_results"].Granted.N != 30 {
		t.Errorf("lab-portal granted view_lab_results %d times, want exactly 30", c.Scopes["view_lab_results"].Granted.N)
	}
	cs, err := db.Clients()
	if err != nil || len(cs) != 401 {
		t.Errorf("%d clients, %v; want 401", len(cs), err)
	}
}

// fill writes to path until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			if pe, ok := err.(*os.PathError); ok && pe.Err == syscall.ENOSPC {
				return
			}
			t.Fatalf("fill %s: %v", path, err)
		}
	}
}
