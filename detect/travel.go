package detect

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// impossibleTravel raises impossible_travel when one subject is seen at
// two places farther apart than impossible_travel.speed_kmh allows in the
// time between the two events. The subject is the event's (pseudonymised
// when configured), or the client for events without one, such as a
// client-credentials client's. Places are GeoIP City locations; the
// distance counts less both accuracy radii, so two fuzzy places near each
// other never raise it. Only a trip to a network new to the client (first
// seen after its unfamiliar_geo baseline formed) is judged: a service that
// runs in several regions moves between familiar networks all day.
// Addresses unfamiliarGeo does not judge (internal, allowlisted networks
// and egress ranges) are exempt, as are addresses the City database does
// not locate. The key is the subject as the event carries it, pseudonymised
// when privacy.pseudonymise_subjects is set.
type impossibleTravel struct {
	d        *Detectors
	cfg      rules.ImpossibleTravel
	baseline rules.Baseline // unfamiliar_geo's: which networks are familiar
	subjects travellers
	clients  travellers // clients seen without a subject
}

var _ netDetector = (*impossibleTravel)(nil)

// lastPlace is where and when a subject was last seen, packed: 24 bytes.
type lastPlace struct {
	t        int64 // Unix nanoseconds
	lat, lon float32
	radius   uint16
	country  [2]byte // ISO code; zero when unknown or not two letters
}

// travellers holds last places by a 64-bit FNV-1a hash of the subject (or
// client id), never the key itself, in 256 shards by the hash's top byte.
// A shard changed since the last flush is saved whole, as one window
// record, with the batch whose lines changed it.
type travellers struct {
	prefix string // of the shards' window keys
	shards [256]travelShard
	n      int
	dirty  []uint8
	marked [256]bool
	// scratch holds a shard's numbers while flush encodes them.
	scratch []int64
}

// maxTravellers bounds the subjects, and apart the clients, whose last
// place is kept; a full table forgets one to take another.
const maxTravellers = 1 << 16

// Window keys of the travellers' shards: the prefix and the shard as two
// hex digits.
const (
	winTravelSubject = "travel\x00s\x00"
	winTravelClient  = "travel\x00c\x00"
)

func newImpossibleTravel(d *Detectors, cfg rules.ImpossibleTravel, baseline rules.Baseline) *impossibleTravel {
	return &impossibleTravel{d: d, cfg: cfg, baseline: baseline,
		subjects: travellers{prefix: winTravelSubject}, clients: travellers{prefix: winTravelClient}}
}

// travelKey hashes a subject or client id: FNV-1a, 64 bits, then
// murmur3's finaliser, so that the top byte (the shard) of similar ids
// spreads evenly.
func travelKey(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	if h == 0 {
		return 1 // zero is no hash (travelShard)
	}
	return h
}

func (ts *travellers) get(h uint64) (lastPlace, bool) {
	return ts.shards[h>>56].get(h)
}

// update replaces the place stored under h, which get found.
func (ts *travellers) update(h uint64, p lastPlace) {
	i := uint8(h >> 56)
	ts.mark(i)
	ts.shards[i].update(h, p)
}

// put stores p under h, which get did not find; a full table forgets
// the oldest entry of h's shard for it.
func (ts *travellers) put(h uint64, p lastPlace) {
	i := uint8(h >> 56)
	sh := &ts.shards[i]
	ts.mark(i)
	if ts.n >= maxTravellers {
		if sh.replaceOldest(h, p) {
			return
		}
		ts.forgetOne(i) // the shard is empty: another gives way
	}
	sh.add(h, p)
	ts.n++
}

// forgetOne drops the oldest entry of the first shard after i that has one.
func (ts *travellers) forgetOne(i uint8) {
	for range 256 {
		i++
		if ts.shards[i].dropOldest() {
			ts.n--
			ts.mark(i)
			return
		}
	}
}

func (ts *travellers) mark(i uint8) {
	if !ts.marked[i] {
		ts.marked[i] = true
		ts.dirty = append(ts.dirty, i)
	}
}

// travelColumns opens a shard's record in the column layout: the tag,
// then the entries' hashes, times, latitude bits, longitude bits, and
// radius-and-country words, each column oldest first. The store encodes a
// record as varints of the differences between consecutive numbers, so
// columns of like numbers (times close together, the same places again)
// take about half the bytes of entries written one after the other, the
// row layout of earlier versions, which restore still reads.
const travelColumns = 2

// flush moves the changed shards into b, nil for an emptied shard.
func (ts *travellers) flush(b *store.Batch) {
	for _, i := range ts.dirty {
		ts.marked[i] = false
		key := ts.prefix + strconv.FormatUint(uint64(i)|0x100, 16)[1:]
		sh := &ts.shards[i]
		n := sh.n
		if n == 0 {
			b.Windows[key] = nil
			continue
		}
		// Oldest first, so that a restart forgets in the same order. The
		// numbers are laid out in a scratch buffer and the batch takes
		// only their encoding.
		v := slices.Grow(ts.scratch[:0], 1+5*n)[:1+5*n]
		ts.scratch = v
		v[0] = travelColumns
		for j := range n {
			e := sh.at(j)
			h, p := e.h, &e.p
			v[1+j], v[1+n+j], v[1+2*n+j], v[1+3*n+j] = int64(h), p.t, int64(math.Float32bits(p.lat)), int64(math.Float32bits(p.lon))
			v[1+4*n+j] = int64(p.radius) | int64(p.country[0])<<16 | int64(p.country[1])<<24
		}
		b.Windows[key] = store.EncodeWindow(v)
	}
	ts.dirty = ts.dirty[:0]
}

