package geoip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"

	geoip2 "github.com/oschwald/geoip2-golang/v2"
	"github.com/oschwald/maxminddb-golang/v2"
)

// Info is what a lookup tells about an address.
type Info struct {
	// Country is the ISO 3166-1 alpha-2 code of the country the address is
	// located in, "" when unknown.
	Country string
	// ASN is the number of the autonomous system the address belongs to,
	// 0 when unknown or without an ASN database.
	ASN uint32
	// Org is the organisation of the autonomous system, "" when unknown.
	Org string
	// Lat and Lon are the City database's location of the address, in
	// degrees, and RadiusKm how far from it the address may be; Located
	// is false when the database gives no location.
	Lat, Lon float64
	RadiusKm uint16
	Located  bool
	// Network is the database network the address fell in: the country
	// database's, or the ASN database's when there is no country database.
	// It is the zero Prefix when the address was not found.
	Network netip.Prefix
	// Internal is set for loopback, private (RFC 1918, RFC 4193 ULA),
	// link-local (unicast and multicast), CGNAT (100.64.0.0/10) and
	// unspecified addresses, which are never looked up.
	Internal bool
}

// Options are the databases a DB reads and how it serves them.
//
// The files are memory-mapped: update them by writing a new file and
// renaming it over the old one, as geoipupdate does. Rewriting a file in
// place changes the pages under running lookups, and truncating it can
// crash the process.
type Options struct {
	// Country is the path of a GeoIP2 or GeoLite2 City or Country database
	// (an Enterprise database works too); "" for none.
	Country string
	// CountryName names the Country database in errors ("city" when the
	// configuration gave a City database); empty means "country".
	CountryName string
	// ASN is the path of a GeoLite2 ASN database (a GeoIP2 ISP database
	// works too); "" for none.
	ASN string
	// CacheSize is the number of entries of the lookup cache, and of each
	// cache of decoded records: 0 means 4096, a negative size disables the
	// caches.
	CacheSize int
	// Logger receives reloads and reload failures; nil discards them.
	Logger *slog.Logger
	// Metrics are updated by lookups and reloads; nil means metrics that
	// are not registered anywhere.
	Metrics *Metrics
}

const defaultCacheSize = 4096

// DB answers lookups from a country database, an ASN database or both.
// Its methods are safe for concurrent use.
type DB struct {
	opts    Options
	log     *slog.Logger
	metrics *Metrics

	cur atomic.Pointer[generation] // nil once closed

	mu      sync.Mutex // serialises Reload and Close
	closed  bool
	lastErr string // the last reload error logged, "" after a success
}

// Open opens the databases named in opts. A missing or corrupt file, or a
// file whose database type does not fit the option it was given (such as
// an ASN database given as Country), is an error naming the file. At least
// one of opts.Country and opts.ASN must be set.
func Open(opts Options) (*DB, error) {
	if opts.Country == "" && opts.ASN == "" {
		return nil, errors.New("open geoip: no country or ASN database path given")
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = defaultCacheSize
	}
	db := &DB{opts: opts, log: opts.Logger, metrics: opts.Metrics}
	if db.log == nil {
		db.log = slog.New(slog.DiscardHandler)
	}
	if db.metrics == nil {
		db.metrics = NewMetrics(nil)
	}
	g, err := db.open()
	if err != nil {
		return nil, err
	}
	db.cur.Store(g)
	db.setBuildTimes(g)
	return db, nil
}

// Lookup returns what the databases tell about ip. IPv4-mapped IPv6
// addresses are looked up as IPv4 and zones are ignored. An internal
// address gets only Internal set; an address the databases do not know, or
// an invalid one, gets the zero Info. Lookup never fails, also while a
// reload is under way or after Close.
func (db *DB) Lookup(ip netip.Addr) Info {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return Info{}
	}
	if Internal(ip) {
		return Info{Internal: true}
	}
	key := addrKey(ip)
	for {
		g := db.cur.Load()
		if g == nil {
			return Info{}
		}
		if g.answers != nil {
			if e, ok := g.answers.get(key); ok && e.valid.Contains(ip) {
				db.metrics.hit.Inc()
				return e.info
			}
		}
		if !g.acquire() {
			continue // replaced meanwhile: the next load sees its successor
		}
		info, valid := g.lookup(ip)
		g.release()
		db.metrics.miss.Inc()
		if g.answers != nil {
			g.answers.put(key, addrEntry{valid, info})
		}
		return info
	}
}

