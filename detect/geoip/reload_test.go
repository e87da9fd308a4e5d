package geoip

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/detect/geoip/geoiptest"
)

// Two versions of the same databases: every address below has a different
// answer in each.
var (
	v1Country = []geoiptest.Entry{
		{Network: "203.0.113.0/24", Country: "US"},
		{Network: "2001:db8::/32", Country: "JP"},
	}
	v2Country = []geoiptest.Entry{
		{Network: "203.0.113.0/25", Country: "DE"},
		{Network: "203.0.113.128/25", Country: "FR"},
		{Network: "2001:db8::/32", Country: "AU"},
	}
	v1ASN = []geoiptest.Entry{
		{Network: "203.0.113.0/24", ASN: 64500, Org: "Old Transit"},
		{Network: "2001:db8::/32", ASN: 64501, Org: "Old Six"},
	}
	v2ASN = []geoiptest.Entry{
		{Network: "203.0.113.0/24", ASN: 64600, Org: "New Transit"},
		{Network: "2001:db8::/32", ASN: 64601, Org: "New Six"},
	}

	v1Answers = map[string]Info{
		"203.0.113.1":   {Country: "US", ASN: 64500, Org: "Old Transit", Network: pfx("203.0.113.0/24")},
		"203.0.113.200": {Country: "US", ASN: 64500, Org: "Old Transit", Network: pfx("203.0.113.0/24")},
		"2001:db8::1":   {Country: "JP", ASN: 64501, Org: "Old Six", Network: pfx("2001:db8::/32")},
	}
	v2Answers = map[string]Info{
		"203.0.113.1":   {Country: "DE", ASN: 64600, Org: "New Transit", Network: pfx("203.0.113.0/25")},
		"203.0.113.200": {Country: "FR", ASN: 64600, Org: "New Transit", Network: pfx("203.0.113.128/25")},
		"2001:db8::1":   {Country: "AU", ASN: 64601, Org: "New Six", Network: pfx("2001:db8::/32")},
	}
)

// versions holds the bytes of both versions, to put them in place with
// replaceFile.
type versions struct {
	country, asn [2][]byte
}

func writeVersions(t testing.TB) versions {
	t.Helper()
	var v versions
	v.country[0] = readFile(t, writeDB(t, geoiptest.WriteCity, v1Country))
	v.country[1] = readFile(t, writeDB(t, geoiptest.WriteCity, v2Country))
	v.asn[0] = readFile(t, writeDB(t, geoiptest.WriteASN, v1ASN))
	v.asn[1] = readFile(t, writeDB(t, geoiptest.WriteASN, v2ASN))
	return v
}

// paths are the files a DB under test reads.
type paths struct{ country, asn string }

// install puts version i (0 or 1) of both databases in place.
func (v versions) install(t testing.TB, p paths, i int) {
	t.Helper()
	replaceFile(t, p.country, v.country[i])
	replaceFile(t, p.asn, v.asn[i])
}

func newPaths(t testing.TB) paths {
	dir := t.TempDir()
	return paths{filepath.Join(dir, "GeoLite2-City.mmdb"), filepath.Join(dir, "GeoLite2-ASN.mmdb")}
}

func checkAnswers(t *testing.T, db *DB, want map[string]Info) {
	t.Helper()
	for ip, w := range want {
		if got := placeOnly(db.Lookup(netip.MustParseAddr(ip))); got != w {
			t.Errorf("Lookup(%s) = %+v, want %+v", ip, got, w)
		}
	}
}

// placeOnly drops an answer's location, which the tests that compare
// countries, networks and ASes leave out.
func placeOnly(i Info) Info {
	i.Lat, i.Lon, i.RadiusKm, i.Located = 0, 0, 0, false
	return i
}

