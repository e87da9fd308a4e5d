package detect

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// UnusedOptions configures the unused-scope computation.
type UnusedOptions struct {
	// Window is how long a granted scope may go unused before it is
	// reported (default 90 days).
	Window time.Duration
	// MinObservation is how long a client must have been observed before
	// any of its scopes is called unused (default 30 days).
	MinObservation time.Duration
	// Registrations are the configured client registrations, whose scopes
	// count as granted even when no token has shown them.
	Registrations map[string]rules.Client
	// Now is the clock; it is injected so that reports are reproducible.
	Now func() time.Time
	// Coverage, when set, says how much of the window the sources that
	// could show each scope's use observed: a scope is only called unused
	// when that reaches the window, else it is listed with
	// StatusInsufficientCoverage. Nil takes the record as complete.
	Coverage *CoverageFigures
	// IsIdentity tells identity scopes (used when issued, so shown by
	// grant logs) from the others; nil means none is.
	IsIdentity func(scope string) bool
}

// UnusedOptionsFor returns the options the configuration cfg gives the
// unused-scope judgement as of now, with the coverage spans observed: the
// window, the minimum observation, the registrations and identity scopes
// of its rules (none without rules).
func UnusedOptionsFor(cfg *rules.Config, spans map[string][]store.Span, now func() time.Time) UnusedOptions {
	o := UnusedOptions{
		Window:         time.Duration(cfg.Detect.UnusedScope.Window),
		MinObservation: time.Duration(cfg.Detect.UnusedScope.MinObservation),
		Now:            now,
		Coverage:       CoverageOf(cfg, spans, now()),
		IsIdentity:     func(string) bool { return false },
	}
	if cfg.Rules != nil {
		o.Registrations, o.IsIdentity = cfg.Rules.Clients, cfg.Rules.IsIdentityScope
	}
	return o
}

// Unused status values.
const (
	StatusUnused    = "unused"     // granted, used before, but not within the window
	StatusNeverUsed = "never_used" // granted and never used
	// StatusNeverRequested marks a registered scope the client has never
	// asked for nor been issued: the registration is wider than the
	// application, the easiest grant to remove.
	StatusNeverRequested = "never_requested"
	// StatusBroader marks a SMART scope that was used within the window,
	// but only for part of what it allows: Narrower lists the smallest
	// scopes that cover every use it had.
	StatusBroader = "broader_than_used"
	// StatusInvalid marks a held scope that looks like a SMART-on-FHIR
	// scope but breaks its grammar (patient/Observation.dus): servers may
	// ignore, replace or reject it, so its grant says nothing reliable.
	StatusInvalid = "invalid_smart_scope"
	// StatusInsufficientCoverage marks a scope that looks unused, but the
	// logs that would show its use were not observed for the whole window
	// (the daemon was down and lines were lost, a source stalled or is
	// new): saying "unused" would be a guess.
	StatusInsufficientCoverage = "insufficient_coverage"
)

// UnusedScope is one scope a client holds but has not used within the window.
type UnusedScope struct {
	Client     string    `json:"client"`
	Owner      string    `json:"owner,omitempty"`
	Role       string    `json:"role,omitempty"`
	Scope      string    `json:"scope"`
	Status     string    `json:"status"`
	Registered bool      `json:"registered"`             // granted by registration
	Grants     uint64    `json:"grants"`                 // tokens seen carrying it
	FirstGrant time.Time `json:"first_granted,omitzero"` // first token seen carrying it
	LastGrant  time.Time `json:"last_granted,omitzero"`
	LastUsed   time.Time `json:"last_used,omitzero"`
	Uses       uint64    `json:"uses"`
	IdleFor    string    `json:"idle_for"` // since last use, or since first grant when never used
	// Narrower is the replacement for a broader-than-used SMART scope, in
	// SMART v2 form (patient/*.read → patient/Observation.rs).
	Narrower []string `json:"narrower,omitempty"`
	// Coverage is how much of the window the logs that could show a use
	// were observed, "40 of 90 days", for insufficient coverage.
	Coverage string `json:"coverage,omitempty"`
	// Judged is the status the scope would have with full coverage.
	Judged string `json:"judged,omitempty"`
}