// Close stops the DB: later lookups return the zero Info and reloads fail.
// The files are closed once no lookup is still reading them.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closed {
		return nil
	}
	db.closed = true
	if g := db.cur.Swap(nil); g != nil {
		return g.retire()
	}
	return nil
}

// Internal reports whether ip never comes from the public internet, so
// that no GeoIP database describes it and no detector places it: loopback,
// private (RFC 1918, fc00::/7), link-local unicast, unspecified, CGNAT
// (100.64.0.0/10), and link-local multicast (224.0.0.0/24, ff02::/16),
// which no router forwards off the link: a request "from" such an address
// was made, or forged, next door, and a place for it would be made up.
func Internal(ip netip.Addr) bool {
	ip = ip.Unmap()
	if ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsUnspecified() {
		return true
	}
	if ip.Is4() {
		a := ip.As4()
		return a[0] == 100 && a[1]&0xc0 == 64 // 100.64.0.0/10, RFC 6598
	}
	return false
}

// generation is one set of open database files with the caches of what
// was read from them. Lookups hold it through a reference count while they
// read the memory-mapped files, so a reload never unmaps them under a
// running lookup: the last of the retiring reload and the lookups closes
// them.
type generation struct {
	country, asn *maxminddb.Reader
	sigs         [2]fileSig // country, asn, as stated before opening
	log          *slog.Logger

	// Caches of answers by network and of decoded records by offset; nil
	// when disabled. They are Go memory: reading them needs no hold on
	// the readers.
	answers   *cache[addrEntry]
	countries *cache[placeRecord]
	asns      *cache[asnRecord]

	refs atomic.Int64 // lookups under way, plus retired once replaced
}

const retired = 1 << 62

