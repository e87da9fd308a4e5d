package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/detect/geoip/geoiptest"
	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/store"
)

// geoPollEvery and geoPollFor bound every wait on the child daemon: the
// tests poll an observable effect, they never sleep in its place.
const (
	geoPollEvery = 20 * time.Millisecond
	geoPollFor   = 30 * time.Second
)

// geoConfig is a daemon configuration with a Keycloak source, an API
// gateway source, a short geography baseline and GeoIP databases; %[1]s
// is the directory, %[2]s the City database, %[3]s the ASN database and
// %[4]s the check interval.
const geoConfig = `store: %[1]s/scopewatch.db
listen: 127.0.0.1:0
rules: %[1]s/rules.yaml
batch: {max_events: 1000, max_delay: 50ms}
sources:
  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}
  - name: api-gateway
    path: %[1]s/api.log
    format: json
    fields: {time: time, client: client_id, method: method, path: path, status: status, ip: remote_addr}
detect:
  unfamiliar_geo: {learning_period: 1d, min_events: 5}
geoip:
  city: %[2]s
  asn: %[3]s
  check_every: %[4]s
`

// The networks of the test databases, in documentation address space.
var (
	geoUSNet = geoiptest.Entry{Network: "198.51.100.0/26", Country: "US", ASN: 64496, Org: "Mercy General Hospital"}
	geoBRNet = geoiptest.Entry{Network: "203.0.113.192/28", Country: "BR", ASN: 64530, Org: "Rio Fibra Telecom"}
	// Only in the City databases that replace the first one.
	geoARNet = geoiptest.Entry{Network: "203.0.113.96/28", Country: "AR"}
	geoJPNet = geoiptest.Entry{Network: "192.0.2.128/26", Country: "JP"}
)

// geoCorrupt returns bytes that are no MaxMind database, the same on every
// run.
func geoCorrupt() []byte {
	b := make([]byte, 8192)
	rand.NewChaCha8([32]byte{'g', 'e', 'o'}).Read(b)
	return b
}

// geoReplace replaces path with data the way geoipupdate does: a new file
// in the same directory, renamed over the old one.
func geoReplace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func geoWriteCity(t *testing.T, path string, entries ...geoiptest.Entry) {
	t.Helper()
	if err := geoiptest.WriteCity(path, entries); err != nil {
		t.Fatal(err)
	}
}

func TestGeoIPCorruptDatabaseRefusesStart(t *testing.T) {
	bin := scopewatchBinary(t)
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "GeoLite2-City.mmdb")
	if err := os.WriteFile(corrupt, geoCorrupt(), 0o644); err != nil {
		t.Fatal(err)
	}
	asn := filepath.Join(dir, "GeoLite2-ASN.mmdb")
	if err := geoiptest.WriteASN(asn, []geoiptest.Entry{geoUSNet}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		city string
		want []string
	}{
		{"random bytes", corrupt, []string{"geoip city database", corrupt}},
		{"ASN database as city", asn, []string{"geoip city database", asn, `database type "GeoLite2-ASN" is not a City, Country or Enterprise database`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cdir := t.TempDir()
			cfg := filepath.Join(cdir, "scopewatch.yaml")
			write(t, cfg, fmt.Sprintf("store: %[1]s/scopewatch.db\nlisten: 127.0.0.1:0\nsources:\n"+
				"  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}\ngeoip: {city: %[2]s}\n", cdir, tt.city))
			// A daemon that starts anyway is a failure, not a hang.
			ctx, cancel := context.WithTimeout(t.Context(), geoPollFor)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "run", "--config", cfg).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != exitConfig {
				t.Fatalf("run: %v, want exit %d\n%s", err, exitConfig, out)
			}
			for _, w := range tt.want {
				if !bytes.Contains(out, []byte(w)) {
					t.Errorf("run output lacks %q:\n%s", w, out)
				}
			}
			// validate, which the package says to run before enabling the
			// service, refuses what run refuses, with the same message.
			code, _, errOut := runCmd(t, "validate", "--config", cfg)
			if code != exitConfig {
				t.Fatalf("validate: exit %d, want %d\n%s", code, exitConfig, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("validate output lacks %q:\n%s", w, errOut)
				}
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		cdir := t.TempDir()
		missing := filepath.Join(cdir, "GeoLite2-City.mmdb")
		cfg := filepath.Join(cdir, "scopewatch.yaml")
		write(t, cfg, fmt.Sprintf("store: %[1]s/scopewatch.db\nsources:\n"+
			"  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}\ngeoip:\n  city: %[2]s\n", cdir, missing))
		code, _, errOut := runCmd(t, "validate", "--config", cfg)
		if code != exitConfig {
			t.Fatalf("validate: exit %d, want %d\n%s", code, exitConfig, errOut)
		}
		for _, w := range []string{cfg + ":5: geoip.city", missing} {
			if !strings.Contains(errOut, w) {
				t.Errorf("validate output lacks %q:\n%s", w, errOut)
			}
		}
	})
}