// restore loads one stored shard, in either layout; it reports false for
// a record it cannot read, which is then deleted.
func (ts *travellers) restore(shard string, v []int64) bool {
	i, err := strconv.ParseUint(shard, 16, 8)
	if err != nil || len(shard) != 2 {
		return false
	}
	// entry returns field f of entry j.
	var entry func(j, f int) int64
	var n int
	switch {
	case len(v)%5 == 1 && v[0] == travelColumns:
		n = len(v) / 5
		entry = func(j, f int) int64 { return v[1+f*n+j] }
	case len(v)%5 == 0:
		n = len(v) / 5
		entry = func(j, f int) int64 { return v[5*j+f] }
	default:
		return false
	}
	sh := &ts.shards[i]
	for j := range n {
		h := uint64(entry(j, 0))
		if _, dup := sh.get(h); dup || h == 0 || h>>56 != i || ts.n >= maxTravellers {
			continue
		}
		rc := entry(j, 4)
		sh.add(h, lastPlace{t: entry(j, 1), lat: math.Float32frombits(uint32(entry(j, 2))), lon: math.Float32frombits(uint32(entry(j, 3))),
			radius: uint16(rc), country: [2]byte{byte(rc >> 16), byte(rc >> 24)}})
		ts.n++
	}
	return true
}

func packCountry(cc string) (c [2]byte) {
	if len(cc) == 2 {
		c[0], c[1] = cc[0], cc[1]
	}
	return c
}

func (p *lastPlace) countryCode() string {
	if p.country == ([2]byte{}) {
		return ""
	}
	return string(p.country[:])
}

// sighted compares the event's place with the subject's last one.
func (it *impossibleTravel) sighted(ev *ingest.Event, st *clientState, s *sighting) {
	p := s.place
	if !p.Located || it.cfg.SpeedKmh <= 0 {
		return
	}
	ts, key := &it.subjects, ev.Subject
	if key == "" {
		ts, key = &it.clients, ev.Client
	}
	h := travelKey(key)
	now := lastPlace{t: ev.Time.UnixNano(), lat: float32(p.Lat), lon: float32(p.Lon), radius: p.RadiusKm, country: packCountry(s.country)}
	last, ok := ts.get(h)
	if !ok {
		ts.put(h, now)
		return
	}
	if now.t <= last.t {
		return // an older event: the newer place stands
	}
	if st.formed(it.baseline, ev.Time) && !st.learnedBefore(it.baseline, s.state.first) { // a new network
		km := greatCircleKm(float64(last.lat), float64(last.lon), float64(now.lat), float64(now.lon)) - float64(last.radius) - float64(now.radius)
		if hours := float64(now.t-last.t) / float64(time.Hour); km > 0 && km/hours > float64(it.cfg.SpeedKmh) {
			it.raise(ev, &last, s, km)
		}
	}
	ts.update(h, now)
}

// flush moves the last places changed since the last flush into b.
func (it *impossibleTravel) flush(b *store.Batch) {
	it.subjects.flush(b)
	it.clients.flush(b)
}

// raise reports the trip from from to to; the finding's subject is the
// event's, or "client <id>" for an event without one (built here, not per
// event).
func (it *impossibleTravel) raise(ev *ingest.Event, from *lastPlace, to *sighting, km float64) {
	subject := ev.Subject
	if subject == "" {
		subject = "client " + ev.Client
	}
	dt := ev.Time.Sub(time.Unix(0, from.t))
	speed := km / dt.Hours()
	k := store.FindingKey{Kind: rules.KindImpossibleTravel, Client: ev.Client, Subject: subject}
	f := it.d.findings.Raise(k, store.SeverityHigh, ev.Time, ev.Pos)
	where := func(c string) string {
		if c == "" {
			return "an unknown country"
		}
		return c
	}
	f.Summary = "Seen in " + where(from.countryCode()) + " and " + humanDuration(dt) + " later in " + where(to.country) +
		", at least " + strconv.Itoa(int(km)) + " km away: " + strconv.Itoa(int(speed)) + " km/h, more than the " +
		strconv.Itoa(it.cfg.SpeedKmh) + " km/h anyone travels."
	f.Evidence.Detail = strconv.Itoa(int(km)) + " km in " + humanDuration(dt) + " (" + strconv.Itoa(int(speed)) + " km/h) from " +
		where(from.countryCode()) + " to " + where(to.country)
	f.Evidence.Country = to.country
	fillPlace(&f.Evidence, ev, to.place)
}

// greatCircleKm is the haversine distance between two points, in km.
func greatCircleKm(lat1, lon1, lat2, lon2 float64) float64 {
	const earthKm = 6371.0
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthKm * math.Asin(math.Min(1, math.Sqrt(a)))
}
