package main

import (
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/store"
)

// serviceConfig is a daemon on kc.log alone; %[2]s adds to it.
const serviceConfig = `store: %[1]s/scopewatch.db
listen: 127.0.0.1:0
rules: %[1]s/rules.yaml
batch: {max_events: 1000, max_delay: 50ms}
log: {level: info}
sources:
  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}
%[2]s`

// serviceAPISource is the API gateway's source, for serviceConfig.
const serviceAPISource = `  - name: api-gateway
    path: %[1]s/api.log
    format: json
    fields: {time: time, client: client_id, method: method, path: path, status: status, ip: remote_addr}
`

// notifySocket is a service manager's notification socket: it collects
// the datagrams a Type=notify service sends.
type notifySocket struct {
	path string
	conn *net.UnixConn
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: path, conn: conn, msgs: make(chan string, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	t.Cleanup(func() { conn.Close(); <-done })
	return n
}

// next returns the next message whose first line starts with one of
// states, failing the test after geoPollFor; the messages skipped are
// returned too.
func (n *notifySocket) next(t *testing.T, states ...string) (msg string, skipped []string) {
	t.Helper()
	deadline := time.After(geoPollFor)
	for {
		select {
		case m := <-n.msgs:
			for _, s := range states {
				if strings.HasPrefix(m, s) {
					return m, skipped
				}
			}
			skipped = append(skipped, m)
		case <-deadline:
			t.Fatalf("no %v within %v; got %q", states, geoPollFor, skipped)
		}
	}
}

// TestSystemdNotifications runs the real binary as systemd would, with a
// notification socket and a watchdog, and checks the protocol in order:
// READY=1 once the sources tail (and not before), WATCHDOG=1 while idle,
// RELOADING=1 then READY=1 around a SIGHUP, and STOPPING=1 on SIGTERM
// before a clean exit.
func TestSystemdNotifications(t *testing.T) {
	bin := scopewatchBinary(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules)
	cfg := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfg, fmt.Sprintf(serviceConfig, dir, fmt.Sprintf(serviceAPISource, dir)))
	sock := listenNotify(t)

	d := startDaemonProc(t, bin, cfg, []string{
		"NOTIFY_SOCKET=" + sock.path,
		"WATCHDOG_USEC=200000", // pings every 100ms
	})
	ready, _ := sock.next(t, "READY=1")
	if !strings.Contains(ready, "STATUS=tailing 2 sources") {
		t.Errorf("READY message %q: want the status", ready)
	}
	if code, body, err := d.get("/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("/readyz after READY=1: %d %s %v", code, body, err)
	}
	// Idle, no traffic: the engine still answers the watchdog's probes.
	for range 3 {
		if m, skipped := sock.next(t, "WATCHDOG=1"); len(skipped) > 0 {
			t.Errorf("before %q: unexpected %q", m, skipped)
		}
	}

	d.signal(t, syscall.SIGHUP)
	reloading, _ := sock.next(t, "RELOADING=1")
	if !strings.Contains(reloading, "\nMONOTONIC_USEC=") {
		t.Errorf("RELOADING message %q lacks MONOTONIC_USEC", reloading)
	}
	if m, skipped := sock.next(t, "READY=1"); slices.ContainsFunc(skipped, func(s string) bool { return !strings.HasPrefix(s, "WATCHDOG=1") }) {
		t.Errorf("between RELOADING=1 and %q: %q", m, skipped)
	}
	sock.next(t, "WATCHDOG=1")

	d.stop(t)
	stopping, skipped := sock.next(t, "STOPPING=1")
	if slices.ContainsFunc(skipped, func(s string) bool { return !strings.HasPrefix(s, "WATCHDOG=1") }) {
		t.Errorf("before %q: %q", stopping, skipped)
	}
	if strings.Contains(d.log.String(), "level=ERROR") || strings.Contains(d.log.String(), "level=WARN") {
		t.Errorf("the daemon logged a problem:\n%s", d.log)
	}
}

// sourceLines returns the lines committed per source, from the API.
func sourceLines(t *testing.T, d *geoDaemon) map[string]uint64 {
	t.Helper()
	var srcs []store.Source
	getJSON(t, d, "/api/v1/sources", &srcs)
	m := make(map[string]uint64)
	for _, s := range srcs {
		m[s.Name] = s.Lines
	}
	return m
}

