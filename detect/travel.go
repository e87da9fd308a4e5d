package detect

import (
	"math"
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
	d         *Detectors
	cfg       rules.ImpossibleTravel
	baseline  rules.Baseline // unfamiliar_geo's: which networks are familiar
	bySubject map[string]*lastPlace
	byClient  map[string]*lastPlace
}

var _ netDetector = (*impossibleTravel)(nil)

// lastPlace is where and when a subject was last seen.
type lastPlace struct {
	t        time.Time
	lat, lon float64
	radius   uint16
	country  string
}

// maxTravellers bounds the subjects, and apart the clients, whose last
// place is kept; a full table forgets one to take another.
const maxTravellers = 1 << 16

func newImpossibleTravel(d *Detectors, cfg rules.ImpossibleTravel, baseline rules.Baseline) *impossibleTravel {
	return &impossibleTravel{d: d, cfg: cfg, baseline: baseline, bySubject: make(map[string]*lastPlace), byClient: make(map[string]*lastPlace)}
}

// sighted compares the event's place with the subject's last one.
func (it *impossibleTravel) sighted(ev *ingest.Event, st *clientState, s *sighting) {
	p := s.place
	if !p.Located || it.cfg.SpeedKmh <= 0 {
		return
	}
	m, key := it.bySubject, ev.Subject
	if key == "" {
		m, key = it.byClient, ev.Client
	}
	last := m[key]
	if last == nil {
		if len(m) >= maxTravellers {
			for k := range m {
				delete(m, k)
				break
			}
		}
		m[key] = &lastPlace{t: ev.Time, lat: p.Lat, lon: p.Lon, radius: p.RadiusKm, country: s.country}
		return
	}
	if !ev.Time.After(last.t) {
		return // an older event: the newer place stands
	}
	newNet := st.formed(it.baseline, ev.Time) && !st.learnedBefore(it.baseline, s.state.first)
	km := greatCircleKm(last.lat, last.lon, p.Lat, p.Lon) - float64(last.radius) - float64(p.RadiusKm)
	if hours := ev.Time.Sub(last.t).Hours(); newNet && km > 0 && km/hours > float64(it.cfg.SpeedKmh) {
		it.raise(ev, last, s, km)
	}
	last.t, last.lat, last.lon, last.radius, last.country = ev.Time, p.Lat, p.Lon, p.RadiusKm, s.country
}

// raise reports the trip from from to to; the finding's subject is the
// event's, or "client <id>" for an event without one (built here, not per
// event).
func (it *impossibleTravel) raise(ev *ingest.Event, from *lastPlace, to *sighting, km float64) {
	subject := ev.Subject
	if subject == "" {
		subject = "client " + ev.Client
	}
	dt := ev.Time.Sub(from.t)
	speed := km / dt.Hours()
	k := store.FindingKey{Kind: rules.KindImpossibleTravel, Client: ev.Client, Subject: subject}
	f := it.d.findings.Raise(k, store.SeverityHigh, ev.Time, ev.Pos)
	where := func(c string) string {
		if c == "" {
			return "an unknown country"
		}
		return c
	}
	f.Summary = "Seen in " + where(from.country) + " and " + humanDuration(dt) + " later in " + where(to.country) +
		", at least " + strconv.Itoa(int(km)) + " km away: " + strconv.Itoa(int(speed)) + " km/h, more than the " +
		strconv.Itoa(it.cfg.SpeedKmh) + " km/h anyone travels."
	f.Evidence.Detail = strconv.Itoa(int(km)) + " km in " + humanDuration(dt) + " (" + strconv.Itoa(int(speed)) + " km/h) from " +
		where(from.country) + " to " + where(to.country)
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
