package daemon

import (
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/rules"
)

// TestReloadPendingRestart checks that a reload which finds a
// restart-only setting changed keeps the one in force, says so in
// scopewatch_config_pending_restart, and clears it once the file agrees
// with what runs again.
func TestReloadPendingRestart(t *testing.T) {
	m := newReloadMetrics(prometheus.NewRegistry())
	r := &Daemon{log: slog.New(slog.NewTextHandler(io.Discard, nil)), reloadM: m}
	old := &rules.Config{Store: "/var/lib/scopewatch/scopewatch.db", Listen: "127.0.0.1:9464"}
	if got := testutil.ToFloat64(m.pendingRestart); got != 0 {
		t.Fatalf("pending restart at start = %v, want 0", got)
	}
	next := &rules.Config{Store: old.Store, Listen: "0.0.0.0:9464"}
	r.keepRestartOnly(old, next)
	if next.Listen != old.Listen {
		t.Errorf("listen after reload = %q, want the one in force %q", next.Listen, old.Listen)
	}
	if got := testutil.ToFloat64(m.pendingRestart); got != 1 {
		t.Errorf("pending restart after a changed listen = %v, want 1", got)
	}
	r.keepRestartOnly(old, &rules.Config{Store: old.Store, Listen: old.Listen})
	if got := testutil.ToFloat64(m.pendingRestart); got != 0 {
		t.Errorf("pending restart once the file agrees again = %v, want 0", got)
	}
}
