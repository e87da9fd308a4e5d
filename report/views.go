package report

import (
	"cmp"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Store is what the views read; *store.DB is one.
type Store interface {
	Clients() ([]store.Client, error)
	Coverage() (map[string][]store.Span, error)
	Findings() ([]store.Finding, error)
	Silences() ([]store.Silence, error)
}

// StateAll selects findings in every state.
const StateAll = "all"

// FindingStates are the states a finding filter accepts.
func FindingStates() []string {
	return []string{store.StateOpen, store.StateSilenced, store.StateResolved, StateAll}
}

// FindingFilter selects findings by state, kind and client; empty fields
// select everything.
type FindingFilter struct {
	state, kind, client string
}

// NewFindingFilter checks the values of a filter; an error names the
// allowed values.
func NewFindingFilter(state, kind, client string) (FindingFilter, error) {
	if state == "" {
		state = StateAll
	}
	if !slices.Contains(FindingStates(), state) {
		return FindingFilter{}, errors.New(rules.Unknown("state", state, FindingStates()))
	}
	if kind != "" && !slices.Contains(rules.FindingKinds(), kind) {
		return FindingFilter{}, errors.New(rules.Unknown("finding kind", kind, rules.FindingKinds()))
	}
	return FindingFilter{state: state, kind: kind, client: client}, nil
}

// Query returns the filter as the query of GET /api/v1/findings.
func (f FindingFilter) Query() url.Values {
	q := url.Values{"state": {f.state}}
	if f.kind != "" {
		q.Set("kind", f.kind)
	}
	if f.client != "" {
		q.Set("client", f.client)
	}
	return q
}

// Apply returns the findings the filter selects, in place.
func (f FindingFilter) Apply(fs []store.Finding) []store.Finding {
	return slices.DeleteFunc(fs, func(x store.Finding) bool {
		return f.state != StateAll && x.State != f.state ||
			f.kind != "" && x.Kind != f.kind ||
			f.client != "" && x.Client != f.client
	})
}

// Findings returns the stored findings with the state a reader
// should see at now: the engine applies a silence when it next runs, but a
// silence added or expired while no daemon runs must show at once.
func Findings(cfg *rules.Config, db Store, now time.Time) ([]store.Finding, error) {
	fs, err := db.Findings()
	if err != nil {
		return nil, err
	}
	ss, err := Silences(cfg, db)
	if err != nil {
		return nil, err
	}
	store.ApplySilences(fs, ss, now)
	return fs, nil
}

// Silences returns the configured silences (c1, c2, ...) and then the
// stored ones in the order they were added (s1, s2, ...), expired ones
// included.
func Silences(cfg *rules.Config, db Store) ([]store.Silence, error) {
	stored, err := db.Silences()
	if err != nil {
		return nil, err
	}
	// bbolt orders keys as bytes (s10 before s2); order by number.
	slices.SortStableFunc(stored, func(a, b store.Silence) int {
		return cmp.Compare(silenceSeq(a.ID), silenceSeq(b.ID))
	})
	return append(ConfigSilences(cfg.Detect.Silences), stored...), nil
}

func silenceSeq(id string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimPrefix(id, "s"), 10, 64)
	return n
}

// ConfigSilence explains that a silence of the configuration file
// can be ended only by editing the file.
func ConfigSilence(cfg *rules.Config, id string) error {
	for i, s := range ConfigSilences(cfg.Detect.Silences) {
		if s.ID != id {
			continue
		}
		at := fmt.Sprintf("detect.silences[%d] in %s", i, cfg.File)
		if line := cfg.Detect.Silences[i].Line; line > 0 {
			at = fmt.Sprintf("detect.silences[%d] at %s:%d", i, cfg.File, line)
		}
		return fmt.Errorf("silence %s comes from the configuration (%s); remove it there or change its until to end it", id, at)
	}
	return nil
}

// Unused computes the unused-scope report from the stored clients
// with the configured window and registrations, holding back scopes whose
// logs were not observed for the whole window (the stored coverage).
func Unused(cfg *rules.Config, db Store, now func() time.Time) (detect.UnusedReport, error) {
	cs, err := db.Clients()
	if err != nil {
		return detect.UnusedReport{}, err
	}
	spans, err := db.Coverage()
	if err != nil {
		return detect.UnusedReport{}, err
	}
	return detect.Unused(cs, detect.UnusedOptionsFor(cfg, spans, now)), nil
}

// FilterUnused keeps only one client's entries.
func FilterUnused(rep detect.UnusedReport, client string) detect.UnusedReport {
	u := rep.Unused[:0:0]
	for _, x := range rep.Unused {
		if x.Client == client {
			u = append(u, x)
		}
	}
	pend := rep.Pending[:0:0]
	for _, x := range rep.Pending {
		if x.Client == client {
			pend = append(pend, x)
		}
	}
	rep.Unused, rep.Pending = u, pend
	return rep
}

// ParseAt reads a report time as RFC 3339 or a date.
func ParseAt(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, fmt.Errorf("bad time %q: use RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", s)
	}
	return t, nil
}

// Scope computes the per-scope report from the stored clients with
// the configured window, registrations and catalog.
func Scope(cfg *rules.Config, db Store, name string, now func() time.Time) (ScopeReport, error) {
	cs, err := db.Clients()
	if err != nil {
		return ScopeReport{}, err
	}
	opt := ScopeOptions{Scope: name, Window: time.Duration(cfg.Detect.UnusedScope.Window), Now: now}
	if cfg.Rules != nil {
		opt.Registrations, opt.Catalog = cfg.Rules.Clients, cfg.Rules.Scopes
	}
	return NewScopeReport(cs, opt)
}
