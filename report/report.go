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
	"github.com/scopewatch/scopewatch/store"
)

// Report formats.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
	// FormatMarkdown is for documents people review, such as a
	// compliance review's record.
	FormatMarkdown = "markdown"
)

// ErrFormat is returned for a report format that is not supported.
var ErrFormat = errors.New("unknown format")

// Day formats t as its UTC date; "never" for none.
func Day(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02")
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// WriteUnused renders an unused-scope report as a table for people, JSON
// for programs, or CSV for spreadsheets.
func WriteUnused(w io.Writer, rep detect.UnusedReport, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	case FormatCSV:
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"client", "owner", "role", "scope", "status", "registered", "grants", "first_granted", "last_granted", "uses", "last_used", "idle_for", "narrower", "judged", "coverage"})
		for _, u := range rep.Unused {
			_ = cw.Write([]string{u.Client, u.Owner, u.Role, u.Scope, u.Status, strconv.FormatBool(u.Registered),
				strconv.FormatUint(u.Grants, 10), stamp(u.FirstGrant), stamp(u.LastGrant),
				strconv.FormatUint(u.Uses, 10), stamp(u.LastUsed), u.IdleFor, strings.Join(u.Narrower, " "), u.Judged, u.Coverage})
		}
		cw.Flush()
		return cw.Error()
	case FormatMarkdown:
		return writeUnusedMarkdown(w, rep)
	case FormatTable, "":
		fmt.Fprintf(w, "Unused scopes (window %s, clients observed at least %s), as of %s\n\n",
			rep.Window, rep.MinObservation, rep.GeneratedAt.Format("2006-01-02 15:04 MST"))
		if len(rep.Unused) == 0 {
			fmt.Fprintln(w, "No unused scopes.")
		} else {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT\tSCOPE\tSTATUS\tGRANTS\tLAST GRANTED\tLAST USED\tIDLE FOR\tOWNER\tNARROWER")
			for _, u := range rep.Unused {
				status := u.Status
				if u.Status == detect.StatusInsufficientCoverage {
					status = "insufficient coverage (" + u.Coverage + ")"
				}
				if u.Registered {
					status += " (registered)"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", cell(u.Client), cell(u.Scope), cell(status), u.Grants,
					Day(u.LastGrant), Day(u.LastUsed), cell(u.IdleFor), cell(u.Owner), cell(strings.Join(u.Narrower, " ")))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			clients := map[string]bool{}
			held := 0
			for _, u := range rep.Unused {
				if u.Status == detect.StatusInsufficientCoverage {
					held++
					continue
				}
				clients[u.Client] = true
			}
			fmt.Fprintf(w, "\n%d scope grant(s) to prune or narrow across %d client(s); %d client(s) examined.\n",
				len(rep.Unused)-held, len(clients), rep.Clients)
			if held > 0 {
				fmt.Fprintf(w, "%d more look unused, but their logs were not observed for the whole window: not judged.\n", held)
			}
		}
		if len(rep.Pending) > 0 {
			names := make([]string, 0, len(rep.Pending))
			for _, p := range rep.Pending {
				names = append(names, Text(p.Client)+" ("+Text(p.ObservedFor)+")")
			}
			fmt.Fprintf(w, "Not judged yet, observed less than %s: %s\n", rep.MinObservation, strings.Join(names, ", "))
		}
		return nil
	}
	return fmt.Errorf("%w %q for report unused; use table, json, csv or markdown", ErrFormat, format)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ClientView is the JSON shape of one client's usage.
type ClientView struct {
	ID        string      `json:"client"`
	FirstSeen time.Time   `json:"first_seen,omitzero"`
	LastSeen  time.Time   `json:"last_seen,omitzero"`
	Events    uint64      `json:"events"`
	Scopes    []ScopeView `json:"scopes"`
	// FHIR are the FHIR interactions seen in API logs ("Observation.r"),
	// which the unused-scope report matches against SMART scopes.
	FHIR      []FHIRView `json:"fhir_uses,omitempty"`
	IPs       []string   `json:"recent_ips,omitempty"`
	Countries []string   `json:"countries,omitempty"`
}

// ScopeView is the JSON shape of one scope of one client.
type ScopeView struct {
	Scope         string    `json:"scope"`
	Requested     uint64    `json:"requested"`
	LastRequested time.Time `json:"last_requested,omitzero"`
	Granted       uint64    `json:"granted"`
	LastGranted   time.Time `json:"last_granted,omitzero"`
	Used          uint64    `json:"used"`
	LastUsed      time.Time `json:"last_used,omitzero"`
}

