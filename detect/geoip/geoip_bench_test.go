package geoip

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/scopewatch/scopewatch/detect/geoip/geoiptest"
)

const (
	benchNetworks = 50_000
	benchASes     = 8_000
)

// benchDatabases writes a City and an ASN database of benchNetworks IPv4
// networks each, of /20 to /28, spread over the address space, and returns
// their paths and one address in each network. As in GeoLite2-ASN, which
// has about six networks per autonomous system, the networks share
// benchASes records.
func benchDatabases(b *testing.B) (country, asn string, addrs []netip.Addr) {
	b.Helper()
	codes := []string{"US", "CA", "BR", "DE", "FR", "GB", "NL", "RU", "CN", "IN", "JP", "AU", "ZA", "SE", "IT", "ES", "PL", "KR"}
	r := rand.New(rand.NewPCG(7, 11))
	const spacing = (1 << 32) / benchNetworks
	entries := make([]geoiptest.Entry, 0, benchNetworks)
	for i := range benchNetworks {
		bits := 20 + r.IntN(9)
		base := uint32(i) * spacing &^ (1<<(32-bits) - 1)
		a := netip.AddrFrom4([4]byte{byte(base >> 24), byte(base >> 16), byte(base >> 8), byte(base)})
		if Internal(a) {
			continue
		}
		p := netip.PrefixFrom(a, bits)
		as := r.IntN(benchASes)
		entries = append(entries, geoiptest.Entry{
			Network: p.String(),
			Country: codes[r.IntN(len(codes))],
			ASN:     uint32(64_000 + as),
			Org:     fmt.Sprintf("Example Networks %d", as),
		})
		addrs = append(addrs, netip.AddrFrom4([4]byte{byte(base >> 24), byte(base >> 16), byte(base >> 8), byte(base) | byte(r.IntN(16))}))
	}
	dir := b.TempDir()
	country, asn = filepath.Join(dir, "city.mmdb"), filepath.Join(dir, "asn.mmdb")
	if err := geoiptest.WriteCity(country, entries); err != nil {
		b.Fatal(err)
	}
	if err := geoiptest.WriteASN(asn, entries); err != nil {
		b.Fatal(err)
	}
	r.Shuffle(len(addrs), func(i, j int) { addrs[i], addrs[j] = addrs[j], addrs[i] })
	return country, asn, addrs
}

func BenchmarkLookup(b *testing.B) {
	country, asn, addrs := benchDatabases(b)
	open := func(b *testing.B, opts Options) *DB {
		opts.Country, opts.ASN = country, asn
		return openDB(b, opts)
	}
	// Addresses in 1,000 networks: all hits once the cache is warm.
	hot := addrs[:1000]

	b.Run("cached", func(b *testing.B) {
		db := open(b, Options{})
		for _, ip := range hot {
			db.Lookup(ip)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			db.Lookup(hot[i%len(hot)])
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	// Each lookup in another network than the last 4,096: answer cache
	// misses, with the cost of filling it; records are decoded or found by
	// offset.
	b.Run("uncached", func(b *testing.B) {
		db := open(b, Options{})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			db.Lookup(addrs[i%len(addrs)])
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	// Without any cache: the tree walk and the decoding of the record.
	b.Run("nocache_country", func(b *testing.B) {
		db := openDB(b, Options{Country: country, CacheSize: -1})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			db.Lookup(addrs[i%len(addrs)])
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	b.Run("nocache_asn", func(b *testing.B) {
		db := openDB(b, Options{ASN: asn, CacheSize: -1})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			db.Lookup(addrs[i%len(addrs)])
			i++
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	})
	b.Run("cached_parallel", func(b *testing.B) {
		db := open(b, Options{})
		for _, ip := range hot {
			db.Lookup(ip)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(hot))
			for pb.Next() {
				db.Lookup(hot[i%len(hot)])
				i++
			}
		})
	})
	b.Run("uncached_parallel", func(b *testing.B) {
		db := open(b, Options{})
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(len(addrs))
			for pb.Next() {
				db.Lookup(addrs[i%len(addrs)])
				i++
			}
		})
	})
}

// BenchmarkReload measures a reload of both 50k-network databases: opening
// the files, the swap and the retirement of the previous ones.
func BenchmarkReload(b *testing.B) {
	country, asn, addrs := benchDatabases(b)
	b.Run("city_asn", func(b *testing.B) {
		db := openDB(b, Options{Country: country, ASN: asn})
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if err := db.Reload(); err != nil {
				b.Fatal(err)
			}
			db.Lookup(addrs[i%len(addrs)])
			i++
		}
	})
}