// geoLog collects a child's log while it runs.
type geoLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *geoLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *geoLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// geoDaemon is `scopewatch run` as a child process.
type geoDaemon struct {
	cmd  *exec.Cmd
	log  *geoLog
	addr string
	sock string        // its control socket, which get goes through
	done chan struct{} // closed when the process has exited
	err  error         // its exit, once done is closed
}

var geoListenRE = regexp.MustCompile(`msg="scopewatch started".* listen=(127\.0\.0\.1:[0-9]+)`)

// startGeoDaemon starts the daemon on cfg and waits until it answers
// /readyz. Its log is shown if the test fails.
func startGeoDaemon(t *testing.T, bin, cfg string) *geoDaemon {
	t.Helper()
	return startDaemonProc(t, bin, cfg, nil)
}

// startDaemonProc is startGeoDaemon with env added to the child's
// environment.
func startDaemonProc(t *testing.T, bin, cfg string, env []string) *geoDaemon {
	t.Helper()
	d := &geoDaemon{cmd: exec.Command(bin, "run", "--config", cfg), log: &geoLog{}, done: make(chan struct{})}
	d.sock = withControlSocket(t, cfg)
	d.cmd.Env = append(os.Environ(), env...)
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.log)
		}
	})
	d.poll(t, "daemon logs its listen address", func() (bool, string) {
		m := geoListenRE.FindStringSubmatch(d.log.String())
		if m == nil {
			return false, "no listen address in the log yet"
		}
		d.addr = m[1]
		return true, ""
	})
	d.poll(t, "daemon ready", func() (bool, string) {
		code, body, err := d.get("/readyz")
		return err == nil && code == http.StatusOK, fmt.Sprintf("%d %q %v", code, body, err)
	})
	return d
}

// poll calls check every geoPollEvery until it reports done, and fails the
// test after geoPollFor or as soon as the daemon exits.
func (d *geoDaemon) poll(t *testing.T, what string, check func() (done bool, last string)) {
	t.Helper()
	deadline := time.Now().Add(geoPollFor)
	tick := time.NewTicker(geoPollEvery)
	defer tick.Stop()
	for {
		ok, last := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v; last seen: %s", what, geoPollFor, last)
		}
		select {
		case <-d.done:
			t.Fatalf("%s: daemon exited: %v", what, d.err)
		case <-tick.C:
		}
	}
}

func (d *geoDaemon) get(path string) (int, []byte, error) {
	resp, err := socketClient(d.sock).Get("http://" + d.addr + path)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func (d *geoDaemon) signal(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v: %v", sig, err)
	}
}

// stop sends SIGTERM and expects a clean exit.
func (d *geoDaemon) stop(t *testing.T) {
	t.Helper()
	d.signal(t, syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(geoPollFor):
		t.Fatalf("daemon still running %v after SIGTERM", geoPollFor)
	}
	if d.err != nil {
		t.Fatalf("daemon exit after SIGTERM: %v, want 0", d.err)
	}
}

