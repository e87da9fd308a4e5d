package detect

import (
	"hash/maphash"
	"net/netip"
	"path"
	"slices"
	"strconv"
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
}

// Locator places addresses. Implementations must answer from memory.
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

// Detectors raise findings from events as they are folded into a batch:
// broad requests, unfamiliar geography, bursts from new networks,
// probing, and tokens leaked into URLs. Their state is each client's
// baseline, rebuilt from the store at start, so that replaying lines after
// a crash judges them against what the first reading knew. The short
// windows of probing and bursts are not stored: they start empty after a
// restart. They do no I/O and are used from the engine's goroutine only.
type Detectors struct {
	cfg      rules.Detect
	rules    *rules.Rules
	loc      Locator
	byASN    bool
	findings *Findings
	clients  map[string]*clientState
	known    *KnownClients
	sprays   map[string]*sprayMeter // per source: unknown client ids
	scopes   map[string]*scopeInfo  // per distinct scope name, at most maxScopes
	seed     maphash.Seed
	probes   map[netip.Addr]*ring // denials per address, bounded
	patterns []string
	// memo is the address of the event being judged, placed once for
	// enrichment and reused by the geography detector; it is forgotten
	// after the event, so a database reloaded in between is used at once.
	memoIP    netip.Addr
	memoPlace Place
	reasons   map[string]bool
	deny      map[string]bool
	allow     map[string]bool
}

// clientState is what the detectors know of one client.
type clientState struct {
	first    time.Time
	events   uint64
	scopes   []uint32             // every scope requested or granted, by scopeInfo id, sorted
	clean    uint64               // scope lists of the last request, when it raised nothing
	countrys map[string]time.Time // country → first seen
	nets     map[netKey]*netState // network → first seen, bounded
	denials  *ring
}

// netKey is a client's network: an AS number, or an address prefix.
type netKey struct {
	asn uint32
	pfx netip.Prefix
}

func (k netKey) String() string {
	if k.asn != 0 {
		return "AS" + strconv.FormatUint(uint64(k.asn), 10)
	}
	return k.pfx.String()
}

type netState struct {
	first  time.Time
	recent *ring // event times while the network is new
}

// maxNets bounds the networks remembered per client; beyond it the one
// seen first is forgotten (a widely used patient app reaches it, a
// back-end service never does).
const maxNets = 256

// NewDetectors returns detectors raising into findings.
func NewDetectors(opt DetectorOptions, findings *Findings) *Detectors {
	d := &Detectors{
		cfg: opt.Config, rules: opt.Rules, loc: opt.Locator, byASN: opt.ByASN, findings: findings,
		clients: make(map[string]*clientState),
		scopes:  make(map[string]*scopeInfo),
		seed:    maphash.MakeSeed(),
		probes:  make(map[netip.Addr]*ring),
		reasons: make(map[string]bool), deny: make(map[string]bool), allow: make(map[string]bool),
	}
	if d.rules == nil {
		d.rules = &rules.Rules{}
	}
	d.known, d.sprays = opt.Known, make(map[string]*sprayMeter)
	if d.known == nil {
		d.known = NewKnownClients(d.rules)
	}
	d.patterns = opt.Config.BroadRequest.Patterns
	for _, r := range opt.Config.BroadRequest.Probing.Reasons {
		d.reasons[r] = true
	}
	for _, c := range opt.Config.UnfamiliarGeo.DenyCountries {
		d.deny[c] = true
	}
	for _, c := range opt.Config.UnfamiliarGeo.AllowCountries {
		d.allow[c] = true
	}
	return d
}

// Load seeds the baseline of a client from its stored record, when the
// client is known (see KnownClients); of another it keeps nothing.
func (d *Detectors) Load(c store.Client) {
	if !d.known.Load(c) {
		return
	}
	st := d.client(c.ID)
	st.first, st.events = c.Seen.First, c.Seen.N
	for s, u := range c.Scopes {
		if u.Requested.N > 0 || u.Granted.N > 0 {
			st.learn(d.scopeInfo(s).id)
		}
	}
	for cc, n := range c.Countries {
		st.countrys[cc] = n.First
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
		if ns := st.nets[k]; ns == nil || n.First.Before(ns.first) {
			st.nets[k] = &netState{first: n.First}
		}
	}
}