// TestReloadKeepsPositionsAndCounts reloads the real daemon with SIGHUP:
// a valid new configuration (one more source, a changed rules file, a
// new log level) takes effect without a line lost or counted twice; an
// invalid one is refused with its file, line and field, the metric drops
// to 0, and the daemon runs on the configuration in force.
func TestReloadKeepsPositionsAndCounts(t *testing.T) {
	bin := scopewatchBinary(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules)
	cfg := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfg, fmt.Sprintf(serviceConfig, dir, ""))
	gt := &geoTraffic{dir: dir}
	at := time.Now().Add(-time.Hour)
	for i := range 20 {
		gt.token(t, at.Add(time.Duration(i)*time.Second), "lab-portal", "10.0.0.5")
	}
	gt.call(t, at, "lab-portal", "10.0.0.5") // api.log: no source reads it yet

	d := startGeoDaemon(t, bin, cfg)
	d.waitCommitted(t, 20)
	if got := sourceLines(t, d); got["keycloak"] != 20 || len(got) != 1 {
		t.Fatalf("before the reload: %v, want keycloak 20", got)
	}
	const ok, last = "scopewatch_config_last_reload_successful", "scopewatch_config_last_reload_success_timestamp_seconds"
	started, _ := d.metric(last)

	// Valid: the API log becomes a source; the rules gain a client.
	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules+"\n# reloaded\n")
	write(t, cfg, strings.Replace(fmt.Sprintf(serviceConfig, dir, fmt.Sprintf(serviceAPISource, dir)), "level: info", "level: debug", 1))
	d.signal(t, syscall.SIGHUP)
	d.poll(t, "the reload is applied", func() (bool, string) {
		v, s := d.metric(last)
		return v > started && strings.Contains(d.log.String(), `msg="configuration reloaded"`), s
	})
	if v, s := d.metric(ok); v != 1 {
		t.Errorf("after a valid reload: %s", s)
	}
	for i := range 5 {
		gt.token(t, at.Add(time.Minute+time.Duration(i)*time.Second), "lab-portal", "10.0.0.5")
	}
	d.waitCommitted(t, gt.lines) // 25 Keycloak lines and the API line
	if got := sourceLines(t, d); got["keycloak"] != 25 || got["api-gateway"] != 1 {
		t.Fatalf("after the reload: %v, want keycloak 25 and api-gateway 1", got)
	}

	// Invalid: an unknown format. Nothing changes but the metric.
	write(t, cfg, fmt.Sprintf(serviceConfig, dir, "  - {name: audit, path: "+dir+"/audit.log, format: syslog}\n"))
	d.signal(t, syscall.SIGHUP)
	d.poll(t, "the reload is refused", func() (bool, string) {
		v, s := d.metric(ok)
		return v == 0 && strings.Contains(d.log.String(), "configuration not reloaded"), s
	})
	logText := d.log.String()
	if !strings.Contains(logText, "sources[1].format") || !strings.Contains(logText, cfg+":") {
		t.Errorf("the refusal does not name the file, line and field:\n%s", logText)
	}
	// The API source of the configuration in force still counts.
	gt.call(t, at.Add(2*time.Minute), "lab-portal", "10.0.0.5")
	gt.token(t, at.Add(2*time.Minute), "lab-portal", "10.0.0.5")
	d.waitCommitted(t, gt.lines)
	if code, _, err := d.get("/readyz"); err != nil || code != http.StatusOK {
		t.Errorf("/readyz after a refused reload: %d %v", code, err)
	}
	d.stop(t)

	got := map[string]uint64{}
	for name, s := range storedSources(t, filepath.Join(dir, "scopewatch.db")) {
		got[name] = s.Lines
	}
	if got["keycloak"] != 26 || got["api-gateway"] != 2 {
		t.Errorf("committed lines %v, want keycloak 26 and api-gateway 2: a line lost or counted twice", got)
	}
	db, err := store.Open(filepath.Join(dir, "scopewatch.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, found, err := db.Client("lab-portal")
	if err != nil || !found {
		t.Fatalf("client lab-portal: found %v, %v", found, err)
	}
	if g := c.Scopes["view_lab_results"].Granted.N; g != 26 {
		t.Errorf("view_lab_results granted %d times, want 26", g)
	}
}
