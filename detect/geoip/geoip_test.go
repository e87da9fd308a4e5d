package geoip

import (
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/scopewatch/scopewatch/detect/geoip/geoiptest"
)

var (
	countryEntries = []geoiptest.Entry{
		{Network: "203.0.113.0/25", Country: "US"},
		{Network: "203.0.113.128/25", Country: "DE"},
		{Network: "198.51.100.0/24", Country: "FR"},
		{Network: "192.0.2.0/24", Country: ""}, // found, without a country
		{Network: "2001:db8::/32", Country: "JP"},
		{Network: "10.0.0.0/8", Country: "US"}, // internal: must never be answered
	}
	asnEntries = []geoiptest.Entry{
		{Network: "203.0.113.0/24", ASN: 64500, Org: "Example Transit"},
		{Network: "198.51.100.0/26", ASN: 64501, Org: "Example Hosting"},
		{Network: "198.51.100.64/26", ASN: 64502, Org: "Example Mobile"},
		{Network: "2001:db8::/48", ASN: 64503, Org: "Example Six"},
		{Network: "10.0.0.0/8", ASN: 64504, Org: "Private"},
	}
)

// writeDB writes entries with write to a new file in a temporary directory
// and returns its path.
func writeDB(t testing.TB, write func(string, []geoiptest.Entry) error, entries []geoiptest.Entry) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db.mmdb")
	if err := write(path, entries); err != nil {
		t.Fatal(err)
	}
	return path
}

// openDB opens a DB that the test closes when it ends.
func openDB(t testing.TB, opts Options) *DB {
	t.Helper()
	db, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return db
}

// replaceFile replaces path with data through a rename, as a database
// update does: the old file stays intact for the readers still mapping it.
func replaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestLookup(t *testing.T) {
	db := openDB(t, Options{
		Country: writeDB(t, geoiptest.WriteCountry, countryEntries),
		ASN:     writeDB(t, geoiptest.WriteASN, asnEntries),
	})
	tests := []struct {
		name string
		ip   string
		want Info
	}{
		{"ipv4", "203.0.113.10", Info{Country: "US", ASN: 64500, Org: "Example Transit", Network: pfx("203.0.113.0/25")}},
		{"ipv4 second half", "203.0.113.200", Info{Country: "DE", ASN: 64500, Org: "Example Transit", Network: pfx("203.0.113.128/25")}},
		{"ipv4 smaller asn network", "198.51.100.70", Info{Country: "FR", ASN: 64502, Org: "Example Mobile", Network: pfx("198.51.100.0/24")}},
		{"ipv6", "2001:db8::1", Info{Country: "JP", ASN: 64503, Org: "Example Six", Network: pfx("2001:db8::/32")}},
		{"ipv6 outside asn network", "2001:db8:1::1", Info{Country: "JP", Network: pfx("2001:db8::/32")}},
		{"ipv6 zone ignored", "2001:db8::1%eth0", Info{Country: "JP", ASN: 64503, Org: "Example Six", Network: pfx("2001:db8::/32")}},
		{"ipv4-mapped", "::ffff:203.0.113.10", Info{Country: "US", ASN: 64500, Org: "Example Transit", Network: pfx("203.0.113.0/25")}},
		{"found without country", "192.0.2.1", Info{Network: pfx("192.0.2.0/24")}},
		{"unknown ipv4", "8.8.8.8", Info{}},
		{"unknown ipv6", "2a00:1450::1", Info{}},
		{"not cgnat", "100.128.0.1", Info{}},
		{"rfc1918 10/8", "10.1.2.3", Info{Internal: true}},
		{"rfc1918 172.16/12", "172.31.255.1", Info{Internal: true}},
		{"rfc1918 192.168/16", "192.168.1.1", Info{Internal: true}},
		{"loopback", "127.0.0.1", Info{Internal: true}},
		{"link-local", "169.254.10.1", Info{Internal: true}},
		{"cgnat low", "100.64.0.1", Info{Internal: true}},
		{"cgnat high", "100.127.255.254", Info{Internal: true}},
		{"unspecified", "0.0.0.0", Info{Internal: true}},
		{"mapped private", "::ffff:10.1.2.3", Info{Internal: true}},
		{"ipv6 loopback", "::1", Info{Internal: true}},
		{"ipv6 unspecified", "::", Info{Internal: true}},
		{"ipv6 ula", "fd12:3456::1", Info{Internal: true}},
		{"ipv6 link-local", "fe80::1%eth0", Info{Internal: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.ip)
			// Twice: the second answer may come from the cache.
			for range 2 {
				if got := db.Lookup(ip); got != tt.want {
					t.Errorf("Lookup(%s) = %+v, want %+v", tt.ip, got, tt.want)
				}
			}
		})
	}
	t.Run("invalid address", func(t *testing.T) {
		if got := db.Lookup(netip.Addr{}); got != (Info{}) {
			t.Errorf("Lookup(invalid) = %+v, want zero Info", got)
		}
	})
}

