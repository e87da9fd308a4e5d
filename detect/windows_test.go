package detect

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// restart flushes h's windows as a commit would, and returns new
// detectors that load them after the clients' baselines were rebuilt by
// rebuild, as the daemon does at start.
func restart(t *testing.T, h *harness, cfg rules.Detect, rebuild func(h *harness)) *harness {
	t.Helper()
	b := store.NewBatch()
	h.d.FlushWindows(b)
	h2 := newHarness(t, cfg, nil)
	h2.now = h.now
	rebuild(h2)
	h2.d.LoadWindows(decodeWindows(t, b.Windows), time.Time{})
	return h2
}

// decodeWindows decodes a batch's windows as the store reads them back.
func decodeWindows(t *testing.T, windows map[string][]byte) map[string][]int64 {
	t.Helper()
	out := make(map[string][]int64, len(windows))
	for k, v := range windows {
		if v == nil {
			continue
		}
		times, err := store.DecodeWindow(v)
		if err != nil {
			t.Fatalf("window %q: %v", k, err)
		}
		out[k] = times
	}
	return out
}

// TestWindowsResumeProbing counts four refusals, restarts, and counts the
// fifth: the window resumes, for the client and for the address.
func TestWindowsResumeProbing(t *testing.T) {
	cfg := testDetect()
	deny := func(at time.Time) ingest.Event {
		return ingest.Event{Kind: ingest.KindDeny, Client: "lab-portal", Time: at, Reason: "invalid_scope",
			IP: netip.MustParseAddr("203.0.113.9"), Requested: []string{"openid"}}
	}
	h := newHarness(t, cfg, nil)
	h.observe(grant("lab-portal", t0, "openid"))
	for i := range 4 {
		h.observe(deny(t0.Add(time.Duration(i+1) * time.Minute)))
	}
	h.want(nil)
	h2 := restart(t, h, cfg, func(h *harness) { h.observe(grant("lab-portal", t0, "openid")) })
	h2.observe(deny(t0.Add(5 * time.Minute)))
	h2.want(map[string]string{
		"broad_request/lab-portal/probing":        store.SeverityWarning,
		"broad_request//probing from 203.0.113.9": store.SeverityWarning,
	})

	// Without the windows, the fifth refusal alone raises nothing.
	h3 := newHarness(t, cfg, nil)
	h3.observe(grant("lab-portal", t0, "openid"))
	h3.observe(deny(t0.Add(5 * time.Minute)))
	h3.want(nil)
}

// TestWindowsResumeBursts sends part of a burst from a new network and
// part of one spread over two, restarts, and sends the rest: both raise.
func TestWindowsResumeBursts(t *testing.T) {
	cfg := testDetect()
	cfg.UnfamiliarBurst.Requests = 10
	var at time.Time
	rebuild := func(h *harness) {
		h.observe(use("lab-portal", "198.51.100.7", t0))
		at = h.warm("lab-portal")
	}
	h := newHarness(t, cfg, nil)
	rebuild(h)
	for i := range 8 {
		h.observe(use("lab-portal", "192.0.2.1", at.Add(time.Duration(i)*time.Second)))
	}
	h.want(nil)
	// The daemon rebuilds the client's networks from its stored
	// addresses: the new network among them.
	h2 := restart(t, h, cfg, func(h2 *harness) {
		rebuild(h2)
		h2.observe(use("lab-portal", "192.0.2.1", at.Add(-time.Minute)))
	})
	for i := range 3 {
		h2.observe(use("lab-portal", "192.0.2.1", at.Add(time.Duration(8+i)*time.Second)))
	}
	h2.want(map[string]string{"unfamiliar_burst/lab-portal/192.0.2.0/24": store.SeverityWarning})

	// A spread burst: 6 requests from each of two new networks, 4 of
	// them after the restart.
	h = newHarness(t, cfg, nil)
	rebuild(h)
	for i := range 8 {
		h.observe(use("lab-portal", []string{"192.0.2.1", "203.0.113.1"}[i%2], at.Add(time.Duration(i)*time.Second)))
	}
	h.want(nil)
	h2 = restart(t, h, cfg, rebuild)
	for i := 8; i < 12; i++ {
		h2.observe(use("lab-portal", []string{"192.0.2.1", "203.0.113.1"}[i%2], at.Add(time.Duration(i)*time.Second)))
	}
	if f := h2.fs.Get(store.FindingKey{Kind: rules.KindUnfamiliarBurst, Client: "lab-portal", Subject: "new networks"}); f == nil {
		t.Errorf("no spread burst after the restart: %v", h2.keys())
	}
}

