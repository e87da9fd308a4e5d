package detect

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// SweeperOptions configure a Sweeper.
type SweeperOptions struct {
	Config   *rules.Config
	Findings *Findings
	Coverage *Coverage
	// Live judges sources stale against the clock: the daemon does, a
	// one-shot scan of old files does not.
	Live bool
	// Started is when the daemon started: a source that has produced no
	// event since is stale once StaleAfter has passed.
	Started time.Time
	// Forget, when set, is told of each client pruned from the store
	// (the detectors).
	Forget Forgetter
}

// Sweeper raises and resolves the findings that depend on time passing
// rather than on one event: unused scopes, stale sources, findings not
// seen again for ResolveAfter, expired silences and old resolved findings.
type Sweeper struct {
	opt SweeperOptions
	// drops are the clients pruned and not yet flushed into a batch;
	// commit, during a sweep that may commit, makes them durable.
	drops  []string
	commit func() error
	kept   int // unused-scope findings the last sweep judged again
}

// NewSweeper returns a sweeper; it starts nothing.
func NewSweeper(opt SweeperOptions) *Sweeper { return &Sweeper{opt: opt} }

// ClientLister streams stored clients.
type ClientLister interface {
	// ForEachClientUsage calls fn with each stored client's usage
	// (store.DB.ForEachClientUsage): fn does not keep c once it returns.
	ForEachClientUsage(fn func(c *store.ClientUsage) error) error
}

// eventKinds are the finding kinds raised by events, which resolve when
// not seen again for ResolveAfter.
var eventKinds = []string{rules.KindBroadRequest, rules.KindUnfamiliarGeo, rules.KindUnfamiliarBurst, rules.KindTokenInURL, rules.KindClientIDSpray}

// sweep judges everything as of now (see Sweep).
func (s *Sweeper) sweep(now time.Time, clients ClientLister) error {
	cfg, fs := s.opt.Config, s.opt.Findings
	fs.ApplySilences()

	// The daemon must itself have watched for ResolveAfter: after a
	// restart the backlog it has yet to read may hold the condition.
	resolveBefore := now.Add(-time.Duration(cfg.Detect.ResolveAfter))
	fs.Each(func(f *store.Finding) {
		if f.State != store.StateResolved && slices.Contains(eventKinds, f.Kind) &&
			f.Last.Before(resolveBefore) && s.opt.Started.Before(resolveBefore) {
			fs.Resolve(f.FindingKey)
		}
	})
	fs.Prune(now.Add(-time.Duration(cfg.Detect.Retention)))

	if s.opt.Live {
		s.stale(now)
	}
	return s.unused(now, clients)
}

func (s *Sweeper) stale(now time.Time) {
	cfg, fs := s.opt.Config, s.opt.Findings
	limit := time.Duration(cfg.Detect.UnusedScope.StaleAfter)
	for _, src := range cfg.Sources {
		k := store.FindingKey{Kind: rules.KindStaleSource, Subject: src.Name}
		// Quiet since its newest event, or since the daemon started: a
		// restart after downtime reads the backlog before it judges.
		newest := s.opt.Coverage.Newest(src.Name)
		ref := newest
		if s.opt.Started.After(ref) {
			ref = s.opt.Started
		}
		if ref.IsZero() || now.Sub(ref) <= limit {
			fs.Resolve(k)
			continue
		}
		f, fresh := fs.Hold(k, store.SeverityWarning, now)
		if !fresh {
			continue
		}
		if newest.IsZero() {
			f.Summary = fmt.Sprintf("Source %s has produced no event since scopewatch started %s ago; unused-scope findings that depend on it are held back.",
				src.Name, humanDuration(now.Sub(ref)))
		} else {
			f.Summary = fmt.Sprintf("Source %s has produced no event for %s (newest %s); unused-scope findings that depend on it are held back.",
				src.Name, humanDuration(now.Sub(newest)), newest.UTC().Format(time.RFC3339))
		}
		f.Evidence.Detail = src.Path
	}
}