func TestLookupShapes(t *testing.T) {
	entries := []geoiptest.Entry{
		{Network: "203.0.113.0/24", Country: "BR", ASN: 64510, Org: "Example BR"},
		{Network: "2001:db8::/48", Country: "SE", ASN: 64511, Org: "Example SE"},
	}
	tests := []struct {
		name string
		opts func(t *testing.T) Options
		want map[string]Info
	}{
		{
			name: "country",
			opts: func(t *testing.T) Options { return Options{Country: writeDB(t, geoiptest.WriteCountry, entries)} },
			want: map[string]Info{
				"203.0.113.1": {Country: "BR", Network: pfx("203.0.113.0/24")},
				"2001:db8::1": {Country: "SE", Network: pfx("2001:db8::/48")},
			},
		},
		{
			name: "city",
			opts: func(t *testing.T) Options { return Options{Country: writeDB(t, geoiptest.WriteCity, entries)} },
			want: map[string]Info{
				"203.0.113.1": {Country: "BR", Network: pfx("203.0.113.0/24")},
				"2001:db8::1": {Country: "SE", Network: pfx("2001:db8::/48")},
			},
		},
		{
			name: "asn",
			opts: func(t *testing.T) Options { return Options{ASN: writeDB(t, geoiptest.WriteASN, entries)} },
			want: map[string]Info{
				"203.0.113.1": {ASN: 64510, Org: "Example BR", Network: pfx("203.0.113.0/24")},
				"2001:db8::1": {ASN: 64511, Org: "Example SE", Network: pfx("2001:db8::/48")},
			},
		},
		{
			name: "city and asn",
			opts: func(t *testing.T) Options {
				return Options{Country: writeDB(t, geoiptest.WriteCity, entries), ASN: writeDB(t, geoiptest.WriteASN, entries)}
			},
			want: map[string]Info{
				"203.0.113.1": {Country: "BR", ASN: 64510, Org: "Example BR", Network: pfx("203.0.113.0/24")},
				"2001:db8::1": {Country: "SE", ASN: 64511, Org: "Example SE", Network: pfx("2001:db8::/48")},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t, tt.opts(t))
			for ip, want := range tt.want {
				if got := placeOnly(db.Lookup(netip.MustParseAddr(ip))); got != want {
					t.Errorf("Lookup(%s) = %+v, want %+v", ip, got, want)
				}
			}
		})
	}
}

// TestCacheSmallerNetworks checks that an answer cached for one address of
// a /24 is not given for another address of that /24 in another network.
func TestCacheSmallerNetworks(t *testing.T) {
	country := writeDB(t, geoiptest.WriteCountry, countryEntries)
	asn := writeDB(t, geoiptest.WriteASN, asnEntries)
	us := Info{Country: "US", ASN: 64500, Org: "Example Transit", Network: pfx("203.0.113.0/25")}
	de := Info{Country: "DE", ASN: 64500, Org: "Example Transit", Network: pfx("203.0.113.128/25")}
	hosting := Info{Country: "FR", ASN: 64501, Org: "Example Hosting", Network: pfx("198.51.100.0/24")}
	mobile := Info{Country: "FR", ASN: 64502, Org: "Example Mobile", Network: pfx("198.51.100.0/24")}
	tests := []struct {
		name  string
		order []string
		want  []Info
	}{
		{"country /25 low first", []string{"203.0.113.1", "203.0.113.129", "203.0.113.2", "203.0.113.130"}, []Info{us, de, us, de}},
		{"country /25 high first", []string{"203.0.113.129", "203.0.113.1", "203.0.113.130", "203.0.113.2"}, []Info{de, us, de, us}},
		{"asn /26 low first", []string{"198.51.100.1", "198.51.100.65", "198.51.100.2"}, []Info{hosting, mobile, hosting}},
		{"asn /26 high first", []string{"198.51.100.65", "198.51.100.1", "198.51.100.66"}, []Info{mobile, hosting, mobile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t, Options{Country: country, ASN: asn})
			for i, ip := range tt.order {
				if got := db.Lookup(netip.MustParseAddr(ip)); got != tt.want[i] {
					t.Errorf("lookup %d: Lookup(%s) = %+v, want %+v", i, ip, got, tt.want[i])
				}
			}
		})
	}
}