// metric returns the value of one series of /metrics, such as
// scopewatch_geoip_reloads_total{result="ok"}.
func (d *geoDaemon) metric(series string) (float64, string) {
	code, body, err := d.get("/metrics")
	if err != nil || code != http.StatusOK {
		return 0, fmt.Sprintf("/metrics: %d %v", code, err)
	}
	for line := range strings.Lines(string(body)) {
		name, val, ok := strings.Cut(strings.TrimSpace(line), " ")
		if ok && name == series {
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return 0, fmt.Sprintf("%s: bad value %q", series, val)
			}
			return v, fmt.Sprintf("%s %v", series, v)
		}
	}
	return 0, series + " not in /metrics"
}

// waitMetric waits until a series reaches at least want.
func (d *geoDaemon) waitMetric(t *testing.T, series string, want float64) {
	t.Helper()
	d.poll(t, fmt.Sprintf("%s >= %v", series, want), func() (bool, string) {
		v, last := d.metric(series)
		return v >= want, last
	})
}

// waitCommitted waits until the store has consumed n lines.
func (d *geoDaemon) waitCommitted(t *testing.T, n uint64) {
	t.Helper()
	d.poll(t, fmt.Sprintf("%d lines committed", n), func() (bool, string) {
		code, body, err := d.get("/api/v1/sources")
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("/api/v1/sources: %d %v", code, err)
		}
		var srcs []store.Source
		if err := json.Unmarshal(body, &srcs); err != nil {
			return false, err.Error()
		}
		var got uint64
		for _, s := range srcs {
			got += s.Lines
		}
		return got >= n, fmt.Sprintf("%d lines", got)
	})
}

// waitFinding waits for the unfamiliar_geo finding of client with subject
// whose count is at least count, and returns it.
func (d *geoDaemon) waitFinding(t *testing.T, client, subject string, count uint64) report.FindingView {
	t.Helper()
	var found report.FindingView
	d.poll(t, fmt.Sprintf("unfamiliar_geo finding %s/%s with count >= %d", client, subject, count), func() (bool, string) {
		code, body, err := d.get("/api/v1/findings?kind=unfamiliar_geo&client=" + client)
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("/api/v1/findings: %d %v %s", code, err, body)
		}
		var fs []report.FindingView
		if err := json.Unmarshal(body, &fs); err != nil {
			return false, err.Error()
		}
		for _, f := range fs {
			if f.Subject == subject && f.Count >= count {
				found = f
				return true, ""
			}
		}
		return false, string(body)
	})
	return found
}

// geoTraffic appends Keycloak token events and API calls to the logs of
// geoConfig and counts the lines written.
// geoTraffic appends lines of the traffic generator's formats to the
// logs of a test's directory, one event at a time.
type geoTraffic struct {
	dir   string
	lines uint64
	seq   int
	gen   traffic.Generator // formats lines; its draws are not used
	buf   []byte
}

