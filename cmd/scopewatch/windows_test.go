package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/report"
)

// refusal writes a Keycloak refused token request for client.
func (g *geoTraffic) refusal(t *testing.T, at time.Time, client, ip, reason string) {
	t.Helper()
	g.seq++
	c := &traffic.Client{ID: client, Granted: []string{"openid"}}
	g.buf = g.gen.KeycloakQuarkusJSON(g.buf[:0], traffic.Event{Time: at, Client: c, Grant: true, ID: g.seq, IP: ip, User: "svc-" + client, Error: reason})
	g.append(t, "kc.log", strings.TrimSuffix(string(g.buf), "\n"))
}

// windowConfig writes the configuration of a daemon that reads one
// Keycloak log of a new directory, with extra appended, and returns it and
// the writer of that log.
func windowConfig(t *testing.T, extra string) (string, *geoTraffic) {
	t.Helper()
	dir := t.TempDir()
	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules)
	cfg := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfg, fmt.Sprintf("store: %[1]s/scopewatch.db\nlisten: 127.0.0.1:0\nrules: %[1]s/rules.yaml\n"+
		"batch: {max_delay: 50ms}\nsources:\n  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}\n", dir)+extra)
	return cfg, &geoTraffic{dir: dir}
}

// TestProbingWindowSurvivesKill has the real daemon count four of the
// five refusals that make probing, kills it with SIGKILL once they are
// committed, appends the fifth and starts it again: the window was saved
// with the lines that filled it, so the fifth refusal raises the finding,
// for the client and for its address.
func TestProbingWindowSurvivesKill(t *testing.T) {
	t.Parallel()
	bin := scopewatchBinary(t)
	cfg, gt := windowConfig(t, "")
	at := time.Now().UTC().Add(-time.Minute)
	gt.token(t, at, "lab-portal", "203.0.113.9")
	for i := range 4 {
		gt.refusal(t, at.Add(time.Duration(i+1)*time.Second), "lab-portal", "203.0.113.9", "invalid_scope")
	}
	d := startGeoDaemon(t, bin, cfg)
	d.waitCommitted(t, gt.lines)
	if fs := standing(t, d, "broad_request"); fs["lab-portal/probing"] || fs["/probing from 203.0.113.9"] {
		t.Fatalf("four refusals raised %v", fs)
	}
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.done

	gt.refusal(t, at.Add(5*time.Second), "lab-portal", "203.0.113.9", "invalid_scope")
	d = startGeoDaemon(t, bin, cfg)
	d.waitCommitted(t, gt.lines)
	d.poll(t, "both probing findings", func() (bool, string) {
		fs := standing(t, d, "broad_request")
		return fs["lab-portal/probing"] && fs["/probing from 203.0.113.9"], fmt.Sprint(fs)
	})
}

// standing returns the standing findings of kind as client/subject.
func standing(t *testing.T, d *geoDaemon, kind string) map[string]bool {
	t.Helper()
	code, body, err := d.get("/api/v1/findings?kind=" + kind)
	if err != nil || code != http.StatusOK {
		t.Fatalf("/api/v1/findings: %d %v %s", code, err, body)
	}
	var fs []report.FindingView
	if err := json.Unmarshal(body, &fs); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fs {
		out[f.Client+"/"+f.Subject] = true
	}
	return out
}

// TestBurstWindowSurvivesKill has the real daemon count eight of the
// eleven requests from a new network that make a burst, kills it with
// SIGKILL once they are committed, appends the other three and starts it
// again: the burst is raised.
func TestBurstWindowSurvivesKill(t *testing.T) {
	t.Parallel()
	bin := scopewatchBinary(t)
	cfg, gt := windowConfig(t, "detect:\n  unfamiliar_burst: {requests: 10, window: 5m, new_for: 24h, baseline: {learning_period: 1h, min_events: 5}}\n")
	now := time.Now().UTC()
	for i := range 6 { // the baseline: one network, two hours ago
		gt.token(t, now.Add(-3*time.Hour+time.Duration(i)*time.Minute), "lab-portal", "198.51.100.7")
	}
	at := now.Add(-time.Minute)
	for i := range 8 {
		gt.token(t, at.Add(time.Duration(i)*time.Second), "lab-portal", "192.0.2.1")
	}
	d := startGeoDaemon(t, bin, cfg)
	d.waitCommitted(t, gt.lines)
	if f := standing(t, d, "unfamiliar_burst"); len(f) != 0 {
		t.Fatalf("eight requests raised %v", f)
	}
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.done

	for i := 8; i < 11; i++ {
		gt.token(t, at.Add(time.Duration(i)*time.Second), "lab-portal", "192.0.2.1")
	}
	d = startGeoDaemon(t, bin, cfg)
	d.waitCommitted(t, gt.lines)
	d.poll(t, "the burst", func() (bool, string) {
		f := standing(t, d, "unfamiliar_burst")
		return f["lab-portal/192.0.2.0/24"], fmt.Sprint(f)
	})
}

// TestTravelSurvivesKill has the real daemon see a user in the United
// States, kills it with SIGKILL once that is committed, and starts it again
// on a line from Brazil minutes later: the last place was saved with the
// line that set it, so the trip is judged impossible.
func TestTravelSurvivesKill(t *testing.T) {
	t.Parallel()
	bin := scopewatchBinary(t)
	cfg, gt := windowConfig(t, "detect:\n  unfamiliar_geo: {learning_period: 1h, min_events: 5}\n")
	city := filepath.Join(gt.dir, "GeoLite2-City.mmdb")
	geoWriteCity(t, city, geoUSNet, geoBRNet)
	appendFile(t, cfg, "geoip: {city: "+city+"}\n")
	now := time.Now().UTC()
	for i := range 6 { // the baseline: the United States, three hours ago
		gt.token(t, now.Add(-3*time.Hour+time.Duration(i)*time.Minute), "lab-portal", "198.51.100.7")
	}
	gt.token(t, now.Add(-10*time.Minute), "lab-portal", "198.51.100.9")
	d := startGeoDaemon(t, bin, cfg)
	d.waitCommitted(t, gt.lines)
	if f := standing(t, d, "impossible_travel"); len(f) != 0 {
		t.Fatalf("travel within one country raised %v", f)
	}
	if err := d.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-d.done

	gt.token(t, now.Add(-5*time.Minute), "lab-portal", "203.0.113.200")
	d = startGeoDaemon(t, bin, cfg)
	d.waitCommitted(t, gt.lines)
	d.poll(t, "the impossible trip", func() (bool, string) {
		f := standing(t, d, "impossible_travel")
		return f["lab-portal/svc-lab-portal"], fmt.Sprint(f)
	})
}