// unused raises a finding per unused scope and resolves those that no
// longer hold. A scope whose coverage is insufficient, or whose client is
// still pending, keeps whatever finding it had: nothing new is known.
func (s *Sweeper) unused(now time.Time, clients ClientLister) error {
	cfg, fs := s.opt.Config, s.opt.Findings
	j := NewUnusedJudge(UnusedOptionsFor(cfg, s.opt.Coverage.All(), func() time.Time { return now }))
	// The findings judged again, by pointer (a finding's key is three
	// strings to hash), sized as the last sweep's: with 200,000 of them,
	// a set grown from empty and keyed by FindingKey allocated 162 MB
	// over six sweeps (BenchmarkSweepMany/third_used's memory profile).
	keep := make(map[*store.Finding]struct{}, s.kept)
	pending := make(map[string]bool)
	seen := make(map[string]bool)
	rep := j.Report()
	handle := func() {
		for _, us := range rep.Unused {
			k := store.FindingKey{Kind: rules.KindUnusedScope, Client: us.Client, Subject: us.Scope}
			var f *store.Finding
			if us.Status != StatusInsufficientCoverage {
				f = s.holdUnused(k, us, now)
			} else {
				f = fs.Get(k)
			}
			if f != nil {
				keep[f] = struct{}{} // only findings that exist need telling apart
			}
		}
		for _, p := range rep.Pending {
			pending[p.Client] = true
		}
		rep.Unused, rep.Pending = rep.Unused[:0], rep.Pending[:0]
	}
	err := clients.ForEachClientUsage(func(c *store.ClientUsage) error {
		if s.prune(c, now) {
			return s.commitDrops() // dropped: not judged
		}
		seen[c.ID] = true
		j.JudgeUsage(c, &rep)
		handle()
		return nil
	})
	if err != nil {
		return fmt.Errorf("judge unused scopes: %w", err)
	}
	j.Finish(seen, &rep)
	handle()
	fs.Each(func(f *store.Finding) {
		if f.Kind != rules.KindUnusedScope || f.State == store.StateResolved || pending[f.Client] {
			return
		}
		if _, ok := keep[f]; !ok {
			fs.Resolve(f.FindingKey)
		}
	})
	s.kept = len(keep)
	return nil
}

// holdUnused raises the unused-scope finding k as us judges it, or holds
// the one that stands, and returns it.
func (s *Sweeper) holdUnused(k store.FindingKey, us UnusedScope, now time.Time) *store.Finding {
	fs := s.opt.Findings
	sev := store.SeverityWarning
	if us.Status == StatusBroader {
		sev = store.SeverityInfo
	}
	f, fresh := fs.Hold(k, sev, now)
	detail := us.Status
	if us.Registered {
		detail += "; registered"
	}
	e := &f.Evidence
	if !fresh && e.Detail == detail && slices.Equal(e.Narrower, us.Narrower) {
		// Times move every sweep; they are written with the next real
		// change, or once a day, rather than rewriting every finding at
		// every sweep.
		e.LastGrant, e.LastUse = us.LastGrant, us.LastUsed
		if now.Sub(f.Last) >= 24*time.Hour {
			f.Last = now
			fs.Touch(k)
		}
		return f
	}
	if !fresh && now.After(f.Last) {
		f.Last = now
	}
	e.Detail, e.Narrower = detail, slices.Clone(us.Narrower)
	e.LastGrant, e.LastUse = us.LastGrant, us.LastUsed
	switch us.Status {
	case StatusNeverRequested:
		f.Summary = fmt.Sprintf("%s is registered for %s but has never asked for it (registered %s ago).", us.Client, us.Scope, us.IdleFor)
	case StatusNeverUsed:
		f.Summary = fmt.Sprintf("%s holds %s and has never used it (held for %s).", us.Client, us.Scope, us.IdleFor)
	case StatusUnused:
		f.Summary = fmt.Sprintf("%s holds %s and has not used it for %s.", us.Client, us.Scope, us.IdleFor)
	case StatusBroader:
		f.Summary = fmt.Sprintf("%s uses only part of %s; %s would do.", us.Client, us.Scope, strings.Join(us.Narrower, " "))
	case StatusInvalid:
		f.Summary = fmt.Sprintf("%s holds %s, which breaks the SMART scope grammar.", us.Client, us.Scope)
	}
	if !fresh {
		fs.Touch(k)
	}
	return f
}