func (d *Detectors) client(id string) *clientState {
	st := d.clients[id]
	if st == nil {
		st = &clientState{
			countrys: make(map[string]time.Time),
			nets:     make(map[netKey]*netState),
		}
		d.clients[strings.Clone(id)] = st
	}
	return st
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
	if ev.Kind == ingest.KindUse && ev.Query != "" {
		d.tokenInURL(ev)
	}
	if ev.Client == "" {
		if ev.Kind == ingest.KindDeny {
			d.probing(ev, nil)
		}
		return
	}
	if !d.known.Admit(ev) {
		// Anyone can send any client id, to the IdP or the gateway: a
		// client the IdP never issued a token to and nobody registered
		// gets no state and no findings of its own, only the address's
		// probing and the source's client-id spray.
		d.unknownClient(ev)
		return
	}
	st := d.client(ev.Client)
	if ev.Kind == ingest.KindDeny {
		d.probing(ev, st)
	}
	if st.first.IsZero() || ev.Time.Before(st.first) {
		st.first = ev.Time
	}
	st.events++
	if ev.Kind == ingest.KindGrant || ev.Kind == ingest.KindDeny {
		d.broad(ev, st)
	}
	// A refusal is not the client being used: Keycloak logs a user's
	// mistyped password (LOGIN_ERROR) against the client, from wherever
	// the user is. Refusals count towards probing instead.
	if (ev.IP.IsValid() || ev.Country != "") && ev.Kind != ingest.KindDeny {
		d.geo(ev, st)
	}
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

func (d *Detectors) locate(ip netip.Addr) Place {
	if ip != d.memoIP {
		d.memoIP, d.memoPlace = ip, d.loc.Locate(ip)
	}
	return d.memoPlace
}

// tokenInURL raises a finding for a bearer token in a query string
// (RFC 6750 §2.3 allows it, and every access log then holds the token).
// The token itself is never kept: only the parameter's name.
func (d *Detectors) tokenInURL(ev *ingest.Event) {
	name := leakedParam(ev.Query)
	if name == "" {
		return
	}
	k := store.FindingKey{Kind: rules.KindTokenInURL, Client: d.findingClient(ev.Client), Subject: ev.Source}
	f := d.findings.Raise(k, store.SeverityHigh, ev.Time, ev.Pos)
	f.Summary = "A " + name + " was sent in a URL query string and is now in the " + ev.Source +
		" access log; rotate the token and make the client send it in the Authorization header."
	f.Evidence.Detail = name + " in the query string of a " + ev.Method + " request (value redacted)"
}

// leakedParam returns the name of the first query parameter that carries
// a token, or "".
func leakedParam(q string) string {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(kv, "=")
		if v == "" {
			continue
		}
		switch k {
		case "access_token", "id_token", "refresh_token":
			return k
		}
	}
	return ""
}

// probing counts refusals per client (st, nil for a client not known)
// and per address.
func (d *Detectors) probing(ev *ingest.Event, st *clientState) {
	p := d.cfg.BroadRequest.Probing
	if !d.reasons[ev.Reason] {
		return
	}
	window := time.Duration(p.Window)
	if st != nil {
		if st.denials == nil {
			st.denials = newRing(p.Denials)
		}
		if st.denials.add(ev.Time, window) {
			k := store.FindingKey{Kind: rules.KindBroadRequest, Client: ev.Client, Subject: "probing"}
			f := d.findings.Raise(k, store.SeverityWarning, ev.Time, ev.Pos)
			f.Summary = "The client collected " + strconv.Itoa(p.Denials) + " or more refusals (" + ev.Reason +
				") within " + humanDuration(window) + ": it may be probing for scopes it was not given."
			f.Evidence.Requests, f.Evidence.Window, f.Evidence.Detail = p.Denials, humanDuration(window), ev.Reason
		}
	}
	if !ev.IP.IsValid() {
		return
	}
	addr := ev.IP.Unmap()
	if addr.Is6() {
		// One host holds a whole /64: count it as one address.
		pfx, _ := addr.Prefix(64)
		addr = pfx.Addr()
	}
	r := d.probes[addr]
	if r == nil {
		if len(d.probes) >= maxProbes {
			d.expireProbes(ev.Time, window)
		}
		if len(d.probes) >= maxProbes {
			return // full of addresses refused within the window: keep their counts
		}
		r = newRing(p.Denials)
		d.probes[addr] = r
	}
	if r.add(ev.Time, window) {
		from := addr.String()
		if addr.Is6() {
			from += "/64"
		}
		k := store.FindingKey{Kind: rules.KindBroadRequest, Subject: "probing from " + from}
		f := d.findings.Raise(k, store.SeverityWarning, ev.Time, ev.Pos)
		f.Summary = "The address " + from + " collected " + strconv.Itoa(p.Denials) +
			" or more refusals within " + humanDuration(window) + ", across clients: it may be probing."
		f.Evidence.IP, f.Evidence.Requests, f.Evidence.Window, f.Evidence.Detail = ev.IP.String(), p.Denials, humanDuration(window), ev.Reason
	}
}

