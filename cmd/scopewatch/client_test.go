package main

import (
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/store"
)

// TestClientFlagUnknown checks that --client naming a client the store has
// not seen and the rules do not register is an error in every command
// that takes it, from the store file and through the daemon, while a known
// client with nothing to show prints an empty result.
func TestClientFlagUnknown(t *testing.T) {
	cfgPath := reportFixture(t)
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// A client that uses everything it holds: its unused report is empty.
	db, err := store.Open(cfg.Store, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	b := store.NewBatch()
	st := store.NewState(db, 0)
	c := st.Client("all-used")
	c.Seen.Add(1, now.Add(-200*24*time.Hour))
	c.Seen.Add(1, now.Add(-time.Hour))
	c.CountScope("view_lab_results", store.ScopeGranted, 1, now.Add(-time.Hour))
	c.CountScope("view_lab_results", store.ScopeUsed, 1, now.Add(-time.Hour))
	st.Checkpoint(b)
	if err := db.Commit(b); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	const unknown = `unknown client "lab-portl": no log line has named it and the rules do not register it`
	tests := []struct {
		name   string
		cmd    []string
		flags  []string
		code   int
		stdout string // contained in stdout
		stderr string // contained in stderr
	}{
		{"report unused, misspelled", []string{"report", "unused"}, []string{"--client", "lab-portl"}, exitError, "", unknown},
		{"report unused, misspelled, csv", []string{"report", "unused"}, []string{"--client", "lab-portl", "--format", "csv"}, exitError, "", unknown},
		{"report unused, nothing unused", []string{"report", "unused"}, []string{"--client", "all-used"}, exitOK, "No unused scopes.", ""},
		{"report unused, registered, never seen", []string{"report", "unused"}, []string{"--client", "billing"}, exitOK, "billing", ""},
		{"findings, misspelled", []string{"findings"}, []string{"--client", "lab-portl"}, exitError, "", unknown},
		{"findings, seen, none", []string{"findings"}, []string{"--client", "ehr-sync"}, exitOK, "No findings.", ""},
		{"findings, registered, never seen", []string{"findings"}, []string{"--client", "billing", "--state", "all"}, exitOK, "No findings.", ""},
		{"clients, misspelled", []string{"clients"}, []string{"--client", "lab-portl"}, exitError, "", unknown},
		{"clients, registered, never seen", []string{"clients"}, []string{"--client", "billing"}, exitError, "",
			`client "billing" has not been seen: the rules register it, but no log line has named it yet`},
		{"clients, seen", []string{"clients"}, []string{"--client", "all-used"}, exitOK, "view_lab_results", ""},
	}
	check := func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				args := append(append(slices.Clone(tt.cmd), "--config", cfgPath), tt.flags...)
				code, out, errOut := runCmd(t, args...)
				if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errOut, tt.stderr) {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
						code, out, errOut, tt.code, tt.stdout, tt.stderr)
				}
			})
		}
	}
	t.Run("file", check)

	// The same through a daemon's API.
	ro, err := store.Open(cfg.Store, store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(asOperator(t, newAPI(apiPipeline(cfg, ro))))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	t.Run("daemon", check)
}