// PendingClient is a client not yet observed long enough to judge.
type PendingClient struct {
	Client        string    `json:"client"`
	ObservedSince time.Time `json:"observed_since,omitzero"`
	ObservedFor   string    `json:"observed_for"`
}

// UnusedReport is the unused-scope report at one moment.
type UnusedReport struct {
	GeneratedAt    time.Time       `json:"generated_at"`
	Window         string          `json:"window"`
	MinObservation string          `json:"min_observation"`
	Clients        int             `json:"clients_examined"`
	Unused         []UnusedScope   `json:"unused"`
	Pending        []PendingClient `json:"pending"`
}

// Unused computes, per client, the scopes granted (seen in a grant within
// the window, or registered) but not used within the window, for clients
// observed for at least MinObservation. Clients observed for less are
// listed as pending rather than judged. Only clients is read.
func Unused(clients []store.Client, opt UnusedOptions) UnusedReport {
	j := NewUnusedJudge(opt)
	rep := j.Report()
	seen := make(map[string]bool, len(clients))
	for _, c := range clients {
		seen[c.ID] = true
		j.Judge(c, &rep)
	}
	j.Finish(seen, &rep)
	return rep
}

// UnusedJudge judges one client at a time, so that a caller can stream
// clients from the store instead of holding them all.
type UnusedJudge struct {
	opt            UnusedOptions
	now, since     time.Time
	window, minObs time.Duration
	// Reused from client to client: the scopes being judged, the SMART
	// parse of each scope name (names repeat across clients), and the
	// FHIR interactions seen.
	cands []candidate
	smart map[string]parsedScope
	uses  []seenUse
	days  map[int64]string // idleFor's texts
}

// candidate is a scope a judge weighs, and whether the client's
// registration names it.
type candidate struct {
	store.NamedScope
	registered bool
}

// parsedScope is a scope name as rules.ParseSMART parses it.
type parsedScope struct {
	g   rules.SMARTScope
	err error
}

// maxParsedScopes bounds UnusedJudge.smart: a deployment's catalog is far
// smaller, and a store with more distinct names empties it and goes on.
const maxParsedScopes = 4096

// parse returns rules.ParseSMART(s), remembered.
func (j *UnusedJudge) parse(s string) (rules.SMARTScope, error) {
	if p, ok := j.smart[s]; ok {
		return p.g, p.err
	}
	g, err := rules.ParseSMART(s)
	if j.smart == nil || len(j.smart) >= maxParsedScopes {
		j.smart = make(map[string]parsedScope)
	}
	j.smart[s] = parsedScope{g, err}
	return g, err
}

// NewUnusedJudge returns a judge for the moment opt.Now() returns.
func NewUnusedJudge(opt UnusedOptions) *UnusedJudge {
	j := &UnusedJudge{opt: opt, now: opt.Now(), window: opt.Window, minObs: opt.MinObservation}
	if j.window <= 0 {
		j.window = 90 * 24 * time.Hour
	}
	if j.minObs <= 0 {
		j.minObs = 30 * 24 * time.Hour
	}
	j.since = j.now.Add(-j.window)
	return j
}

// Report returns an empty report of the judge's moment and settings.
func (j *UnusedJudge) Report() UnusedReport {
	return UnusedReport{
		GeneratedAt:    j.now.UTC(),
		Window:         humanDuration(j.window),
		MinObservation: humanDuration(j.minObs),
		Unused:         []UnusedScope{},
		Pending:        []PendingClient{},
	}
}

// Finish judges the registered clients not in seen (they were never
// observed, so they are pending), counts the clients and sorts rep.
func (j *UnusedJudge) Finish(seen map[string]bool, rep *UnusedReport) {
	// Registered clients never seen at all are pending: nothing proves
	// they hold scopes they do not use, and nothing proves they don't.
	for id := range j.opt.Registrations {
		if !seen[id] {
			j.Judge(store.Client{ID: id}, rep)
		}
	}
	rep.Clients = len(seen)
	slices.SortFunc(rep.Unused, func(a, b UnusedScope) int {
		return cmp.Or(cmp.Compare(a.Client, b.Client), cmp.Compare(a.Scope, b.Scope))
	})
	slices.SortFunc(rep.Pending, func(a, b PendingClient) int { return cmp.Compare(a.Client, b.Client) })
}