func TestCacheCounts(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	db := openDB(t, Options{Country: writeDB(t, geoiptest.WriteCountry, countryEntries), Metrics: m})
	for _, ip := range []string{
		"203.0.113.1",   // miss
		"203.0.113.2",   // hit: same /25
		"203.0.113.129", // miss: same /24, other /25
		"203.0.113.130", // hit
		"8.8.8.8",       // miss: not found, cached as such
		"8.8.8.9",       // hit
		"10.0.0.1",      // internal: not counted
	} {
		db.Lookup(netip.MustParseAddr(ip))
	}
	if got := testutil.ToFloat64(m.Lookups.WithLabelValues("hit")); got != 3 {
		t.Errorf("hits = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.Lookups.WithLabelValues("miss")); got != 3 {
		t.Errorf("misses = %v, want 3", got)
	}
}

func TestCacheDisabled(t *testing.T) {
	m := NewMetrics(nil)
	db := openDB(t, Options{Country: writeDB(t, geoiptest.WriteCountry, countryEntries), CacheSize: -1, Metrics: m})
	want := Info{Country: "US", Network: pfx("203.0.113.0/25")}
	for range 3 {
		if got := db.Lookup(netip.MustParseAddr("203.0.113.1")); got != want {
			t.Errorf("Lookup = %+v, want %+v", got, want)
		}
	}
	if got := testutil.ToFloat64(m.Lookups.WithLabelValues("miss")); got != 3 {
		t.Errorf("misses = %v, want 3", got)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	country := writeDB(t, geoiptest.WriteCountry, countryEntries)
	asn := writeDB(t, geoiptest.WriteASN, asnEntries)
	corrupt := filepath.Join(dir, "corrupt.mmdb")
	if err := os.WriteFile(corrupt, randomBytes(64<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.mmdb")
	b := readFile(t, country)
	if err := os.WriteFile(truncated, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.mmdb")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.mmdb")

	tests := []struct {
		name  string
		opts  Options
		wants []string // substrings of the error
	}{
		{"no path", Options{}, []string{"no country or ASN database"}},
		{"missing country", Options{Country: missing}, []string{missing, "no such file"}},
		{"missing asn", Options{Country: country, ASN: missing}, []string{"asn", missing}},
		{"corrupt", Options{Country: corrupt}, []string{"country", corrupt}},
		{"truncated", Options{Country: truncated}, []string{truncated}},
		{"empty", Options{ASN: empty}, []string{"asn", empty}},
		{"asn as country", Options{Country: asn}, []string{"country", asn, `"GeoLite2-ASN"`, "City, Country or Enterprise"}},
		{"country as asn", Options{ASN: country}, []string{"asn", country, `"GeoLite2-Country"`, "ASN or ISP"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(tt.opts)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded, want an error")
			}
			for _, want := range tt.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestBuildTimestamp(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	before := float64(time.Now().Unix())
	country := writeDB(t, geoiptest.WriteCity, countryEntries)
	asn := writeDB(t, geoiptest.WriteASN, asnEntries)
	after := float64(time.Now().Unix())
	openDB(t, Options{Country: country, ASN: asn, Metrics: m})
	for _, name := range []string{"country", "asn"} {
		got := testutil.ToFloat64(m.BuildTimestamp.WithLabelValues(name))
		if got < before || got > after {
			t.Errorf("build timestamp of %s = %v, want in [%v, %v]", name, got, before, after)
		}
	}
}

func TestClose(t *testing.T) {
	db, err := Open(Options{Country: writeDB(t, geoiptest.WriteCountry, countryEntries)})
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr("203.0.113.1")
	db.Lookup(ip)
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if got := db.Lookup(ip); got != (Info{}) {
		t.Errorf("Lookup after Close = %+v, want zero Info", got)
	}
	if err := db.Reload(); err == nil {
		t.Error("Reload after Close succeeded, want an error")
	}
}

// TestLookupLocation reads a City record's location and accuracy radius;
// a Country database has none.
func TestLookupLocation(t *testing.T) {
	entries := []geoiptest.Entry{{Network: "203.0.113.0/24", Country: "BR"}}
	city := openDB(t, Options{Country: writeDB(t, geoiptest.WriteCity, entries)})
	got := city.Lookup(netip.MustParseAddr("203.0.113.1"))
	if !got.Located || got.Lat != -15.7797 || got.Lon != -47.9297 || got.RadiusKm != 100 {
		t.Errorf("City lookup = %+v, want Brasília's location with a 100 km radius", got)
	}
	country := openDB(t, Options{Country: writeDB(t, geoiptest.WriteCountry, entries)})
	if got := country.Lookup(netip.MustParseAddr("203.0.113.1")); got.Located || got.Country != "BR" {
		t.Errorf("Country lookup = %+v, want BR without a location", got)
	}
}