func (g *geoTraffic) append(t *testing.T, name, line string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(g.dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(line + "\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	g.lines++
}

// token writes a client_credentials token event of Keycloak's Quarkus JSON
// logging.
func (g *geoTraffic) token(t *testing.T, at time.Time, client, ip string) {
	t.Helper()
	g.seq++
	c := &traffic.Client{ID: client, Granted: []string{"openid", "view_lab_results"}}
	g.buf = g.gen.KeycloakQuarkusJSON(g.buf[:0], traffic.Event{Time: at, Client: c, Grant: true, ID: g.seq, IP: ip, User: "svc-" + client})
	g.append(t, "kc.log", strings.TrimSuffix(string(g.buf), "\n"))
}

// call writes an API gateway access line.
func (g *geoTraffic) call(t *testing.T, at time.Time, client, ip string) {
	t.Helper()
	g.seq++
	c := &traffic.Client{ID: client}
	g.buf = g.gen.APIJSON(g.buf[:0], traffic.Event{Time: at, Client: c, Call: traffic.Call{Method: "GET", Path: "/api/labs/%d"}, ID: g.seq, IP: ip})
	g.append(t, "api.log", strings.TrimSuffix(string(g.buf), "\n"))
}

// TestGeoIPFindingsAndReload runs the real daemon on MaxMind databases
// built with mmdbwriter: a client used from a country outside its
// baseline raises unfamiliar_geo; a new City database renamed over the old
// one serves lookups after SIGHUP, and after the next check without one; a
// corrupt replacement is counted as a failed reload and the database in
// service goes on placing addresses.
func TestGeoIPFindingsAndReload(t *testing.T) {
	t.Parallel()
	bin := scopewatchBinary(t)
	dir := t.TempDir()
	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules)
	geoDir := filepath.Join(dir, "geoip")
	if err := os.Mkdir(geoDir, 0o755); err != nil {
		t.Fatal(err)
	}
	city := filepath.Join(geoDir, "GeoLite2-City.mmdb")
	asn := filepath.Join(geoDir, "GeoLite2-ASN.mmdb")
	geoWriteCity(t, city, geoUSNet, geoBRNet)
	if err := geoiptest.WriteASN(asn, []geoiptest.Entry{geoUSNet, geoBRNet}); err != nil {
		t.Fatal(err)
	}
	// SIGHUP alone reloads in the first run: the watch is too slow to
	// interfere. The second run relies on the watch.
	hupCfg := filepath.Join(dir, "hup.yaml")
	write(t, hupCfg, fmt.Sprintf(geoConfig, dir, city, asn, "1h"))
	watchCfg := filepath.Join(dir, "watch.yaml")
	write(t, watchCfg, fmt.Sprintf(geoConfig, dir, city, asn, "200ms"))

	const client = "lab-portal"
	const (
		okReloads  = `scopewatch_geoip_reloads_total{result="ok"}`
		errReloads = `scopewatch_geoip_reloads_total{result="error"}`
	)
	// Event times are recent, so that no finding ages out against the
	// daemon's wall clock while the test runs.
	t0 := time.Now().UTC().Truncate(time.Hour).Add(-72 * time.Hour)
	gt := &geoTraffic{dir: dir}

	d := startGeoDaemon(t, bin, hupCfg)

	// Two days of tokens and calls from the US form the baseline.
	for i := range 13 {
		at := t0.Add(time.Duration(i) * 4 * time.Hour)
		gt.token(t, at, client, "198.51.100.10")
		gt.call(t, at.Add(time.Minute), client, "198.51.100.11")
	}
	d.waitCommitted(t, gt.lines)

	gt.call(t, t0.Add(49*time.Hour), client, "203.0.113.200")
	br := d.waitFinding(t, client, "BR", 1)
	if br.Evidence.Country != "BR" || br.Evidence.ASN != 64530 || br.Evidence.Network != geoBRNet.Network || br.Evidence.IP != "203.0.113.200" {
		t.Errorf("BR finding evidence = %+v, want country BR, AS64530, network %s, ip 203.0.113.200", br.Evidence, geoBRNet.Network)
	}
	for _, s := range []string{okReloads, errReloads} {
		if v, last := d.metric(s); v != 0 {
			t.Errorf("before any reload: %s", last)
		}
	}

	// The address is seen before its range is in any database, so that
	// nothing remembered from the old database may place it later.
	gt.call(t, t0.Add(49*time.Hour+time.Minute), client, "203.0.113.100")
	d.waitCommitted(t, gt.lines)

	// A new City database places a range in AR: SIGHUP puts it in service.
	geoWriteCity(t, city, geoUSNet, geoBRNet, geoARNet)
	d.signal(t, syscall.SIGHUP)
	d.waitMetric(t, okReloads, 1)
	d.poll(t, "the reload logged", func() (bool, string) {
		return strings.Contains(d.log.String(), `msg="configuration reloaded"`), "no reload in the log"
	})
	gt.call(t, t0.Add(50*time.Hour), client, "203.0.113.100")
	if ar := d.waitFinding(t, client, "AR", 1); ar.Evidence.Network != geoARNet.Network {
		t.Errorf("AR finding network = %q, want %s", ar.Evidence.Network, geoARNet.Network)
	}

	// A corrupt file renamed over it: the reload fails and is counted, the
	// daemon goes on with the database in service.
	geoReplace(t, city, geoCorrupt())
	d.signal(t, syscall.SIGHUP)
	d.waitMetric(t, errReloads, 1)
	if v, last := d.metric(okReloads); v != 1 {
		t.Errorf("after a corrupt reload: %s, want 1", last)
	}
	if code, body, err := d.get("/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz after a corrupt reload: %d %q %v", code, body, err)
	}
	// New addresses, so no cached answer can stand in for a lookup.
	gt.call(t, t0.Add(51*time.Hour), client, "203.0.113.201")
	gt.call(t, t0.Add(51*time.Hour+time.Minute), client, "203.0.113.101")
	if br := d.waitFinding(t, client, "BR", 2); br.Evidence.IP != "203.0.113.201" {
		t.Errorf("BR finding after the corrupt reload: ip %q, want 203.0.113.201", br.Evidence.IP)
	}
	d.waitFinding(t, client, "AR", 2)

	t.Run("metrics", func(t *testing.T) {
		_, body, err := d.get("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		checkGeoMetrics(t, body, client)
	})
	d.stop(t)

	// Restarted with the corrupt file in place, the daemon refuses to
	// start, naming it.
	ctx, cancel := context.WithTimeout(t.Context(), geoPollFor)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "run", "--config", watchCfg).CombinedOutput()
	if exit := (*exec.ExitError)(nil); !errors.As(err, &exit) || exit.ExitCode() != exitConfig || !bytes.Contains(out, []byte(city)) {
		t.Fatalf("run with a corrupt City database: %v, want exit %d naming %s\n%s", err, exitConfig, city, out)
	}

	// With a good database back and a short check interval, a new file is
	// put in service without SIGHUP.
	geoWriteCity(t, city, geoUSNet, geoBRNet, geoARNet)
	d = startGeoDaemon(t, bin, watchCfg)
	geoWriteCity(t, city, geoUSNet, geoBRNet, geoARNet, geoJPNet)
	d.waitMetric(t, okReloads, 1)
	gt.call(t, t0.Add(52*time.Hour), client, "192.0.2.130")
	if jp := d.waitFinding(t, client, "JP", 1); jp.Evidence.Network != geoJPNet.Network {
		t.Errorf("JP finding network = %q, want %s", jp.Evidence.Network, geoJPNet.Network)
	}

	geoReplace(t, city, geoCorrupt())
	d.waitMetric(t, errReloads, 1)
	gt.call(t, t0.Add(53*time.Hour), client, "192.0.2.131")
	gt.call(t, t0.Add(53*time.Hour+time.Minute), client, "203.0.113.202")
	d.waitFinding(t, client, "JP", 2)
	d.waitFinding(t, client, "BR", 3)
	if v, last := d.metric(okReloads); v != 1 {
		t.Errorf("after a corrupt file was watched: %s, want 1", last)
	}
	d.stop(t)
}