// Judge appends client c's unused scopes, or c as pending, to rep.
func (j *UnusedJudge) Judge(c store.Client, rep *UnusedReport) {
	u := c.Usage()
	j.JudgeUsage(&u, rep)
}

// JudgeUsage is Judge for a client's usage read by a walk of the store
// (store.DB.ForEachClientUsage); it keeps nothing of c but its strings.
func (j *UnusedJudge) JudgeUsage(c *store.ClientUsage, rep *UnusedReport) {
	opt, now, since, minObs := j.opt, j.now, j.since, j.minObs
	id := c.ID
	reg := opt.Registrations[id]
	first := c.Seen.First
	if first.IsZero() || now.Sub(first) < minObs {
		p := PendingClient{Client: id, ObservedSince: first.UTC()}
		if !first.IsZero() {
			p.ObservedFor = humanDuration(now.Sub(first))
		} else {
			p.ObservedFor = "never"
		}
		rep.Pending = append(rep.Pending, p)
		return
	}
	// The scopes to judge: those granted within the window, and the
	// registered ones, granted or not.
	cands := j.cands[:0]
	for i := range c.Scopes {
		u := &c.Scopes[i]
		isReg := slices.Contains(reg.Scopes, u.Name)
		if isReg || (u.Granted.N > 0 && !u.Granted.Last.Before(since)) {
			cands = append(cands, candidate{*u, isReg})
		}
	}
	for i, s := range reg.Scopes {
		if !c.Holds(s) && !slices.Contains(reg.Scopes[:i], s) {
			cands = append(cands, candidate{store.NamedScope{Name: s}, true})
		}
	}
	j.cands = cands
	uses := j.fhirUses(c)
	for _, cand := range cands {
		s, isReg, u := cand.Name, cand.registered, cand.ScopeUsage
		usedAt := u.Used.Last
		if u.Used.N == 0 || usedAt.Before(since) {
			usedAt = time.Time{}
		}
		var narrower []string
		g, err := j.parse(s)
		if err != nil && rules.IsSMART(s) {
			rep.Unused = append(rep.Unused, UnusedScope{
				Client: id, Owner: reg.Owner, Role: reg.Role, Scope: s, Registered: isReg, Status: StatusInvalid,
				Grants: u.Granted.N, FirstGrant: u.Granted.First.UTC(), LastGrant: u.Granted.Last.UTC(),
				LastUsed: u.Used.Last.UTC(), Uses: u.Used.N, IdleFor: "-",
			})
			continue
		}
		if err == nil {
			// FHIR calls this scope would have allowed count as its
			// uses: those within the window decide whether it is used
			// and how narrow it could be; older ones say when it was
			// last needed.
			var covered []rules.Use
			for _, fu := range uses {
				if !g.Covers(g.Context, fu.use.Resource, fu.use.In, g.Query) {
					continue
				}
				u.Used.Merge(fu.count)
				if !fu.count.Last.Before(since) {
					use := fu.use
					use.Context = g.Context
					covered = append(covered, use)
					if fu.count.Last.After(usedAt) {
						usedAt = fu.count.Last
					}
				}
			}
			if len(covered) > 0 {
				narrower = narrowerThan(g, covered)
			}
		}
		us := UnusedScope{
			Client: id, Owner: reg.Owner, Role: reg.Role, Scope: s, Registered: isReg,
			Grants: u.Granted.N, FirstGrant: u.Granted.First.UTC(), LastGrant: u.Granted.Last.UTC(),
			LastUsed: u.Used.Last.UTC(), Uses: u.Used.N, Status: StatusUnused,
		}
		if !usedAt.IsZero() {
			if narrower == nil {
				continue // used within the window, and no narrower set would do
			}
			us.Status, us.Narrower, us.LastUsed = StatusBroader, narrower, usedAt.UTC()
			us.IdleFor = j.idleFor(now.Sub(usedAt))
			rep.Unused = append(rep.Unused, j.covered(us))
			continue
		}
		idleFrom := u.Used.Last
		if u.Used.N == 0 {
			us.Status = StatusNeverUsed
			idleFrom = u.Granted.First // held since the first token showed it
			if idleFrom.IsZero() {
				idleFrom = first // registered: held since the client appeared
			}
			if u.Requested.N == 0 && u.Granted.N == 0 {
				// Registered, but the client never even asked for it:
				// the registration is wider than the application.
				us.Status = StatusNeverRequested
			}
		}
		us.IdleFor = j.idleFor(now.Sub(idleFrom))
		rep.Unused = append(rep.Unused, j.covered(us))
	}
}