// FHIRView is the JSON shape of one FHIR interaction of one client.
type FHIRView struct {
	Interaction string    `json:"interaction"`
	Used        uint64    `json:"used"`
	LastUsed    time.Time `json:"last_used,omitzero"`
}

// Views converts stored clients to their report shape, scopes sorted by name.
func Views(cs []store.Client) []ClientView {
	out := make([]ClientView, 0, len(cs))
	for _, c := range cs {
		v := ClientView{ID: c.ID, FirstSeen: c.Seen.First.UTC(), LastSeen: c.Seen.Last.UTC(), Events: c.Seen.N, Scopes: []ScopeView{}}
		for s, u := range c.Scopes {
			if detect.IsFHIRUse(s) {
				continue // shown as FHIR uses, not as a scope
			}
			v.Scopes = append(v.Scopes, ScopeView{Scope: s,
				Requested: u.Requested.N, LastRequested: u.Requested.Last.UTC(),
				Granted: u.Granted.N, LastGranted: u.Granted.Last.UTC(),
				Used: u.Used.N, LastUsed: u.Used.Last.UTC()})
		}
		slices.SortFunc(v.Scopes, func(a, b ScopeView) int { return strings.Compare(a.Scope, b.Scope) })
		for _, fu := range detect.FHIRUses(c) {
			v.FHIR = append(v.FHIR, FHIRView{Interaction: fu.Name, Used: fu.Used.N, LastUsed: fu.Used.Last.UTC()})
		}
		slices.SortFunc(v.FHIR, func(a, b FHIRView) int { return strings.Compare(a.Interaction, b.Interaction) })
		v.IPs = recent(c.IPs, 10)
		v.Countries = recent(c.Countries, 10)
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b ClientView) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// SourceView is the JSON shape of one log source's committed counts: the
// lines read, those that were malformed, ignored (not an event) or API
// calls no client could be attributed to, and the events they yielded,
// with the first and last event times.
//
// The count of events is event_count, not events: the API served this
// record as {"Name", …, "Events": {"N", "First", "Last"}} before, and Go
// programs that decode it into that shape match keys case-insensitively;
// a number under "events" would fail their decoding.
type SourceView struct {
	Name         string    `json:"name"`
	Lines        uint64    `json:"lines"`
	Malformed    uint64    `json:"malformed"`
	Ignored      uint64    `json:"ignored"`
	Unattributed uint64    `json:"unattributed"`
	Events       uint64    `json:"event_count"`
	FirstEvent   time.Time `json:"first_event,omitzero"`
	LastEvent    time.Time `json:"last_event,omitzero"`
}

// SourceViews converts stored sources to their API shape, sorted by name,
// never nil.
func SourceViews(srcs []store.Source) []SourceView {
	out := make([]SourceView, 0, len(srcs))
	for _, s := range srcs {
		out = append(out, SourceView{Name: s.Name, Lines: s.Lines, Malformed: s.Malformed, Ignored: s.Ignored,
			Unattributed: s.Unattributed, Events: s.Events.N, FirstEvent: utc(s.Events.First), LastEvent: utc(s.Events.Last)})
	}
	slices.SortFunc(out, func(a, b SourceView) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// recent returns up to n keys, most recently seen first.
func recent(m map[string]store.Counter, n int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if c := m[b].Last.Compare(m[a].Last); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	if len(keys) > n {
		keys = keys[:n]
	}
	return keys
}

// WriteClients renders per-client, per-scope usage as a table or JSON.
func WriteClients(w io.Writer, views []ClientView, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(views)
	case FormatTable, "":
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT\tSCOPE\tREQUESTED\tGRANTED\tLAST GRANTED\tUSED\tLAST USED")
		for _, v := range views {
			if len(v.Scopes) == 0 {
				fmt.Fprintf(tw, "%s\t-\t0\t0\tnever\t0\tnever\n", cell(v.ID))
			}
			for _, s := range v.Scopes {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%s\n", cell(v.ID), cell(s.Scope), s.Requested, s.Granted,
					Day(s.LastGranted), s.Used, Day(s.LastUsed))
			}
			for _, f := range v.FHIR { // no token names an interaction: nothing requested or granted
				fmt.Fprintf(tw, "%s\tFHIR %s\t-\t-\t-\t%d\t%s\n", cell(v.ID), cell(f.Interaction), f.Used, Day(f.LastUsed))
			}
		}
		return tw.Flush()
	}
	return fmt.Errorf("%w %q for clients; use table or json", ErrFormat, format)
}

// Group headings for report rows whose registration names no owner or
// role; they sort last.
const (
	noOwner = "(no owner)"
	noRole  = "(no role)"
)

// writeUnusedMarkdown renders rep as a Markdown document, one table per
// owner and role, for a compliance review.
func writeUnusedMarkdown(w io.Writer, rep detect.UnusedReport) error {
	var b strings.Builder
	b.WriteString("# Unused OAuth scopes\n\n")
	fmt.Fprintf(&b, "- Window: %s\n", Markdown(rep.Window))
	fmt.Fprintf(&b, "- Minimum observation: %s\n", Markdown(rep.MinObservation))
	fmt.Fprintf(&b, "- Report time: %s\n", rep.GeneratedAt.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Clients examined: %d\n", rep.Clients)

	owners := map[string]map[string][]detect.UnusedScope{}
	for _, u := range rep.Unused {
		owner, role := cmp.Or(u.Owner, noOwner), cmp.Or(u.Role, noRole)
		if owners[owner] == nil {
			owners[owner] = map[string][]detect.UnusedScope{}
		}
		owners[owner][role] = append(owners[owner][role], u)
	}
	if len(owners) == 0 {
		b.WriteString("\nNo unused scopes.\n")
	}
	var all []detect.UnusedScope
	for _, owner := range groupNames(owners, noOwner) {
		fmt.Fprintf(&b, "\n## %s\n", Markdown(owner))
		var rows []detect.UnusedScope
		for _, role := range groupNames(owners[owner], noRole) {
			fmt.Fprintf(&b, "\n### Role: %s\n\n", Markdown(role))
			b.WriteString("| Client | Scope | Status | Granted since | Last used | Narrower replacement |\n")
			b.WriteString("|---|---|---|---|---|---|\n")
			for _, u := range owners[owner][role] {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", Markdown(u.Client), Markdown(u.Scope),
					Markdown(statusText(u)), grantedSince(u), Day(u.LastUsed), Markdown(dash(strings.Join(u.Narrower, " "))))
			}
			rows = append(rows, owners[owner][role]...)
		}
		fmt.Fprintf(&b, "\n%s\n", pruneTotal(rows))
		all = append(all, rows...)
	}
	if len(owners) > 0 {
		fmt.Fprintf(&b, "\n## Total\n\n%s\n", pruneTotal(all))
	}
	if len(rep.Pending) > 0 {
		fmt.Fprintf(&b, "\n## Not judged yet\n\nObserved for less than %s:\n\n", Markdown(rep.MinObservation))
		for _, p := range rep.Pending {
			fmt.Fprintf(&b, "- %s (%s)\n", Markdown(p.Client), Markdown(p.ObservedFor))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// statusText is a row's status as people read it: insufficient coverage
// spelled out with the days observed, and whether a registration grants it.
func statusText(u detect.UnusedScope) string {
	status := u.Status
	if u.Status == detect.StatusInsufficientCoverage {
		status = "insufficient coverage (" + u.Coverage + ")"
	}
	if u.Registered {
		status += " (registered)"
	}
	return status
}

// grantedSince is the day of the first token carrying the scope, or
// "registered" when only the registration grants it.
func grantedSince(u detect.UnusedScope) string {
	if u.FirstGrant.IsZero() {
		if u.Registered {
			return "registered"
		}
		return "never"
	}
	return Day(u.FirstGrant)
}

// pruneTotal counts the rows to act on; those held back for insufficient
// coverage are counted apart, as they are not judged.
func pruneTotal(rows []detect.UnusedScope) string {
	clients := map[string]bool{}
	grants, held := 0, 0
	for _, u := range rows {
		if u.Status == detect.StatusInsufficientCoverage {
			held++
			continue
		}
		grants++
		clients[u.Client] = true
	}
	s := plural(grants, "scope grant", "scope grants") + " to prune or narrow across " +
		plural(len(clients), "client", "clients")
	if held > 0 {
		s += "; " + strconv.Itoa(held) + " more not judged, their logs were not observed for the whole window"
	}
	return s + "."
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// groupNames returns the keys of m sorted, with last (the "none" group)
// after the others.
func groupNames[V any](m map[string]V, last string) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		if (a == last) != (b == last) {
			if a == last {
				return 1
			}
			return -1
		}
		return strings.Compare(a, b)
	})
	return names
}

// mdEscaper backslash-escapes the characters that Markdown would read as
// emphasis, code, table cells, links or HTML: SMART scopes hold * (and
// owners may be written <name@host>). Line breaks would end a table row;
// Text quotes a value holding one, or another control character,
// before this (see Text).
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "`", "\\`", "*", `\*`, "_", `\_`, "|", `\|`,
	"[", `\[`, "]", `\]`, "<", `\<`, ">", `\>`, "\n", " ", "\r", " ",
)

// Markdown makes s literal text in Markdown, also inside a table cell,
// with its control characters escaped (Text).
func Markdown(s string) string { return mdEscaper.Replace(Text(s)) }
