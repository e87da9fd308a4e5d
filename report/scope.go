package report

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// ErrUnknownScope is returned for a scope that no client was ever seen
// with, no registration lists and the catalog does not hold.
var ErrUnknownScope = errors.New("unknown scope")

// ScopeOptions configures the per-scope report.
type ScopeOptions struct {
	// Scope is the scope reported on.
	Scope string
	// Window is how far back grants and uses count (default 90 days).
	Window time.Duration
	// Registrations are the configured client registrations.
	Registrations map[string]rules.Client
	// Catalog is the configured scope catalog.
	Catalog map[string]rules.Scope
	// Now is the clock, injected so that reports are reproducible.
	Now func() time.Time
}

// ScopeReport is, for one scope, every client that holds it and whether
// removing it would break any of them.
type ScopeReport struct {
	Scope       string    `json:"scope"`
	GeneratedAt time.Time `json:"generated_at"`
	Window      string    `json:"window"`
	InCatalog   bool      `json:"in_catalog"`
	Lifecycle   string    `json:"lifecycle,omitempty"`
	ReplacedBy  string    `json:"replaced_by,omitempty"`
	Sunset      string    `json:"sunset,omitempty"`
	// SMART is true when the scope is a SMART-on-FHIR scope: the FHIR
	// calls it would have allowed count as its uses.
	SMART   bool          `json:"smart"`
	Clients []ScopeHolder `json:"clients"`
	// UsedBy are the clients that used the scope within the window: those
	// that removing it would break.
	UsedBy []string `json:"used_by"`
}

// ScopeHolder is one client that holds the scope, by a token or by its
// registration, and was granted it within the window, holds it by
// registration, or used it within the window.
type ScopeHolder struct {
	Client       string    `json:"client"`
	Owner        string    `json:"owner,omitempty"`
	Role         string    `json:"role,omitempty"`
	Registered   bool      `json:"registered"`
	Grants       uint64    `json:"grants"`
	FirstGranted time.Time `json:"first_granted,omitzero"`
	LastGranted  time.Time `json:"last_granted,omitzero"`
	Uses         uint64    `json:"uses"`
	LastUsed     time.Time `json:"last_used,omitzero"`
	UsedInWindow bool      `json:"used_in_window"`
}

// NewScopeReport computes the report on opt.Scope from the stored clients. Uses
// are counted as the unused-scope report counts them: for a SMART scope,
// every recorded FHIR interaction it would have allowed is a use of it.
// It returns ErrUnknownScope when nothing knows the scope.
func NewScopeReport(clients []store.Client, opt ScopeOptions) (ScopeReport, error) {
	window := cmp.Or(opt.Window, 90*24*time.Hour)
	now := opt.Now()
	since := now.Add(-window)
	name := opt.Scope
	rep := ScopeReport{Scope: name, GeneratedAt: now.UTC(), Window: days(window),
		Clients: []ScopeHolder{}, UsedBy: []string{}}
	if sc, ok := opt.Catalog[name]; ok {
		rep.InCatalog = true
		rep.Lifecycle = cmp.Or(sc.Lifecycle, rules.Active)
		rep.ReplacedBy, rep.Sunset = sc.ReplacedBy, sc.Sunset
	}
	g, err := rules.ParseSMART(name)
	rep.SMART = err == nil
	known := rep.InCatalog
	seen := make(map[string]bool, len(clients))
	add := func(c store.Client) {
		reg := opt.Registrations[c.ID]
		u, ok := c.Scopes[name]
		known = known || ok || slices.Contains(reg.Scopes, name)
		if rep.SMART {
			// An access log does not show the token's context: a use
			// counts under the scope's own.
			for _, fu := range detect.FHIRUses(c) {
				if g.Covers(g.Context, fu.Use.Resource, fu.Use.In, g.Query) {
					u.Used.Merge(fu.Used)
				}
			}
		}
		h := ScopeHolder{Client: c.ID, Owner: reg.Owner, Role: reg.Role,
			Registered: slices.Contains(reg.Scopes, name),
			Grants:     u.Granted.N, FirstGranted: u.Granted.First.UTC(), LastGranted: u.Granted.Last.UTC(),
			Uses: u.Used.N, LastUsed: u.Used.Last.UTC(),
			UsedInWindow: u.Used.N > 0 && !u.Used.Last.Before(since)}
		// Only a client that holds the scope, by a token or its
		// registration, is one that removing it could break: FHIR calls of a
		// client that never held it were authorised by its other scopes.
		if !h.Registered && u.Granted.N == 0 {
			return
		}
		if !h.Registered && !h.UsedInWindow && u.Granted.Last.Before(since) {
			return
		}
		rep.Clients = append(rep.Clients, h)
		if h.UsedInWindow {
			rep.UsedBy = append(rep.UsedBy, c.ID)
		}
	}
	for _, c := range clients {
		seen[c.ID] = true
		add(c)
	}
	for id := range opt.Registrations {
		if !seen[id] {
			add(store.Client{ID: id})
		}
	}
	if !known {
		return rep, fmt.Errorf("%w %q: no client was seen with it, no registration lists it and the catalog does not hold it", ErrUnknownScope, name)
	}
	slices.SortFunc(rep.Clients, func(a, b ScopeHolder) int { return strings.Compare(a.Client, b.Client) })
	slices.Sort(rep.UsedBy)
	return rep, nil
}