// maxProbes bounds the addresses whose refusals are counted at once.
const maxProbes = 1 << 16

// expireProbes forgets addresses without a refusal in the window.
func (d *Detectors) expireProbes(now time.Time, window time.Duration) {
	for ip, r := range d.probes {
		if now.Sub(r.newest()) > window {
			delete(d.probes, ip)
		}
	}
}

// scopeInfo is what a scope's name alone says about its breadth, with the
// scope's number for the clients' scope sets.
type scopeInfo struct {
	id       uint32
	severity string // of the broadest reason, "" when none
	reasons  []string
	smart    *rules.SMARTScope
	inRole   map[string]bool // role name → whether the role allows the scope
}

// noScope is the id of a scope beyond maxScopes: it is judged, but not
// remembered in any client's set.
const noScope = ^uint32(0)

// maxScopes bounds the distinct scope names remembered. Scope names are
// input (anyone can ask for any scope and be refused), so past the bound
// a new name is judged afresh each time and never becomes familiar.
const maxScopes = 1 << 18

func (d *Detectors) scopeInfo(s string) *scopeInfo {
	if si, ok := d.scopes[s]; ok {
		return si
	}
	si := &scopeInfo{id: noScope}
	raise := func(sev, reason string) {
		if store.SeverityRank(sev) > store.SeverityRank(si.severity) || si.severity == "" {
			si.severity = sev
		}
		si.reasons = append(si.reasons, reason)
	}
	if g, err := rules.ParseSMART(s); err == nil {
		si.smart = &g
		if g.Resource == "*" {
			switch {
			case g.Context == "system":
				raise(store.SeverityHigh, "system-wide wildcard")
			case g.Perms.Has(rules.Create) || g.Perms.Has(rules.Update) || g.Perms.Has(rules.Delete):
				raise(store.SeverityHigh, "wildcard with write access")
			default:
				raise(store.SeverityWarning, "wildcard read access")
			}
		}
	}
	for _, p := range d.patterns {
		if ok, _ := path.Match(p, s); ok {
			raise(store.SeverityHigh, "broad pattern "+p)
			break
		}
	}
	if cs, ok := d.rules.Scopes[s]; ok {
		switch cs.Lifecycle {
		case rules.Deprecated:
			r := "deprecated"
			if cs.ReplacedBy != "" {
				r += ", replaced by " + cs.ReplacedBy
			}
			raise(store.SeverityWarning, r)
		case rules.Retired:
			raise(store.SeverityHigh, "retired")
		}
	}
	if len(d.scopes) < maxScopes {
		si.id = uint32(len(d.scopes))
		d.scopes[strings.Clone(s)] = si
	}
	return si
}

// allows reports whether the role named name, allowing scopes role,
// permits the scope; the answer is kept per role.
func (si *scopeInfo) allows(name string, role []string, s string) bool {
	if ok, known := si.inRole[name]; known {
		return ok
	}
	ok := inRole(role, s, si.smart)
	if si.id != noScope {
		if si.inRole == nil {
			si.inRole = make(map[string]bool)
		}
		si.inRole[name] = ok
	}
	return ok
}