// geoTestValues are label values that must never appear in /metrics: the
// countries, country names and AS numbers of TestGeoIPFindingsAndReload.
var geoTestValues = []string{"US", "BR", "AR", "JP", "Brazil", "Argentina", "64530", "AS64530"}

var geoLabelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// checkGeoMetrics checks that an exposition is valid for promtool (when
// installed) and that no label carries a client id, an address, a network
// or a country.
func checkGeoMetrics(t *testing.T, body []byte, client string) {
	t.Helper()
	for _, want := range []string{
		`scopewatch_geoip_reloads_total{result="ok"}`,
		`scopewatch_geoip_reloads_total{result="error"}`,
		`scopewatch_geoip_lookups_total{result="miss"}`,
		`scopewatch_geoip_database_build_timestamp_seconds{database="country"}`,
		`scopewatch_geoip_database_build_timestamp_seconds{database="asn"}`,
	} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	forbidden := append([]string{client}, geoTestValues...)
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		open, end := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
		if open < 0 || end < open {
			continue
		}
		for _, m := range geoLabelRE.FindAllStringSubmatch(line[open:end], -1) {
			v := m[2]
			_, ipErr := netip.ParseAddr(v)
			_, pfxErr := netip.ParsePrefix(v)
			if ipErr == nil || pfxErr == nil || strings.Contains(v, "198.51.100.") || strings.Contains(v, "203.0.113.") {
				t.Errorf("/metrics has an address as label %s: %s", m[1], strings.TrimSpace(line))
			}
			for _, f := range forbidden {
				if strings.EqualFold(v, f) {
					t.Errorf("/metrics has %q as label %s: %s", f, m[1], strings.TrimSpace(line))
				}
			}
		}
	}
	t.Run("promtool", func(t *testing.T) {
		promtool := needPromtool(t)
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})
}

