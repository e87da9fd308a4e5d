package detect

import (
	"hash/maphash"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/detect/geoip"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Place is where an address is, as a GeoIP database tells.
type Place struct {
	Country  string       // ISO 3166-1 alpha-2, "" when unknown
	ASN      uint32       // 0 when unknown or no ASN database
	Network  netip.Prefix // the database network holding the address
	Internal bool         // loopback, private, link-local, CGNAT: never unfamiliar
	// Lat and Lon locate the address (City database), RadiusKm is how far
	// from there it may be; Located is false without a location.
	Lat, Lon float64
	RadiusKm uint16
	Located  bool
}

// Locator places addresses. Implementations must answer from memory and
// be safe for concurrent use: the engine places the addresses of the
// events it parses on the parsing goroutines (NewPlacer).
type Locator interface {
	Locate(ip netip.Addr) Place
}

// DetectorOptions configure the event detectors.
type DetectorOptions struct {
	Config rules.Detect
	Rules  *rules.Rules
	// Locator places addresses; nil uses only the countries logs carry.
	Locator Locator
	// ByASN makes the autonomous system a client's network (an ASN
	// database is configured); otherwise it is the address's /24 (IPv4)
	// or /48 (IPv6).
	ByASN bool
	// Known are the clients that get state; share the accountant's.
	// Nil: a set of the clients Rules registers and grants issue to.
	Known *KnownClients
}

// Detectors raise findings from events as they are folded into a batch.
// Each detector is a type of its own, in a file of its own, behind the
// detector interface: tokenInURL, probing, clientIDSpray, broadRequest and
// unfamiliarGeo, which hands the networks it places to unfamiliarBurst.
// What they share is here: the configuration, the findings they raise
// into, the locator, and each known client's baseline (clientState),
// rebuilt from the store at start, so that replaying lines after a crash
// judges them against what the first reading knew. The short windows of
// probing and bursts are not stored: they start empty after a restart.
// They do no I/O and are used from the engine's goroutine only.
type Detectors struct {
	cfg      rules.Detect
	rules    *rules.Rules
	loc      Locator
	byASN    bool
	findings *Findings
	clients  map[string]*clientState
	known    *KnownClients
	holds    bool // known keeps these detectors' client states (KnownClients.holder)
	seed     maphash.Seed
	// memo is the address of the event being judged, placed once for
	// enrichment and reused by the geography detector; it is forgotten
	// after the event, so a database reloaded in between is used at once.
	memoIP    netip.Addr
	memoPlace Place

	// The detectors, in the order Observe calls them.
	tokens *tokenInURL
	probes *probing
	spray  *clientIDSpray
	broad  *broadRequest
	geo    *unfamiliarGeo
	// windows are the time windows changed since the last flush (windows.go).
	windows map[string]*ring
}

// A detector judges every event, in the order read, after it was folded
// into the batch. st is the state of the event's client, nil when the
// client gets none (not known, or no client at all); the detector decides
// which events concern it. Observe calls each one directly rather than
// through a slice of this interface: an event passed through an interface
// call escapes to the heap, an allocation per event for a caller whose
// event is on its stack.
type detector interface {
	observe(ev *ingest.Event, st *clientState)
}

var (
	_ detector = (*tokenInURL)(nil)
	_ detector = (*probing)(nil)
	_ detector = (*clientIDSpray)(nil)
	_ detector = (*broadRequest)(nil)
	_ detector = (*unfamiliarGeo)(nil)
)

// clientState is what the detectors know of one client. The fields every
// grant reads come first, so that they share the fewest cache lines: with
// thousands of clients a client's state is seldom in the caches.
type clientState struct {
	first  time.Time
	events uint64
	// broadRequest's
	// The scopes requested or granted, by scopeInfo id: the first 128
	// ids (a deployment's catalog, mostly) in a bit set held in the
	// state, the others sorted in scopes.
	lowScopes [2]uint64
	clean     uint64 // scope lists of the last request, when it raised nothing
	// unfamiliarGeo's, and unfamiliarBurst's in netState
	countrys []countrySeen // few: a linear search beats a map's hash
	nets     netSet        // network → first seen, bounded
	// The first country and networks are held in the state itself, on
	// the cache lines next to the fields above, rather than in arrays
	// of their own that a grant would read from memory.
	countryBuf [1]countrySeen
	netBuf     [4]netEntry
	scopes     []uint32
	across     *acrossNets // events from all new networks, for spread bursts
	// probing's
	denials    *ring
	denialFrom []netip.Addr // the latest distinct addresses refused, at most maxDenialFrom
}

// NewDetectors returns detectors raising into findings.
func NewDetectors(opt DetectorOptions, findings *Findings) *Detectors {
	d := &Detectors{
		cfg: opt.Config, rules: opt.Rules, loc: opt.Locator, byASN: opt.ByASN, findings: findings,
		clients: make(map[string]*clientState),
		seed:    maphash.MakeSeed(),
		known:   opt.Known,
	}
	if d.rules == nil {
		d.rules = &rules.Rules{}
	}
	if d.known == nil {
		d.known = NewKnownClients(d.rules)
	}
	if d.known.holder == nil {
		// The first detectors sharing the set keep their states in it;
		// other detectors sharing it look theirs up in clients only.
		d.known.holder = d
	}
	d.holds = d.known.holder == d
	d.broad = &broadRequest{d: d, cfg: opt.Config.BroadRequest, scopes: make(map[string]*scopeInfo)}
	d.probes = newProbing(d, opt.Config.BroadRequest.Probing)
	d.spray = &clientIDSpray{d: d, cfg: opt.Config.ClientIDSpray, meters: make(map[string]*sprayMeter)}
	d.tokens = &tokenInURL{d: d}
	d.geo = newUnfamiliarGeo(d, opt.Config.UnfamiliarGeo, &unfamiliarBurst{d: d, cfg: opt.Config.UnfamiliarBurst},
		newImpossibleTravel(d, opt.Config.ImpossibleTravel, opt.Config.UnfamiliarGeo.Baseline))
	return d
}

// Load seeds the baseline of a client from its stored record, when the
// client is known (see KnownClients); of another it keeps nothing.
func (d *Detectors) Load(c store.Client) {
	if !d.known.Load(c) {
		return
	}
	st := d.client(c.ID, d.known.isIssued(c.ID))
	st.first, st.events = c.Seen.First, c.Seen.N
	for s, u := range c.Scopes {
		if u.Requested.N > 0 || u.Granted.N > 0 {
			st.sawScope(d.broad.scopeInfo(s).id, true)
		}
	}
	for cc, n := range c.Countries {
		st.sawCountry(cc, n.First)
	}
	for ip, n := range c.IPs {
		a, err := netip.ParseAddr(ip)
		if err != nil {
			continue
		}
		k, ok := d.network(a)
		if !ok {
			continue
		}
		if ns := st.nets.find(k); ns == nil {
			st.nets.add(k, n.First)
		} else if n.First.Before(ns.first) {
			*ns = netState{first: n.First}
		}
	}
}

// client returns the state of client id, made when it has none; issued
// says the client was issued a token, so that known keeps the state with
// it when these detectors are its holder.
func (d *Detectors) client(id string, issued bool) *clientState {
	st := d.clients[id]
	if st == nil {
		st = newClientState()
		key := strings.Clone(id)
		d.clients[key] = st
		if issued && d.holds {
			d.known.hold(key, st)
		}
		return st
	}
	if issued && d.holds {
		d.known.hold(strings.Clone(id), st) // made before the client's first token
	}
	return st
}

// admit returns the state of ev's client, nil when it gets none (see
// KnownClients); ev.Client must not be empty. It learns the client from a
// grant. As known's holder it finds the state in the lookup that admits
// the client, without a lookup of clients.
func (d *Detectors) admit(ev *ingest.Event) *clientState {
	if !d.holds {
		if !d.known.Admit(ev) {
			return nil
		}
		return d.client(ev.Client, false)
	}
	st, issued, ok := d.known.admitHeld(ev)
	if !ok {
		return nil
	}
	if st == nil {
		st = d.client(ev.Client, issued)
	}
	return st
}

// newClientState returns an empty state whose countrys and nets start in
// its own buffers.
func newClientState() *clientState {
	st := &clientState{}
	st.countrys = st.countryBuf[:0]
	st.nets = st.netBuf[:0]
	return st
}

// countrySeen is a country a client was seen in, and when first. A code
// of two bytes (an ISO code, nearly always) is also held in pair, so that
// a search compares it there rather than reading each entry's string,
// which lies elsewhere in memory.
type countrySeen struct {
	first time.Time
	code  string
	pair  [2]byte // code when it has two bytes, else zero
}

// codePair returns the two bytes of a country code of two bytes.
func codePair(code string) (p [2]byte) {
	if len(code) == 2 {
		p[0], p[1] = code[0], code[1]
	}
	return p
}

// country returns when the client was first seen in country code.
func (st *clientState) country(code string) (time.Time, bool) {
	if len(code) == 2 {
		p := codePair(code)
		for i := range st.countrys {
			if c := &st.countrys[i]; c.pair == p && len(c.code) == 2 {
				return c.first, true
			}
		}
		return time.Time{}, false
	}
	for i := range st.countrys {
		if st.countrys[i].code == code {
			return st.countrys[i].first, true
		}
	}
	return time.Time{}, false
}

// sawCountry returns when the client was first seen in country code, at
// t when it was not before.
func (st *clientState) sawCountry(code string, t time.Time) (first time.Time, known bool) {
	if first, ok := st.country(code); ok {
		return first, true
	}
	st.countrys = append(st.countrys, countrySeen{first: t, code: strings.Clone(code), pair: codePair(code)})
	return t, false
}

// formed reports whether a client's history at t is long enough for
// baseline b.
func (st *clientState) formed(b rules.Baseline, t time.Time) bool {
	return !st.first.IsZero() && t.Sub(st.first) >= time.Duration(b.LearningPeriod) && st.events >= uint64(b.MinEvents)
}

// learnedBefore reports whether something first seen at first belongs to
// the baseline b: it was seen within the learning period.
func (st *clientState) learnedBefore(b rules.Baseline, first time.Time) bool {
	return first.Sub(st.first) < time.Duration(b.LearningPeriod)
}

// Observe judges one event that the accountant counted (ev.Client is a
// usable key) or left unattributed. It must be called after the event
// was folded into the batch, with the events in the order read.
func (d *Detectors) Observe(ev *ingest.Event) {
	defer d.forgetPlace()
	if strings.IndexByte(ev.Client, 0) >= 0 {
		return // the store cannot key it; the accountant counted it malformed
	}
	// Anyone can send any client id, to the IdP or the gateway: a client
	// the IdP never issued a token to and nobody registered gets no state
	// and no findings of its own, only the address's probing and the
	// source's client-id spray.
	var st *clientState
	if ev.Client != "" {
		st = d.admit(ev)
	}
	if st != nil {
		if st.first.IsZero() || ev.Time.Before(st.first) {
			st.first = ev.Time
		}
		st.events++
	}
	d.tokens.observe(ev, st)
	d.probes.observe(ev, st)
	d.spray.observe(ev, st)
	d.broad.observe(ev, st)
	d.geo.observe(ev, st)
}

// Enrich fills in the country of an event from the address's place when
// the line carries none, so the store records where clients come from.
func (d *Detectors) Enrich(ev *ingest.Event) {
	if ev.Country != "" || d.loc == nil || !ev.IP.IsValid() {
		return
	}
	ip := ev.IP.Unmap()
	if geoip.Internal(ip) {
		return
	}
	ev.Country = d.locate(ip).Country
}

func (d *Detectors) forgetPlace() { d.memoIP = netip.Addr{} }

// NewPlacer returns a function that places an address as detectors with
// loc do, for use off their goroutine, or nil when loc is nil. ok is false
// for an address detectors never place (invalid, or internal). The engine
// calls it on the goroutines that parse the lines, so that the lookups
// leave the goroutine that accounts and detects, and hands each place to
// Detectors.Placed before the event's Enrich and Observe.
func NewPlacer(loc Locator) func(ip netip.Addr) (p Place, ok bool) {
	if loc == nil {
		return nil
	}
	return func(ip netip.Addr) (Place, bool) {
		ip = ip.Unmap()
		if !ip.IsValid() || geoip.Internal(ip) {
			return Place{}, false
		}
		return loc.Locate(ip), true
	}
}

// Placed gives the place of ip that a NewPlacer found, for the next event's
// Enrich and Observe, which then do not look ip up.
func (d *Detectors) Placed(ip netip.Addr, p Place) { d.memoIP, d.memoPlace = ip.Unmap(), p }

func (d *Detectors) locate(ip netip.Addr) Place {
	if ip != d.memoIP {
		d.memoIP, d.memoPlace = ip, d.loc.Locate(ip)
	}
	return d.memoPlace
}

// sawScope reports whether the client had asked for or been issued the
// scope before, and adds it to the client's set when learn is set.
func (st *clientState) sawScope(id uint32, learn bool) bool {
	if id == noScope {
		return false
	}
	if id < 128 {
		w, bit := &st.lowScopes[id>>6], uint64(1)<<(id&63)
		ok := *w&bit != 0
		if learn {
			*w |= bit
		}
		return ok
	}
	i, ok := slices.BinarySearch(st.scopes, id)
	if !ok && learn {
		st.scopes = slices.Insert(st.scopes, i, id)
	}
	return ok
}