// has reports whether the client has asked for or been issued the scope.
func (st *clientState) has(id uint32) bool {
	_, ok := slices.BinarySearch(st.scopes, id)
	return ok
}

// learn adds the scope to the client's set.
func (st *clientState) learn(id uint32) {
	if id == noScope {
		return
	}
	if i, ok := slices.BinarySearch(st.scopes, id); !ok {
		st.scopes = slices.Insert(st.scopes, i, id)
	}
}

// scopeListHash identifies a request's scope lists, to tell a repeat of a
// clean request without judging each scope again.
func (d *Detectors) scopeListHash(ev *ingest.Event) uint64 {
	var h maphash.Hash
	h.SetSeed(d.seed)
	for _, s := range ev.Requested {
		h.WriteString(s)
		h.WriteByte(0)
	}
	h.WriteByte(1)
	for _, s := range ev.Granted {
		h.WriteString(s)
		h.WriteByte(0)
	}
	return h.Sum64()
}

// boundedName reports whether a scope name comes from a set the
// requester cannot grow: the catalog, or a SMART wildcard without a query
// constraint.
func (d *Detectors) boundedName(s string) bool {
	if _, ok := d.rules.Scopes[s]; ok {
		return true
	}
	g, err := rules.ParseSMART(s)
	return err == nil && g.Resource == "*" && g.RawQuery == ""
}

// broad judges the scopes of a grant or a refusal. A request with the
// same scope lists as the client's last request that raised nothing is
// clean again: what its scopes are, the client's role, and (every scope
// now being familiar) escalation cannot have changed.
func (d *Detectors) broad(ev *ingest.Event, st *clientState) {
	hash := d.scopeListHash(ev)
	if st.clean != 0 && st.clean == hash {
		return
	}
	cfg := d.cfg.BroadRequest
	formed := st.formed(cfg.Baseline, ev.Time)
	reg, registered := d.rules.Registered(ev.Client)
	var role []string
	if registered && reg.Role != "" {
		role = d.rules.Roles[reg.Role]
	}
	refused := ev.Kind == ingest.KindDeny
	distinct, raised := 0, false
	// verb says how the event shows the scope: asked for (requested), or
	// only granted (a token event that lists what it issued).
	judge := func(s, verb string) {
		if s == "" || strings.IndexByte(s, 0) >= 0 {
			return // not a scope the store can key
		}
		distinct++
		if refused && !d.boundedName(s) {
			// A refused request got nothing, and its scope names are
			// the requester's to invent: only names from a bounded set
			// (the catalog, unconstrained SMART wildcards) are judged,
			// so a spray of invented names cannot fill memory with
			// findings. Probing counts the refusals.
			return
		}
		si := d.scopeInfo(s)
		seenBefore := si.id != noScope && st.has(si.id)
		if !refused {
			st.learn(si.id)
		}
		sev, reasons := si.severity, si.reasons
		if refused {
			reasons = slices.Clip(reasons) // outside the role or new: moot for a refusal
			if sev == "" {
				return
			}
		}
		if !refused && role != nil && !d.rules.IsIdentityScope(s) && !si.allows(reg.Role, role, s) {
			reasons = append(slices.Clip(reasons), "outside role "+reg.Role)
			if sev == "" {
				sev = store.SeverityWarning
			}
		}
		if !refused && formed && !seenBefore {
			reasons = append(slices.Clip(reasons), "new for this client")
			if sev == "" {
				sev = store.SeverityWarning
			}
		}
		if sev == "" {
			return
		}
		raised = true
		k := store.FindingKey{Kind: rules.KindBroadRequest, Client: ev.Client, Subject: s}
		f := d.findings.Raise(k, sev, ev.Time, ev.Pos)
		f.Evidence.Detail = mergeReasons(f.Evidence.Detail, reasons)
		if cs, ok := d.rules.Scopes[s]; ok && cs.ReplacedBy != "" {
			f.Evidence.ReplacedBy = cs.ReplacedBy
		}
		f.Summary = "The client " + verb + " " + s + " (" + f.Evidence.Detail + ")."
	}
	for i, s := range ev.Requested {
		if !slices.Contains(ev.Requested[:i], s) {
			judge(s, "asked for")
		}
	}
	for _, s := range ev.Granted {
		if !slices.Contains(ev.Requested, s) {
			judge(s, "was granted")
		}
	}
	if distinct > cfg.MaxScopes && !refused {
		raised = true
		k := store.FindingKey{Kind: rules.KindBroadRequest, Client: ev.Client, Subject: "max_scopes"}
		f := d.findings.Raise(k, store.SeverityWarning, ev.Time, ev.Pos)
		what := "asked for " + strconv.Itoa(distinct) + " scopes in one request"
		if len(ev.Requested) == 0 {
			what = "was granted " + strconv.Itoa(distinct) + " scopes in one token"
		}
		f.Summary = "The client " + what + "; the limit is " + strconv.Itoa(cfg.MaxScopes) + "."
		f.Evidence.Scopes = append(f.Evidence.Scopes[:0], ev.Requested...)
		for _, s := range ev.Granted {
			if !slices.Contains(f.Evidence.Scopes, s) {
				f.Evidence.Scopes = append(f.Evidence.Scopes, s)
			}
		}
	}
	st.clean = 0
	if !raised {
		st.clean = hash
	}
}