func TestReload(t *testing.T) {
	v := writeVersions(t)
	p := newPaths(t)
	v.install(t, p, 0)
	m := NewMetrics(prometheus.NewRegistry())
	db := openDB(t, Options{Country: p.country, ASN: p.asn, Metrics: m})
	checkAnswers(t, db, v1Answers) // and fills the cache

	v.install(t, p, 1)
	if err := db.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	checkAnswers(t, db, v2Answers)
	if got := testutil.ToFloat64(m.Reloads.WithLabelValues("ok")); got != 1 {
		t.Errorf("ok reloads = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.Reloads.WithLabelValues("error")); got != 0 {
		t.Errorf("failed reloads = %v, want 0", got)
	}
}

func TestReloadErrorKeepsDatabases(t *testing.T) {
	tests := []struct {
		name       string
		breakFiles func(t *testing.T, p paths, v versions) // after version 0 is in service
		want       string                                  // in the error
	}{
		{"corrupt country", func(t *testing.T, p paths, v versions) {
			replaceFile(t, p.country, randomBytes(32<<10))
		}, "GeoLite2-City.mmdb"},
		{"corrupt asn after a good country", func(t *testing.T, p paths, v versions) {
			replaceFile(t, p.country, v.country[1])
			replaceFile(t, p.asn, randomBytes(32<<10))
		}, "GeoLite2-ASN.mmdb"},
		{"truncated country", func(t *testing.T, p paths, v versions) {
			replaceFile(t, p.country, v.country[1][:len(v.country[1])/2])
		}, "GeoLite2-City.mmdb"},
		{"wrong type", func(t *testing.T, p paths, v versions) {
			replaceFile(t, p.country, v.asn[1])
		}, `"GeoLite2-ASN"`},
		{"removed asn", func(t *testing.T, p paths, v versions) {
			if err := os.Remove(p.asn); err != nil {
				t.Fatal(err)
			}
		}, "GeoLite2-ASN.mmdb"},
	}
	v := writeVersions(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPaths(t)
			v.install(t, p, 0)
			m := NewMetrics(prometheus.NewRegistry())
			db := openDB(t, Options{Country: p.country, ASN: p.asn, Metrics: m})
			tt.breakFiles(t, p, v)

			err := db.Reload()
			if err == nil {
				t.Fatal("Reload succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			checkAnswers(t, db, v1Answers)
			if got := testutil.ToFloat64(m.Reloads.WithLabelValues("error")); got != 1 {
				t.Errorf("failed reloads = %v, want 1", got)
			}
			if got := testutil.ToFloat64(m.Reloads.WithLabelValues("ok")); got != 0 {
				t.Errorf("ok reloads = %v, want 0", got)
			}

			// Once the files are good again, so is the next reload.
			v.install(t, p, 1)
			if err := db.Reload(); err != nil {
				t.Fatalf("Reload of good files: %v", err)
			}
			checkAnswers(t, db, v2Answers)
		})
	}
}

// TestReloadConcurrentLookups runs lookups from several goroutines while
// the files are replaced and reloaded over and over: each lookup must give
// the answer of one version or the other, never a failure or a mix.
// Run it with -race.
func TestReloadConcurrentLookups(t *testing.T) {
	v := writeVersions(t)
	p := newPaths(t)
	v.install(t, p, 0)
	db := openDB(t, Options{Country: p.country, ASN: p.asn, CacheSize: 64})

	addrs := make([]netip.Addr, 0, len(v1Answers))
	for ip := range v1Answers {
		addrs = append(addrs, netip.MustParseAddr(ip))
	}
	var (
		stop    atomic.Bool
		lookups atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		bad     []string
	)
	for range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				ip := addrs[i%len(addrs)]
				got := placeOnly(db.Lookup(ip))
				lookups.Add(1)
				if got != v1Answers[ip.String()] && got != v2Answers[ip.String()] {
					mu.Lock()
					bad = append(bad, ip.String()+": "+fmtInfo(got))
					mu.Unlock()
				}
			}
		})
	}
	reloads := 200
	if testing.Short() {
		reloads = 20
	}
	for i := range reloads {
		v.install(t, p, (i+1)%2)
		if err := db.Reload(); err != nil {
			t.Errorf("reload %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("%d lookups gave neither version's answer, e.g. %s", len(bad), bad[0])
	}
	t.Logf("%d lookups during %d reloads", lookups.Load(), reloads)
}

// TestCloseDuringLookups closes the DB under running lookups: they give a
// valid answer until Close and the zero Info after, and none crashes on an
// unmapped file.
func TestCloseDuringLookups(t *testing.T) {
	v := writeVersions(t)
	p := newPaths(t)
	v.install(t, p, 0)
	db, err := Open(Options{Country: p.country, ASN: p.asn, CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("203.0.113.1")
	want := v1Answers["203.0.113.1"]
	var (
		stop   atomic.Bool
		wg     sync.WaitGroup
		badHit atomic.Int64
		zeros  atomic.Int64
	)
	started := make(chan struct{}, 4)
	for range 4 {
		wg.Go(func() {
			started <- struct{}{}
			for !stop.Load() {
				switch got := placeOnly(db.Lookup(ip)); got {
				case want:
				case Info{}:
					zeros.Add(1)
				default:
					badHit.Add(1)
				}
			}
		})
	}
	for range 4 {
		<-started
	}
	if err := db.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	for zeros.Load() == 0 && badHit.Load() == 0 {
		runtime.Gosched()
	}
	stop.Store(true)
	wg.Wait()
	if n := badHit.Load(); n > 0 {
		t.Errorf("%d lookups gave a wrong answer", n)
	}
}

func fmtInfo(i Info) string {
	return i.Country + "/" + i.Org + "/" + i.Network.String()
}

// TestWatch replaces the files under a running Watch: a bad file is
// counted and skipped, a good one reloaded. The ticker runs on the bubble's
// clock, so the test waits for each check without sleeping.
func TestWatch(t *testing.T) {
	v := writeVersions(t)
	synctest.Test(t, func(t *testing.T) {
		p := newPaths(t)
		v.install(t, p, 0)
		m := NewMetrics(prometheus.NewRegistry())
		db := openDB(t, Options{Country: p.country, ASN: p.asn, Metrics: m})
		const every = time.Second

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- db.Watch(ctx, every) }()
		tick := func() {
			time.Sleep(every)
			synctest.Wait() // until Watch has checked, and reloaded if it must
		}

		tick()
		checkAnswers(t, db, v1Answers)
		if got := testutil.ToFloat64(m.Reloads.WithLabelValues("ok")); got != 0 {
			t.Errorf("ok reloads with unchanged files = %v, want 0", got)
		}

		replaceFile(t, p.country, randomBytes(32<<10))
		tick()
		checkAnswers(t, db, v1Answers)
		if got := testutil.ToFloat64(m.Reloads.WithLabelValues("error")); got != 1 {
			t.Errorf("failed reloads = %v, want 1", got)
		}
		tick() // the same bad file is not retried
		if got := testutil.ToFloat64(m.Reloads.WithLabelValues("error")); got != 1 {
			t.Errorf("failed reloads after another check = %v, want 1", got)
		}

		v.install(t, p, 1)
		tick()
		checkAnswers(t, db, v2Answers)
		if got := testutil.ToFloat64(m.Reloads.WithLabelValues("ok")); got != 1 {
			t.Errorf("ok reloads = %v, want 1", got)
		}

		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watch = %v, want nil", err)
		}
	})
}

func TestWatchInterval(t *testing.T) {
	db := openDB(t, Options{Country: writeDB(t, geoiptest.WriteCountry, countryEntries)})
	if err := db.Watch(t.Context(), 0); err == nil {
		t.Error("Watch with interval 0 succeeded, want an error")
	}
}

// TestReloadLogsOnce checks that a failure is logged when it is new, not
// at every reload that meets it again.
func TestReloadLogsOnce(t *testing.T) {
	v := writeVersions(t)
	p := newPaths(t)
	v.install(t, p, 0)
	var logs bytes.Buffer
	db := openDB(t, Options{Country: p.country, ASN: p.asn, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	replaceFile(t, p.country, randomBytes(32<<10))
	db.Reload()
	db.Reload()
	if got := strings.Count(logs.String(), "reload failed"); got != 1 {
		t.Errorf("after the same failure twice, %d failures logged, want 1:\n%s", got, logs.String())
	}
	if err := os.Remove(p.country); err != nil {
		t.Fatal(err)
	}
	db.Reload()
	if got := strings.Count(logs.String(), "reload failed"); got != 2 {
		t.Errorf("after another failure, %d failures logged, want 2:\n%s", got, logs.String())
	}
}