// acquire takes a hold on g's readers, or reports false when g has been
// retired and must not be used.
func (g *generation) acquire() bool {
	for {
		v := g.refs.Load()
		if v&retired != 0 {
			return false
		}
		if g.refs.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

func (g *generation) release() {
	if g.refs.Add(-1) == retired {
		if err := g.close(); err != nil {
			g.log.Warn("geoip: close replaced databases", "err", err)
		}
	}
}

// retire forbids new holds on g and closes it when no lookup holds it;
// otherwise the last lookup closes it.
func (g *generation) retire() error {
	if g.refs.Add(retired) == retired {
		return g.close()
	}
	return nil
}

func (g *generation) close() error {
	var errs []error
	for _, r := range []*maxminddb.Reader{g.country, g.asn} {
		if r != nil {
			errs = append(errs, r.Close())
		}
	}
	return errors.Join(errs...)
}

// lookup reads ip from g's readers. valid is the network every answer in
// info holds for, the smaller of the databases' networks.
func (g *generation) lookup(ip netip.Addr) (info Info, valid netip.Prefix) {
	if g.country != nil {
		res := g.country.Lookup(ip)
		p := res.Prefix()
		if res.Found() {
			pr := g.placeOf(res)
			info.Country, info.Network = pr.country, p
			info.Lat, info.Lon, info.RadiusKm, info.Located = pr.lat, pr.lon, pr.radius, pr.located
		}
		valid = narrow(valid, p, ip)
	}
	if g.asn != nil {
		res := g.asn.Lookup(ip)
		p := res.Prefix()
		if res.Found() {
			a := g.asnOf(res)
			info.ASN, info.Org = a.number, a.org
			if g.country == nil {
				info.Network = p
			}
		}
		valid = narrow(valid, p, ip)
	}
	return info, valid
}

// placeOf returns the country and location of a found record. Records
// are shared by many networks (a Country database has a few hundred), so
// decoded ones are cached by offset. A record that cannot be decoded has
// no country and no location.
func (g *generation) placeOf(res maxminddb.Result) placeRecord {
	key := recordKey(res.Offset())
	if g.countries != nil {
		if pr, ok := g.countries.get(key); ok {
			return pr
		}
	}
	var pr placeRecord
	if res.Decode(&pr) != nil {
		pr = placeRecord{}
	}
	if g.countries != nil {
		g.countries.put(key, pr)
	}
	return pr
}

// asnOf returns the autonomous system of a found record, cached by offset
// like placeOf.
func (g *generation) asnOf(res maxminddb.Result) asnRecord {
	key := recordKey(res.Offset())
	if g.asns != nil {
		if a, ok := g.asns.get(key); ok {
			return a
		}
	}
	var rec geoip2.ASN
	var a asnRecord
	if res.Decode(&rec) == nil {
		a = asnRecord{uint32(rec.AutonomousSystemNumber), rec.AutonomousSystemOrganization}
	}
	if g.asns != nil {
		g.asns.put(key, a)
	}
	return a
}

// narrow returns the smaller of valid and p, which both contain ip when
// valid; any doubt about p gives the host prefix of ip, cached only for ip
// itself.
func narrow(valid, p netip.Prefix, ip netip.Addr) netip.Prefix {
	if !p.IsValid() || !p.Contains(ip) {
		p = netip.PrefixFrom(ip, ip.BitLen())
	}
	if !valid.IsValid() || p.Bits() > valid.Bits() {
		return p
	}
	return valid
}

// dbKind is a database option: which types it accepts and its name in
// errors, logs and metrics.
type dbKind struct {
	name  string   // "country" or "asn"
	types []string // substrings of metadata.database_type it accepts
	want  string   // the accepted types, for people
}

var (
	countryKind = dbKind{"country", []string{"City", "Country", "Enterprise"}, "a City, Country or Enterprise database"}
	asnKind     = dbKind{"asn", []string{"ASN", "ISP"}, "an ASN or ISP database"}
)

// open opens the files of db.opts as a new generation.
func (db *DB) open() (*generation, error) {
	g := &generation{
		log:       db.log,
		answers:   newCache[addrEntry](db.opts.CacheSize),
		countries: newCache[placeRecord](db.opts.CacheSize),
		asns:      newCache[asnRecord](db.opts.CacheSize),
	}
	var err error
	if db.opts.Country != "" {
		g.sigs[0] = statSig(db.opts.Country)
		kind := countryKind
		if db.opts.CountryName != "" {
			kind.name = db.opts.CountryName
		}
		if g.country, err = openKind(db.opts.Country, kind); err != nil {
			return nil, err
		}
	}
	if db.opts.ASN != "" {
		g.sigs[1] = statSig(db.opts.ASN)
		if g.asn, err = openKind(db.opts.ASN, asnKind); err != nil {
			if g.country != nil {
				g.country.Close()
			}
			return nil, err
		}
	}
	return g, nil
}

func openKind(path string, kind dbKind) (*maxminddb.Reader, error) {
	r, err := maxminddb.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open geoip %s database %s: %w", kind.name, path, err)
	}
	t := r.Metadata.DatabaseType
	for _, want := range kind.types {
		if strings.Contains(t, want) {
			return r, nil
		}
	}
	r.Close()
	return nil, fmt.Errorf("open geoip %s database %s: database type %q is not %s",
		kind.name, path, t, kind.want)
}

func (db *DB) setBuildTimes(g *generation) {
	if g.country != nil {
		db.metrics.BuildTimestamp.WithLabelValues(countryKind.name).Set(float64(g.country.Metadata.BuildEpoch))
	}
	if g.asn != nil {
		db.metrics.BuildTimestamp.WithLabelValues(asnKind.name).Set(float64(g.asn.Metadata.BuildEpoch))
	}
}
