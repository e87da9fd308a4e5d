package report

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/store"
)

// Fleet merges the answers of the instances of a fleet that share Kafka
// sources keyed by client: each client's events reach one instance, which
// holds all of its usage, so a merged report takes each client from the
// instance that holds it and is exact.
//
// A client held by two instances (its partition moved from one to the
// other) makes the merge refuse with a ConflictError: neither instance
// holds all of its usage, and a report of either would be wrong.
type Fleet struct {
	peers []string       // how each instance was reached, for messages
	owner map[string]int // client → index of the instance holding it
	// first is, for a client no instance holds (registered, never
	// seen), the first instance whose answer named it: every instance
	// judges it alike from the same rules, so one answer is kept.
	first map[string]int
}

// ConflictError is a client that two instances of a fleet hold.
type ConflictError struct {
	Client string
	Peers  [2]string
}

// Error names the client, the two instances holding it and what to do.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("client %q is held by both %s and %s: the partition of its events moved between them, so neither "+
		"holds all of its usage and a merged answer would not be exact (README, \"Partitions that move\"); --local "+
		"shows one instance's part", e.Client, e.Peers[0], e.Peers[1])
}

// NewFleet returns the merge of instances peers, clients[i] being the
// clients that peers[i] holds.
func NewFleet(peers []string, clients [][]ClientView) (*Fleet, error) {
	f := &Fleet{peers: peers, owner: map[string]int{}, first: map[string]int{}}
	for i, cs := range clients {
		for _, c := range cs {
			if j, dup := f.owner[c.ID]; dup && j != i {
				return nil, &ConflictError{Client: c.ID, Peers: [2]string{peers[j], peers[i]}}
			}
			f.owner[c.ID] = i
		}
	}
	return f, nil
}

// keep reports whether the answer of instance i about client id is the
// one the merge keeps.
func (f *Fleet) keep(i int, id string) bool {
	if o, ok := f.owner[id]; ok {
		return o == i
	}
	if o, ok := f.first[id]; ok {
		return o == i
	}
	f.first[id] = i
	return true
}

// same returns an error unless every instance gave the same value for a
// setting that its rules decide.
func (f *Fleet) same(what string, values []string) error {
	for i, v := range values {
		if v != values[0] {
			return fmt.Errorf("%s judge with different %s (%s on %s, %s on %s): give every instance the same rules", strings.Join(f.peers, ", "), what, values[0], f.peers[0], v, f.peers[i])
		}
	}
	return nil
}