// mergeReasons adds the reasons not yet in have, a list separated by "; ".
func mergeReasons(have string, reasons []string) string {
	for _, r := range reasons {
		if !slices.Contains(strings.Split(have, "; "), r) {
			if have != "" {
				have += "; "
			}
			have += r
		}
	}
	return have
}

// inRole reports whether a role that allows the scopes role permits s:
// listed as is, or a SMART scope within a listed SMART scope.
func inRole(role []string, s string, smart *rules.SMARTScope) bool {
	if slices.Contains(role, s) {
		return true
	}
	if smart == nil {
		return false
	}
	for _, r := range role {
		g, err := rules.ParseSMART(r)
		if err != nil {
			continue
		}
		if g.Context == smart.Context && (g.Resource == "*" || g.Resource == smart.Resource) &&
			smart.Perms&^g.Perms == 0 && (g.RawQuery == "" || g.RawQuery == smart.RawQuery) {
			return true
		}
	}
	return false
}

// network returns the client network of an address, and false for one
// that is internal or cannot be placed.
func (d *Detectors) network(ip netip.Addr) (netKey, bool) {
	ip = ip.Unmap()
	if geoip.Internal(ip) {
		return netKey{}, false
	}
	if d.byASN && d.loc != nil {
		if p := d.locate(ip); p.ASN != 0 {
			return netKey{asn: p.ASN}, true
		}
	}
	bits := 24
	if ip.Is6() {
		bits = 48
	}
	pfx, _ := ip.Prefix(bits)
	return netKey{pfx: pfx}, true
}

// geo judges where an event came from: a denied country, a country or
// network outside the client's baseline, and bursts from new networks.
func (d *Detectors) geo(ev *ingest.Event, st *clientState) {
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
	if d.allowed(ip, place.ASN) {
		return
	}
	country := place.Country
	if country == "" {
		country = ev.Country
	}
	gc := d.cfg.UnfamiliarGeo
	if country != "" {
		first, known := st.countrys[country]
		if !known {
			first = ev.Time
			st.countrys[country] = first
		}
		switch {
		case d.deny[country]:
			d.raiseGeo(ev, st, country, place, store.SeverityHigh, "a denied country")
		case d.allow[country] || d.expected(ev.Client, country):
		case st.formed(gc.Baseline, ev.Time) && !st.learnedBefore(gc.Baseline, first):
			d.raiseGeo(ev, st, country, place, store.SeverityWarning, "a country outside the client's baseline")
		}
	}
	if !ip.IsValid() {
		return
	}
	k, ok := d.network(ip)
	if !ok {
		return
	}
	ns := st.nets[k]
	if ns == nil {
		if len(st.nets) >= maxNets {
			forgetOldest(st.nets)
		}
		ns = &netState{first: ev.Time}
		st.nets[k] = ns
		if d.byASN && country != "" && st.formed(gc.Baseline, ev.Time) && !st.learnedBefore(gc.Baseline, ns.first) &&
			!d.expected(ev.Client, country) && !d.allow[country] && !d.deny[country] {
			d.raiseNetwork(ev, k, country, place)
		}
	}
	d.burst(ev, st, k, ns, country, place)
}

