package detect

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/scopewatch/scopewatch/detect/geoip"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// unfamiliarGeo raises unfamiliar_geo when a client whose baseline has
// formed (unfamiliar_geo.baseline) is used from a country it was not seen
// in while learning (warning), from a denied country (high, whatever the
// baseline), or, with an ASN database, from an autonomous system new to
// it (info). Internal addresses, allowlisted countries, prefixes and
// ASNs, and a client's registered expected_countries are exempt. It then
// hands every sighting of a network to the network detectors (bursts).
type unfamiliarGeo struct {
	d           *Detectors
	cfg         rules.UnfamiliarGeo
	deny, allow map[string]bool
	burst       *unfamiliarBurst
	travel      *impossibleTravel
}

// A netDetector judges a client's event as a sighting of the network it
// came from, after unfamiliarGeo has placed it. unfamiliarGeo calls each
// directly, for the reason Observe does.
type netDetector interface {
	sighted(ev *ingest.Event, st *clientState, s *sighting)
}

// sighting is an event's network, as unfamiliarGeo placed it.
type sighting struct {
	net     netKey
	state   *netState // the client's record of the network
	country string    // "" when unknown
	place   Place
}

func newUnfamiliarGeo(d *Detectors, cfg rules.UnfamiliarGeo, burst *unfamiliarBurst, travel *impossibleTravel) *unfamiliarGeo {
	g := &unfamiliarGeo{d: d, cfg: cfg, deny: make(map[string]bool), allow: make(map[string]bool), burst: burst, travel: travel}
	for _, c := range cfg.DenyCountries {
		g.deny[c] = true
	}
	for _, c := range cfg.AllowCountries {
		g.allow[c] = true
	}
	return g
}

// network returns the client network of an address, and false for one
// that is internal or cannot be placed.
func (d *Detectors) network(ip netip.Addr) (netKey, bool) {
	ip = ip.Unmap()
	if geoip.Internal(ip) {
		return 0, false
	}
	return d.publicNetwork(ip), true
}

// publicNetwork returns the client network of an unmapped address that
// is not internal.
func (d *Detectors) publicNetwork(ip netip.Addr) netKey {
	if d.byASN && d.loc != nil {
		if p := d.locate(ip); p.ASN != 0 {
			return asnKey(p.ASN)
		}
	}
	return prefixKey(ip)
}

// observe judges where an event came from: a denied country, a country
// or network outside the client's baseline; then it hands the sighting of
// the network to the network detectors.
func (g *unfamiliarGeo) observe(ev *ingest.Event, st *clientState) {
	// A refusal is not the client being used: Keycloak logs a user's
	// mistyped password (LOGIN_ERROR) against the client, from wherever
	// the user is. Refusals count towards probing instead.
	if st == nil || ev.Kind == ingest.KindDeny || (!ev.IP.IsValid() && ev.Country == "") {
		return
	}
	d := g.d
	var place Place
	ip := ev.IP.Unmap()
	if ip.IsValid() {
		if geoip.Internal(ip) {
			return
		}
		if d.loc != nil {
			place = d.locate(ip)
			if place.Internal {
				return
			}
		}
	}
	if g.allowed(ip, place.ASN) {
		return
	}
	country := place.Country
	if country == "" {
		country = ev.Country
	}
	gc := g.cfg
	if country != "" {
		first, _ := st.sawCountry(country, ev.Time)
		switch {
		case g.deny[country]:
			g.raiseGeo(ev, st, country, place, store.SeverityHigh, "a denied country")
		case g.allow[country] || d.expected(ev.Client, country):
		case st.formed(gc.Baseline, ev.Time) && !st.learnedBefore(gc.Baseline, first):
			g.raiseGeo(ev, st, country, place, store.SeverityWarning, "a country outside the client's baseline")
		}
	}
	if !ip.IsValid() {
		return
	}
	k := d.publicNetwork(ip) // ip is unmapped and not internal (above)
	ns := st.nets.find(k)
	if ns == nil {
		if len(st.nets) >= maxNets {
			st.nets.forgetOldest()
		}
		ns = st.nets.add(k, ev.Time)
		if d.byASN && country != "" && st.formed(gc.Baseline, ev.Time) && !st.learnedBefore(gc.Baseline, ns.first) &&
			!d.expected(ev.Client, country) && !g.allow[country] && !g.deny[country] {
			g.raiseNetwork(ev, k, country, place)
		}
	}
	s := &sighting{net: k, state: ns, country: country, place: place}
	g.burst.sighted(ev, st, s)
	g.travel.sighted(ev, st, s)
}

func (d *Detectors) expected(client, country string) bool {
	reg, ok := d.rules.Registered(client)
	return ok && slices.Contains(reg.ExpectedCountries, country)
}