// covered returns us as judged, or marked insufficient_coverage when the
// logs that could show its use were not observed for the whole window.
func (j *UnusedJudge) covered(us UnusedScope) UnusedScope {
	cov := j.opt.Coverage
	if cov == nil {
		return us
	}
	identity := j.opt.IsIdentity != nil && j.opt.IsIdentity(us.Scope)
	got := cov.For(identity)
	// A minute's slack absorbs the rounding of event times to the second.
	// A stale source ends its coverage at its newest event, more than a
	// gap ago, so it shows up here as a shortfall.
	if got+time.Minute >= j.window {
		return us
	}
	us.Judged, us.Status = us.Status, StatusInsufficientCoverage
	us.Coverage = strconv.FormatInt(int64(got/(24*time.Hour)), 10) + " of " +
		strconv.FormatInt(int64(j.window/(24*time.Hour)), 10) + " days"
	if len(cov.StaleSources) > 0 {
		us.Coverage += "; stale: " + strings.Join(cov.StaleSources, ", ")
	}
	return us
}

// idleFor is humanDuration for the idle times of a judge's scopes, which
// are mostly whole days and few: each day count's text is made once, not
// once for every scope of every client a sweep judges.
func (j *UnusedJudge) idleFor(d time.Duration) string {
	days := int64(d / (24 * time.Hour))
	if days < 1 || days > maxIdleDays {
		return humanDuration(d)
	}
	if j.days == nil {
		j.days = make(map[int64]string)
	}
	s, ok := j.days[days]
	if !ok {
		s = humanDuration(d)
		j.days[days] = s
	}
	return s
}

// maxIdleDays bounds the day counts idleFor keeps the text of.
const maxIdleDays = 3660

// humanDuration renders d in whole days when it is at least a day, else
// rounded to the second, as people read report columns.
func humanDuration(d time.Duration) string {
	if d < 0 {
		d = 0 // a report judged as of a time before the data
	}
	if d >= 24*time.Hour {
		days := int64(d / (24 * time.Hour))
		return strconv.FormatInt(days, 10) + "d"
	}
	return d.Round(time.Second).String()
}

// seenUse is a FHIR interaction recorded for a client, with its count and
// first and last times.
type seenUse struct {
	use   rules.Use
	count store.Counter
}

// fhirUses returns the FHIR interactions recorded for a client, with the
// context left empty: access logs do not show it. The slice is the
// judge's, filled again for the next client.
func (j *UnusedJudge) fhirUses(c *store.ClientUsage) []seenUse {
	j.uses = j.uses[:0]
	for i := range c.Scopes {
		if fu, ok := decodeFHIRUse(c.Scopes[i].Name, c.Scopes[i].ScopeUsage); ok {
			j.uses = append(j.uses, seenUse{use: fu.Use, count: fu.Used})
		}
	}
	return j.uses
}

// narrowerThan returns the replacement scopes for g given the uses it
// covered, or nil when g is already as narrow as its uses.
func narrowerThan(g rules.SMARTScope, covered []rules.Use) []string {
	repl := rules.Replacement(g, covered)
	if len(repl) == 1 && repl[0].String() == g.String() {
		return nil
	}
	out := make([]string, len(repl))
	for i, r := range repl {
		out[i] = r.String()
	}
	return out
}
