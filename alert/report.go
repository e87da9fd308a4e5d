package alert

import (
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
)

// ErrFormat is returned for a report format that is not supported.
var ErrFormat = errors.New("unknown format")

func day(t time.Time) string {
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
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", u.Client, u.Scope, status, u.Grants,
					day(u.LastGrant), day(u.LastUsed), u.IdleFor, dash(u.Owner), dash(strings.Join(u.Narrower, " ")))
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
				names = append(names, p.Client+" ("+p.ObservedFor+")")
			}
			fmt.Fprintf(w, "Not judged yet, observed less than %s: %s\n", rep.MinObservation, strings.Join(names, ", "))
		}
		return nil
	}
	return fmt.Errorf("%w %q for report unused; use table, json or csv", ErrFormat, format)
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
	IPs       []string    `json:"recent_ips,omitempty"`
	Countries []string    `json:"countries,omitempty"`
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

// Views converts stored clients to their report shape, scopes sorted by name.
func Views(cs []store.Client) []ClientView {
	out := make([]ClientView, 0, len(cs))
	for _, c := range cs {
		v := ClientView{ID: c.ID, FirstSeen: c.Seen.First.UTC(), LastSeen: c.Seen.Last.UTC(), Events: c.Seen.N, Scopes: []ScopeView{}}
		for s, u := range c.Scopes {
			v.Scopes = append(v.Scopes, ScopeView{Scope: s,
				Requested: u.Requested.N, LastRequested: u.Requested.Last.UTC(),
				Granted: u.Granted.N, LastGranted: u.Granted.Last.UTC(),
				Used: u.Used.N, LastUsed: u.Used.Last.UTC()})
		}
		slices.SortFunc(v.Scopes, func(a, b ScopeView) int { return strings.Compare(a.Scope, b.Scope) })
		v.IPs = recent(c.IPs, 10)
		v.Countries = recent(c.Countries, 10)
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b ClientView) int { return strings.Compare(a.ID, b.ID) })
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
				fmt.Fprintf(tw, "%s\t-\t0\t0\tnever\t0\tnever\n", v.ID)
			}
			for _, s := range v.Scopes {
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%d\t%s\n", v.ID, s.Scope, s.Requested, s.Granted,
					day(s.LastGranted), s.Used, day(s.LastUsed))
			}
		}
		return tw.Flush()
	}
	return fmt.Errorf("%w %q for clients; use table or json", ErrFormat, format)
}
