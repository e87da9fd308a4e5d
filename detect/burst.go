package detect

import (
	"strconv"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// unfamiliarBurst raises unfamiliar_burst when more than
// unfamiliar_burst.requests events within its window come from one
// network new to a client whose baseline has formed, while the network is
// new (unfamiliar_burst.new_for): warning, or high when the network is
// also in a country new to the client.
type unfamiliarBurst struct {
	d   *Detectors
	cfg rules.UnfamiliarBurst
}

// sighted counts the events of a network while it is new to the client.
func (u *unfamiliarBurst) sighted(ev *ingest.Event, st *clientState, s *sighting) {
	d, bc := u.d, u.cfg
	k, ns, country, place := s.net, s.state, s.country, s.place
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