// TestWindowsExpireAndForget drops a window older than its length when
// loading as of now, and deletes a pruned client's windows.
func TestWindowsExpireAndForget(t *testing.T) {
	cfg := testDetect()
	h := newHarness(t, cfg, nil)
	h.observe(grant("lab-portal", t0, "openid"))
	h.observe(ingest.Event{Kind: ingest.KindDeny, Client: "lab-portal", Time: t0, Reason: "invalid_scope", IP: netip.MustParseAddr("203.0.113.9")})
	b := store.NewBatch()
	h.d.FlushWindows(b)
	if len(b.Windows) != 2 {
		t.Fatalf("windows = %v, want the client's and the address's", b.Windows)
	}
	h2 := newHarness(t, cfg, nil)
	h2.observe(grant("lab-portal", t0, "openid"))
	h2.d.LoadWindows(decodeWindows(t, b.Windows), t0.Add(time.Hour)) // both ended long before
	b2 := store.NewBatch()
	h2.d.FlushWindows(b2)
	for k, v := range b2.Windows {
		if v != nil {
			t.Errorf("window %q kept: %v", k, v)
		}
	}
	if len(b2.Windows) != 2 {
		t.Errorf("deleted %d windows, want 2", len(b2.Windows))
	}
	h.d.Forget("lab-portal")
	b3 := store.NewBatch()
	h.d.FlushWindows(b3)
	if v, ok := b3.Windows[winProbeClient+"lab-portal"]; !ok || v != nil {
		t.Errorf("a forgotten client's window: %v, %v; want it deleted", v, ok)
	}
}

// TestWindowsResumeTravel sees a subject in Boston, restarts, and sees it
// in Frankfurt an hour later: the last place was saved, by a hash of the
// subject, not the subject, and the trip is judged.
func TestWindowsResumeTravel(t *testing.T) {
	cfg := testDetect()
	cfg.ImpossibleTravel.SpeedKmh = rules.DefaultTravelSpeedKmh
	h, at := travelHarness(t, cfg)
	seen(h, "p-3f2a", "mychart-app", "198.51.100.7", at)
	b := store.NewBatch()
	h.d.FlushWindows(b)
	for k := range b.Windows {
		if strings.Contains(k, "p-3f2a") {
			t.Fatalf("window %q names the subject", k)
		}
	}
	h2, _ := travelHarness(t, cfg)
	h2.d.LoadWindows(decodeWindows(t, b.Windows), time.Time{})
	h2.d.FlushWindows(store.NewBatch()) // what the warm-up changed
	seen(h2, "p-3f2a", "mychart-app", "203.0.113.9", at.Add(time.Hour))
	if f := h2.fs.Get(store.FindingKey{Kind: rules.KindImpossibleTravel, Client: "mychart-app", Subject: "p-3f2a"}); f == nil {
		t.Fatalf("the trip across the restart raised nothing: %v", h2.keys())
	}
	// The next flush writes only the shard that changed.
	b2 := store.NewBatch()
	h2.d.FlushWindows(b2)
	var travel []string
	for k := range b2.Windows {
		if strings.HasPrefix(k, winTravelSubject) || strings.HasPrefix(k, winTravelClient) {
			travel = append(travel, k)
		}
	}
	if len(travel) != 1 {
		t.Errorf("the flush after one sighting wrote travel records %q, want the 1 shard it changed", travel)
	}

	// Without the saved place, Frankfurt alone raises nothing.
	h3, _ := travelHarness(t, cfg)
	seen(h3, "p-3f2a", "mychart-app", "203.0.113.9", at.Add(time.Hour))
	h3.wantNo(t, rules.KindImpossibleTravel)
}

// TestWindowClient checks that every window the detectors write for a
// client names it (a partition's changelog carries them with the
// client), and that those of an address or of the travellers' shards
// name none.
func TestWindowClient(t *testing.T) {
	cfg := testDetect()
	cfg.UnfamiliarBurst.Requests = 10
	h := newHarness(t, cfg, nil)
	h.observe(use("lab-portal", "198.51.100.7", t0))
	at := h.warm("lab-portal")
	for i := range 4 {
		h.observe(use("lab-portal", "192.0.2.1", at.Add(time.Duration(i)*time.Second)))
	}
	h.observe(ingest.Event{Kind: ingest.KindDeny, Client: "lab-portal", Time: at, Reason: "invalid_scope",
		IP: netip.MustParseAddr("203.0.113.9"), Requested: []string{"openid"}})
	b := store.NewBatch()
	h.d.FlushWindows(b)
	clients := map[string]int{}
	for k := range b.Windows {
		id, ok := WindowClient(k)
		switch {
		case ok:
			clients[id]++
		case strings.HasPrefix(k, winProbeClient), strings.HasPrefix(k, winBurstNet), strings.HasPrefix(k, winBurstAcross):
			t.Errorf("window %q of a client names none", k)
		}
	}
	// Refusals, requests from the new network, and across new networks.
	if len(clients) != 1 || clients["lab-portal"] != 3 {
		t.Errorf("windows by client %v (of %d windows), want 3 of lab-portal", clients, len(b.Windows))
	}
	for _, k := range []string{winProbeAddr + "203.0.113.9", winTravelSubject + "3f", winTravelClient + "3f", winBurstNet + "lab-portal"} {
		if id, ok := WindowClient(k); ok {
			t.Errorf("WindowClient(%q) = %q: a window of no one client", k, id)
		}
	}
}
