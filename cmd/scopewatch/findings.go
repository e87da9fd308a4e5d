package main

import (
	"context"
	"errors"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// stateAll selects findings in every state.
const stateAll = "all"

func findingStates() []string {
	return []string{store.StateOpen, store.StateSilenced, store.StateResolved, stateAll}
}

func cmdFindings(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("findings")
	configPath := fs.String("config", "", configUsage)
	state := fs.String("state", store.StateOpen, "open, silenced, resolved or all")
	kind := fs.String("kind", "", "only this kind of finding: "+strings.Join(rules.FindingKinds(), ", "))
	client := fs.String("client", "", "only this client")
	format := fs.String("format", "table", "table or json")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	filter, err := newFindingFilter(*state, *kind, *client)
	if err != nil {
		return usageError{err}
	}
	if *format != alert.FormatTable && *format != alert.FormatJSON {
		return usagef("unknown format %q; use table or json", *format)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var views []alert.FindingView
	err = readState(ctx, cfg, "/api/v1/findings?"+filter.query().Encode(), &views, func(db *store.DB) error {
		found, err := effectiveFindings(cfg, db, time.Now())
		if err != nil {
			return err
		}
		views = alert.FindingViews(filter.apply(found))
		return nil
	})
	if err != nil {
		return err
	}
	if *client != "" && len(views) == 0 {
		if err := checkClient(ctx, cfg, *client); err != nil {
			return err
		}
	}
	out := make([]store.Finding, 0, len(views))
	for _, v := range views {
		out = append(out, v.Finding())
	}
	return alert.WriteFindings(stdout, out, *format)
}

// findingFilter selects findings by state, kind and client; empty fields
// select everything.
type findingFilter struct {
	state, kind, client string
}

// newFindingFilter checks the values of a filter; an error names the
// allowed values.
func newFindingFilter(state, kind, client string) (findingFilter, error) {
	if state == "" {
		state = stateAll
	}
	if !slices.Contains(findingStates(), state) {
		return findingFilter{}, errors.New(rules.Unknown("state", state, findingStates()))
	}
	if kind != "" && !slices.Contains(rules.FindingKinds(), kind) {
		return findingFilter{}, errors.New(rules.Unknown("finding kind", kind, rules.FindingKinds()))
	}
	return findingFilter{state: state, kind: kind, client: client}, nil
}

// query returns the filter as the query of GET /api/v1/findings.
func (f findingFilter) query() url.Values {
	q := url.Values{"state": {f.state}}
	if f.kind != "" {
		q.Set("kind", f.kind)
	}
	if f.client != "" {
		q.Set("client", f.client)
	}
	return q
}

// apply returns the findings the filter selects, in place.
func (f findingFilter) apply(fs []store.Finding) []store.Finding {
	return slices.DeleteFunc(fs, func(x store.Finding) bool {
		return f.state != stateAll && x.State != f.state ||
			f.kind != "" && x.Kind != f.kind ||
			f.client != "" && x.Client != f.client
	})
}

// effectiveFindings returns the stored findings with the state a reader
// should see at now: the engine applies a silence when it next runs, but a
// silence added or expired while no daemon runs must show at once.
func effectiveFindings(cfg *rules.Config, db *store.DB, now time.Time) ([]store.Finding, error) {
	fs, err := db.Findings()
	if err != nil {
		return nil, err
	}
	ss, err := allSilences(cfg, db)
	if err != nil {
		return nil, err
	}
	alert.ApplySilences(fs, ss, now)
	return fs, nil
}