func (d *Detectors) expected(client, country string) bool {
	reg, ok := d.rules.Registered(client)
	return ok && slices.Contains(reg.ExpectedCountries, country)
}

// allowed reports traffic from an allowlisted egress range or AS.
func (d *Detectors) allowed(ip netip.Addr, asn uint32) bool {
	g := d.cfg.UnfamiliarGeo
	if asn != 0 && slices.Contains(g.AllowASNs, asn) {
		return true
	}
	if !ip.IsValid() {
		return false
	}
	for _, p := range g.AllowPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (d *Detectors) raiseGeo(ev *ingest.Event, st *clientState, country string, place Place, sev, why string) {
	k := store.FindingKey{Kind: rules.KindUnfamiliarGeo, Client: ev.Client, Subject: country}
	f := d.findings.Raise(k, sev, ev.Time, ev.Pos)
	f.Summary = "The client was used from " + country + ", " + why + "."
	f.Evidence.Country = country
	fillPlace(&f.Evidence, ev, place)
}

func (d *Detectors) raiseNetwork(ev *ingest.Event, k netKey, country string, place Place) {
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

// burst counts the events of a network while it is new to the client.
func (d *Detectors) burst(ev *ingest.Event, st *clientState, k netKey, ns *netState, country string, place Place) {
	bc := d.cfg.UnfamiliarBurst
	if !st.formed(bc.Baseline, ev.Time) || st.learnedBefore(bc.Baseline, ns.first) ||
		ev.Time.Sub(ns.first) > time.Duration(bc.NewFor) {
		ns.recent = nil // familiar, or no longer new
		return
	}
	if ns.recent == nil {
		ns.recent = newRing(bc.Requests + 1)
	}
	if !ns.recent.add(ev.Time, time.Duration(bc.Window)) {
		return
	}
	fk := store.FindingKey{Kind: rules.KindUnfamiliarBurst, Client: ev.Client, Subject: k.String()}
	sev := store.SeverityWarning
	if first, ok := st.countrys[country]; ok && country != "" && !st.learnedBefore(bc.Baseline, first) && !d.expected(ev.Client, country) {
		sev = store.SeverityHigh // a new network in a new country
	}
	f := d.findings.Raise(fk, sev, ev.Time, ev.Pos)
	f.Summary = "More than " + strconv.Itoa(bc.Requests) + " requests within " + humanDuration(time.Duration(bc.Window)) +
		" came from " + k.String() + ", a network new to the client."
	f.Evidence.Requests, f.Evidence.Window, f.Evidence.Network = bc.Requests+1, humanDuration(time.Duration(bc.Window)), k.String()
	f.Evidence.Country = country
	fillPlace(&f.Evidence, ev, place)
	if k.asn == 0 {
		f.Evidence.Network = k.String()
	}
}

func forgetOldest(m map[netKey]*netState) {
	var oldest netKey
	var at time.Time
	for k, ns := range m {
		if at.IsZero() || ns.first.Before(at) {
			oldest, at = k, ns.first
		}
	}
	delete(m, oldest)
}

// ring holds the newest n event times.
type ring struct {
	t    []int64
	next int
	full bool
}

func newRing(n int) *ring { return &ring{t: make([]int64, n)} }

// add records t and reports whether the ring is full with every time
// within window of t: n events in the window.
func (r *ring) add(t time.Time, window time.Duration) bool {
	r.t[r.next] = t.UnixNano()
	r.next++
	if r.next == len(r.t) {
		r.next, r.full = 0, true
	}
	if !r.full {
		return false
	}
	oldest := r.t[r.next]
	return t.UnixNano()-oldest <= int64(window)
}

func (r *ring) newest() time.Time {
	i := r.next - 1
	if i < 0 {
		i = len(r.t) - 1
	}
	return time.Unix(0, r.t[i])
}