// days renders d in whole days when it is a multiple of a day.
func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// Verdict says whether removing the scope from the catalog would break a
// client that used it within the window.
func (r ScopeReport) Verdict() string { return r.verdict(func(s string) string { return s }) }

// verdict is Verdict with the scope and every client id passed through
// show: Text for a table, Markdown for Markdown.
func (r ScopeReport) verdict(show func(string) string) string {
	if len(r.UsedBy) == 0 {
		return "no client used " + show(r.Scope) + " within the window: it can be removed"
	}
	ids := make([]string, len(r.UsedBy))
	for i, id := range r.UsedBy {
		ids[i] = show(id)
	}
	return "removing " + show(r.Scope) + " from the catalog would break " + plural(len(r.UsedBy), "client", "clients") +
		" that used it within the window: " + strings.Join(ids, ", ")
}

// catalogLine says whether the scope is in the catalog, and its lifecycle.
func (r ScopeReport) catalogLine() string {
	if !r.InCatalog {
		return "not in the catalog"
	}
	s := "in the catalog, " + r.Lifecycle
	if r.ReplacedBy != "" {
		s += ", replaced by " + r.ReplacedBy
	}
	if r.Sunset != "" {
		s += ", sunset " + r.Sunset
	}
	return s
}

// WriteScope renders a per-scope report as a table, JSON, CSV or Markdown.
func WriteScope(w io.Writer, rep ScopeReport, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			ScopeReport
			Verdict string `json:"verdict"`
		}{rep, rep.Verdict()})
	case FormatCSV:
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"scope", "client", "owner", "role", "registered", "grants", "first_granted", "last_granted", "uses", "last_used", "used_in_window"})
		for _, h := range rep.Clients {
			_ = cw.Write([]string{rep.Scope, h.Client, h.Owner, h.Role, strconv.FormatBool(h.Registered),
				strconv.FormatUint(h.Grants, 10), stamp(h.FirstGranted), stamp(h.LastGranted),
				strconv.FormatUint(h.Uses, 10), stamp(h.LastUsed), strconv.FormatBool(h.UsedInWindow)})
		}
		cw.Flush()
		return cw.Error()
	case FormatMarkdown:
		var b strings.Builder
		fmt.Fprintf(&b, "# Scope %s\n\n", Markdown(rep.Scope))
		fmt.Fprintf(&b, "- Window: %s\n", Markdown(rep.Window))
		fmt.Fprintf(&b, "- Report time: %s\n", rep.GeneratedAt.UTC().Format("2006-01-02 15:04 MST"))
		fmt.Fprintf(&b, "- Catalog: %s\n\n", Markdown(rep.catalogLine()))
		if len(rep.Clients) == 0 {
			b.WriteString("No client holds it.\n")
		} else {
			b.WriteString("| Client | Owner | Role | Grants | First granted | Last granted | Uses | Last used |\n")
			b.WriteString("|---|---|---|---|---|---|---|---|\n")
			for _, h := range rep.Clients {
				fmt.Fprintf(&b, "| %s | %s | %s | %d | %s | %s | %d | %s |\n", Markdown(h.Client), Markdown(dash(h.Owner)),
					Markdown(dash(h.Role)), h.Grants, holderFirst(h), Day(h.LastGranted), h.Uses, Day(h.LastUsed))
			}
		}
		fmt.Fprintf(&b, "\n%s.\n", rep.verdict(Markdown))
		_, err := io.WriteString(w, b.String())
		return err
	case FormatTable, "":
		fmt.Fprintf(w, "Scope %s (window %s), as of %s: %s\n\n", Text(rep.Scope), rep.Window,
			rep.GeneratedAt.UTC().Format("2006-01-02 15:04 MST"), Text(rep.catalogLine()))
		if len(rep.Clients) == 0 {
			fmt.Fprintln(w, "No client holds it.")
		} else {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT\tOWNER\tROLE\tGRANTS\tFIRST GRANTED\tLAST GRANTED\tUSES\tLAST USED")
			for _, h := range rep.Clients {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", cell(h.Client), cell(h.Owner), cell(h.Role), h.Grants,
					holderFirst(h), Day(h.LastGranted), h.Uses, Day(h.LastUsed))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		_, err := fmt.Fprintf(w, "\n%s.\n", rep.verdict(Text))
		return err
	}
	return fmt.Errorf("%w %q for report scope; use table, json, csv or markdown", ErrFormat, format)
}

// holderFirst is the day of the first grant, or "registered" when only
// the registration grants the scope.
func holderFirst(h ScopeHolder) string {
	if h.FirstGranted.IsZero() && h.Registered {
		return "registered"
	}
	return Day(h.FirstGranted)
}