// TestGeoIPScanNoDetectRecordsCountries backfills a client's traffic from
// the US with scan --no-detect, then scans a later call from the US with
// the detectors on: the backfill must have recorded the country the
// GeoIP databases place the addresses in (Keycloak lines carry none), so
// that the client's usual country is in its baseline and raises nothing.
func TestGeoIPScanNoDetectRecordsCountries(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "rules.yaml"), traffic.DemoRules)
	city, asn := filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	geoWriteCity(t, city, geoUSNet, geoBRNet)
	if err := geoiptest.WriteASN(asn, []geoiptest.Entry{geoUSNet, geoBRNet}); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "scopewatch.yaml")
	write(t, cfg, fmt.Sprintf(geoConfig, dir, city, asn, "1h"))
	const client = "lab-portal"
	t0 := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	gt := &geoTraffic{dir: dir}
	for i := range 13 {
		at := t0.Add(time.Duration(i) * 4 * time.Hour)
		gt.token(t, at, client, "198.51.100.10")
		gt.call(t, at.Add(time.Minute), client, "198.51.100.11")
	}
	kc, api := filepath.Join(dir, "kc.log"), filepath.Join(dir, "api.log")
	if code, _, errOut := runCmd(t, "scan", "--config", cfg, "--no-detect", "--quiet", kc, api); code != exitOK {
		t.Fatalf("scan --no-detect: exit %d\n%s", code, errOut)
	}
	db, err := store.Open(filepath.Join(dir, "scopewatch.db"), store.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	c, ok, err := db.Client(client)
	db.Close()
	if err != nil || !ok || c.Countries["US"].N != 26 {
		t.Fatalf("after scan --no-detect the client's countries are %v (%v, %v); want US 26 times", c.Countries, ok, err)
	}

	later := filepath.Join(dir, "api-later.log")
	if err := os.Rename(api, later); err != nil {
		t.Fatal(err)
	}
	gt.call(t, t0.Add(60*time.Hour), client, "198.51.100.12")
	gt.call(t, t0.Add(61*time.Hour), client, "203.0.113.200") // BR, and its AS: outside the baseline
	if code, _, errOut := runCmd(t, "scan", "--config", cfg, "--quiet", api); code != exitOK {
		t.Fatalf("scan: exit %d\n%s", code, errOut)
	}
	code, out, errOut := runCmd(t, "findings", "--config", cfg, "--local", "--kind", "unfamiliar_geo", "--format", "json")
	if code != exitOK {
		t.Fatalf("findings: exit %d\n%s", code, errOut)
	}
	var fs []report.FindingView
	if err := json.Unmarshal([]byte(out), &fs); err != nil {
		t.Fatalf("findings output %q: %v", out, err)
	}
	var subjects []string
	for _, f := range fs {
		subjects = append(subjects, f.Subject)
	}
	slices.Sort(subjects)
	if want := []string{"AS64530", "BR"}; !slices.Equal(subjects, want) {
		t.Errorf("unfamiliar_geo findings about %v; want %v, not US: the backfill learned it", subjects, want)
	}
}