// Clients merges the client listings of the instances, sorted by id as
// one instance lists them.
func (f *Fleet) Clients(views [][]ClientView) []ClientView {
	var out []ClientView
	for i, vs := range views {
		for _, v := range vs {
			if f.keep(i, v.ID) {
				out = append(out, v)
			}
		}
	}
	slices.SortFunc(out, func(a, b ClientView) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Unused merges the unused-scope reports of the instances, reps[i] being
// that of instance i, all judged at the same moment.
func (f *Fleet) Unused(reps []detect.UnusedReport) (detect.UnusedReport, error) {
	if len(reps) == 0 {
		return detect.UnusedReport{}, nil
	}
	windows, minObs := make([]string, len(reps)), make([]string, len(reps))
	for i, r := range reps {
		windows[i], minObs[i] = r.Window, r.MinObservation
	}
	if err := f.same("windows", windows); err != nil {
		return detect.UnusedReport{}, err
	}
	if err := f.same("minimum observations", minObs); err != nil {
		return detect.UnusedReport{}, err
	}
	out := detect.UnusedReport{GeneratedAt: reps[0].GeneratedAt, Window: reps[0].Window, MinObservation: reps[0].MinObservation,
		Unused: []detect.UnusedScope{}, Pending: []detect.PendingClient{}}
	// A client appears in several entries of one answer: keep decides
	// once per client, before the entries are taken.
	kept := func(i int, id string, decided map[string]bool) bool {
		k, ok := decided[id]
		if !ok {
			k = f.keep(i, id)
			decided[id] = k
		}
		return k
	}
	for i, r := range reps {
		decided := map[string]bool{}
		for _, u := range r.Unused {
			if kept(i, u.Client, decided) {
				out.Unused = append(out.Unused, u)
			}
		}
		for _, p := range r.Pending {
			if kept(i, p.Client, decided) {
				out.Pending = append(out.Pending, p)
			}
		}
	}
	out.Clients = len(f.owner)
	slices.SortFunc(out.Unused, func(a, b detect.UnusedScope) int {
		return cmp.Or(cmp.Compare(a.Client, b.Client), cmp.Compare(a.Scope, b.Scope))
	})
	slices.SortFunc(out.Pending, func(a, b detect.PendingClient) int { return cmp.Compare(a.Client, b.Client) })
	return out, nil
}

// Scope merges the reports of the instances on one scope.
func (f *Fleet) Scope(reps []ScopeReport) (ScopeReport, error) {
	if len(reps) == 0 {
		return ScopeReport{}, nil
	}
	windows, lifecycles := make([]string, len(reps)), make([]string, len(reps))
	for i, r := range reps {
		windows[i], lifecycles[i] = r.Window, fmt.Sprintf("catalog %v, lifecycle %q", r.InCatalog, r.Lifecycle)
	}
	if err := f.same("windows", windows); err != nil {
		return ScopeReport{}, err
	}
	if err := f.same("catalogs", lifecycles); err != nil {
		return ScopeReport{}, err
	}
	out := reps[0]
	out.Clients, out.UsedBy = []ScopeHolder{}, []string{}
	for i, r := range reps {
		decided := map[string]bool{}
		for _, h := range r.Clients {
			k := f.keep(i, h.Client)
			decided[h.Client] = k
			if k {
				out.Clients = append(out.Clients, h)
			}
		}
		for _, id := range r.UsedBy {
			k, ok := decided[id]
			if !ok {
				k = f.keep(i, id)
			}
			if k {
				out.UsedBy = append(out.UsedBy, id)
			}
		}
	}
	slices.SortFunc(out.Clients, func(a, b ScopeHolder) int { return strings.Compare(a.Client, b.Client) })
	slices.Sort(out.UsedBy)
	out.UsedBy = slices.Compact(out.UsedBy)
	return out, nil
}

// Findings merges the findings of the instances, in the order one
// instance lists them (kind, client, subject). A finding about a client
// comes from the instance holding the client. A finding about no client
// (an address probing several clients, a source) may be raised by several
// instances under the same key: they are told as one, open when one of
// them is, counted over all, from the earliest first sighting to the
// latest, with the evidence and summary of the latest.
func (f *Fleet) Findings(views [][]FindingView) []FindingView {
	var out []FindingView
	byID := map[string]int{} // ID of a finding about no client → index in out
	for i, vs := range views {
		for _, v := range vs {
			if v.Client != "" {
				if f.keep(i, v.Client) {
					out = append(out, v)
				}
				continue
			}
			j, dup := byID[v.ID]
			if !dup {
				byID[v.ID] = len(out)
				out = append(out, v)
				continue
			}
			out[j] = mergeFinding(out[j], v)
		}
	}
	slices.SortFunc(out, func(a, b FindingView) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.Client, b.Client), cmp.Compare(a.Subject, b.Subject))
	})
	return out
}

// mergeFinding tells two instances' findings under one key as one.
func mergeFinding(a, b FindingView) FindingView {
	if b.Last.After(a.Last) {
		a, b = b, a // a is the latest: its summary and evidence stay
	}
	m := a
	m.Count = a.Count + b.Count
	m.First = earliest(a.First, b.First)
	m.Opened = earliest(a.Opened, b.Opened)
	if b.Changed.After(m.Changed) {
		m.Changed = b.Changed
	}
	if store.SeverityRank(b.Severity) > store.SeverityRank(m.Severity) {
		m.Severity = b.Severity
	}
	switch {
	case a.State == store.StateOpen || b.State == store.StateOpen:
		m.State, m.Resolved, m.Silence = store.StateOpen, time.Time{}, ""
	case a.State == store.StateSilenced || b.State == store.StateSilenced:
		m.State, m.Resolved = store.StateSilenced, time.Time{}
		m.Silence = cmp.Or(a.Silence, b.Silence)
	default:
		if b.Resolved.After(m.Resolved) {
			m.Resolved = b.Resolved
		}
	}
	return m
}

func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
