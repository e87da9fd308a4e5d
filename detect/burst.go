package detect

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// unfamiliarBurst raises unfamiliar_burst when more than
// unfamiliar_burst.requests events within its window come from one
// network new to a client whose baseline has formed, while the network is
// new (unfamiliar_burst.new_for): warning, or high when the network is
// also in a country new to the client. It also counts a client's events
// from all its new networks together: a burst spread over two or more of
// them, none over the threshold alone, raises one finding (subject "new
// networks") that names them.
type unfamiliarBurst struct {
	d   *Detectors
	cfg rules.UnfamiliarBurst
}

var _ netDetector = (*unfamiliarBurst)(nil)

// sighted counts the events of a network while it is new to the client.
func (u *unfamiliarBurst) sighted(ev *ingest.Event, st *clientState, s *sighting) {
	d, bc := u.d, u.cfg
	k, ns, country, place := s.net, s.state, s.country, s.place
	if !st.formed(bc.Baseline, ev.Time) || st.learnedBefore(bc.Baseline, ns.first) ||
		ev.Time.Sub(ns.first) > time.Duration(bc.NewFor) {
		if ns.recent != nil && ns.wkey != "" {
			d.markWindow(ns.wkey, nil)
		}
		ns.recent = nil // familiar, or no longer new
		return
	}
	u.acrossNetworks(ev, st, k)
	if ns.recent == nil {
		ns.recent = newRing(bc.Requests + 1)
	}
	if ns.wkey == "" {
		ns.wkey = winBurstNet + ev.Client + "\x00" + k.String()
	}
	full := ns.recent.add(ev.Time, time.Duration(bc.Window))
	d.markWindow(ns.wkey, ns.recent)
	if !full {
		return
	}
	fk := store.FindingKey{Kind: rules.KindUnfamiliarBurst, Client: ev.Client, Subject: k.String()}
	sev := store.SeverityWarning
	if first, ok := st.country(country); ok && country != "" && !st.learnedBefore(bc.Baseline, first) && !d.expected(ev.Client, country) {
		sev = store.SeverityHigh // a new network in a new country
	}
	f := d.findings.Raise(fk, sev, ev.Time, ev.Pos)
	f.Summary = "More than " + strconv.Itoa(bc.Requests) + " requests within " + humanDuration(time.Duration(bc.Window)) +
		" came from " + k.String() + ", a network new to the client."
	f.Evidence.Requests, f.Evidence.Window, f.Evidence.Network = bc.Requests+1, humanDuration(time.Duration(bc.Window)), k.String()
	f.Evidence.Country = country
	fillPlace(&f.Evidence, ev, place)
	if !k.isASN() {
		f.Evidence.Network = k.String()
	}
}

// acrossSubject is the subject of a burst spread over new networks.
const acrossSubject = "new networks"

// maxAcross bounds the new networks a client's spread burst remembers.
const maxAcross = 8

// acrossNets is a client's count of events from all its new networks.
type acrossNets struct {
	recent *ring
	key    string    // recent's window key
	nets   []netSeen // the latest new networks, at most maxAcross
}

type netSeen struct {
	net  netKey
	last time.Time
}

// acrossNetworks counts ev, from the new network k, among the client's
// events from any new network, and raises the spread burst once more than
// unfamiliar_burst.requests of them fall within the window and come from
// two networks or more.
func (u *unfamiliarBurst) acrossNetworks(ev *ingest.Event, st *clientState, k netKey) {
	bc, window := u.cfg, time.Duration(u.cfg.Window)
	a := st.across
	if a == nil {
		a = &acrossNets{recent: newRing(bc.Requests + 1), key: winBurstAcross + ev.Client}
		st.across = a
	}
	i := slices.IndexFunc(a.nets, func(n netSeen) bool { return n.net == k })
	switch {
	case i >= 0:
		a.nets[i].last = ev.Time
	case len(a.nets) < maxAcross:
		a.nets = append(a.nets, netSeen{k, ev.Time})
	default:
		oldest := 0
		for j := range a.nets {
			if a.nets[j].last.Before(a.nets[oldest].last) {
				oldest = j
			}
		}
		a.nets[oldest] = netSeen{k, ev.Time}
	}
	full := a.recent.add(ev.Time, window)
	u.d.markWindow(a.key, a.recent)
	if !full {
		return
	}
	var in []string
	for _, n := range a.nets {
		if ev.Time.Sub(n.last) <= window {
			in = append(in, n.net.String())
		}
	}
	if len(in) < 2 {
		return // one network: its own finding says it
	}
	slices.Sort(in)
	fk := store.FindingKey{Kind: rules.KindUnfamiliarBurst, Client: ev.Client, Subject: acrossSubject}
	f := u.d.findings.Raise(fk, store.SeverityWarning, ev.Time, ev.Pos)
	f.Summary = "More than " + strconv.Itoa(bc.Requests) + " requests within " + humanDuration(window) +
		" came from " + strconv.Itoa(len(in)) + " networks new to the client: " + strings.Join(in, ", ") + "."
	f.Evidence.Requests, f.Evidence.Window = bc.Requests+1, humanDuration(window)
	f.Evidence.Detail = strings.Join(in, ", ")
	if ev.IP.IsValid() {
		f.Evidence.IP = ev.IP.String()
	}
}