// allowed reports traffic from an allowlisted egress range or AS.
func (g *unfamiliarGeo) allowed(ip netip.Addr, asn uint32) bool {
	if asn != 0 && slices.Contains(g.cfg.AllowASNs, asn) {
		return true
	}
	if !ip.IsValid() {
		return false
	}
	for _, p := range g.cfg.AllowPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (g *unfamiliarGeo) raiseGeo(ev *ingest.Event, st *clientState, country string, place Place, sev, why string) {
	d := g.d
	k := store.FindingKey{Kind: rules.KindUnfamiliarGeo, Client: ev.Client, Subject: country}
	f := d.findings.Raise(k, sev, ev.Time, ev.Pos)
	f.Summary = "The client was used from " + country + ", " + why + "."
	f.Evidence.Country = country
	fillPlace(&f.Evidence, ev, place)
}

func (g *unfamiliarGeo) raiseNetwork(ev *ingest.Event, k netKey, country string, place Place) {
	d := g.d
	fk := store.FindingKey{Kind: rules.KindUnfamiliarGeo, Client: ev.Client, Subject: k.String()}
	f := d.findings.Raise(fk, store.SeverityInfo, ev.Time, ev.Pos)
	f.Summary = "The client was used from network " + k.String() + ", outside its baseline (in " + country + ")."
	f.Evidence.Country = country
	fillPlace(&f.Evidence, ev, place)
}

func fillPlace(e *store.Evidence, ev *ingest.Event, place Place) {
	if place.ASN != 0 {
		e.ASN = place.ASN
	}
	if place.Network.IsValid() {
		e.Network = place.Network.String()
	}
	if ev.IP.IsValid() {
		e.IP = ev.IP.String()
	}
	if ev.Subject != "" {
		e.Subject = ev.Subject
	}
}

// netKey is a client's network: an AS number, or the /24 (IPv4) or /48
// (IPv6) prefix of an address, packed in one word that hashes fast (it is
// looked up on every event): a tag in the top two bits, the AS number or
// the prefix's bits below.
type netKey uint64

const (
	netASN netKey = 1 << 62
	netV4  netKey = 2 << 62
	netV6  netKey = 3 << 62
	netTag netKey = 3 << 62
)

func asnKey(asn uint32) netKey { return netASN | netKey(asn) }

// prefixKey returns the key of ip's /24 (IPv4) or /48 (IPv6) network.
func prefixKey(ip netip.Addr) netKey {
	if ip.Is4() {
		a := ip.As4()
		return netV4 | netKey(a[0])<<16 | netKey(a[1])<<8 | netKey(a[2])
	}
	a := ip.As16()
	return netV6 | netKey(binary.BigEndian.Uint64(a[:8])>>16)
}

// isASN reports whether k is an AS number rather than a prefix.
func (k netKey) isASN() bool { return k&netTag == netASN }

func (k netKey) String() string {
	v := uint64(k &^ netTag)
	switch k & netTag {
	case netASN:
		return "AS" + strconv.FormatUint(v, 10)
	case netV4:
		return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 16), byte(v >> 8), byte(v)}), 24).String()
	case netV6:
		var a [16]byte
		binary.BigEndian.PutUint64(a[:8], v<<16)
		return netip.PrefixFrom(netip.AddrFrom16(a), 48).String()
	}
	return "invalid/0"
}

type netState struct {
	first  time.Time
	recent *ring  // event times while the network is new
	wkey   string // recent's window key, once it has one
}

// maxNets bounds the networks remembered per client; beyond it the one
// seen first is forgotten (a widely used patient app reaches it, a
// back-end service never does).
const maxNets = 256

// netSet is a client's networks with their states, sorted by key in one
// slice: a client has a few, and a binary search of them touches a cache
// line or two where a map's lookup (its groups, then the state behind a
// pointer) touches several. A *netState from find or add holds until the
// set next changes.
type netSet []netEntry

type netEntry struct {
	key netKey
	netState
}

// search returns where k is or would be inserted, and whether it is there.
func (s netSet) search(k netKey) (int, bool) {
	lo, hi := 0, len(s)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s[m].key < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < len(s) && s[lo].key == k
}

// find returns the state of network k, nil when the set lacks it.
func (s netSet) find(k netKey) *netState {
	if i, ok := s.search(k); ok {
		return &s[i].netState
	}
	return nil
}

// add adds network k, which the set lacks, first seen at first, and
// returns its state.
func (s *netSet) add(k netKey, first time.Time) *netState {
	i, _ := s.search(k)
	*s = slices.Insert(*s, i, netEntry{key: k, netState: netState{first: first}})
	return &(*s)[i].netState
}

// forgetOldest drops the network seen first (one whose time is zero only
// when all are).
func (s *netSet) forgetOldest() {
	oldest := -1
	var at time.Time
	for i := range *s {
		if first := (*s)[i].first; at.IsZero() || first.Before(at) {
			oldest, at = i, first
		}
	}
	if oldest >= 0 {
		*s = slices.Delete(*s, oldest, oldest+1)
	}
}
