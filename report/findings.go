package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Origins of a silence.
const (
	OriginConfig = "config" // detect.silences in the configuration file
	OriginStore  = "store"  // added at run time with `scopewatch silence add`
)

// FindingView is the JSON shape of a finding, served by the API and
// printed by `scopewatch findings --format json`. Times are UTC; a zero
// time is left out, so "resolved" is absent while the condition holds.
type FindingView struct {
	ID       string         `json:"id"`
	Kind     string         `json:"kind"`
	Client   string         `json:"client"`
	Subject  string         `json:"subject"`
	Severity string         `json:"severity"`
	State    string         `json:"state"`
	Summary  string         `json:"summary"`
	First    time.Time      `json:"first,omitzero"`
	Last     time.Time      `json:"last,omitzero"`
	Count    uint64         `json:"count"`
	Opened   time.Time      `json:"opened,omitzero"`
	Resolved time.Time      `json:"resolved,omitzero"`
	Changed  time.Time      `json:"changed,omitzero"`
	Silence  string         `json:"silence"` // ID of the silence muting it; "" when none does
	Evidence store.Evidence `json:"evidence"`
}

// NewFindingView returns the view of f.
func NewFindingView(f store.Finding) FindingView {
	return FindingView{
		ID: f.ID(), Kind: f.Kind, Client: f.Client, Subject: f.Subject,
		Severity: f.Severity, State: f.State, Summary: f.Summary,
		First: utc(f.First), Last: utc(f.Last), Count: f.Count,
		Opened: utc(f.Opened), Resolved: utc(f.Resolved), Changed: utc(f.Changed),
		Silence: f.Silence, Evidence: f.Evidence,
	}
}

// FindingViews returns the views of fs, in the same order, never nil.
func FindingViews(fs []store.Finding) []FindingView {
	out := make([]FindingView, 0, len(fs))
	for _, f := range fs {
		out = append(out, NewFindingView(f))
	}
	return out
}

// Finding returns the finding v shows, as read back from the API.
func (v FindingView) Finding() store.Finding {
	return store.Finding{
		FindingKey: store.FindingKey{Kind: v.Kind, Client: v.Client, Subject: v.Subject},
		Severity:   v.Severity, State: v.State, Summary: v.Summary,
		First: v.First, Last: v.Last, Count: v.Count,
		Opened: v.Opened, Resolved: v.Resolved, Changed: v.Changed,
		Silence: v.Silence, Evidence: v.Evidence,
	}
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// minute is RFC 3339 to the minute, the precision a table needs.
const minute = "2006-01-02T15:04Z07:00"

// Minute formats t for a table, in UTC to the minute; "-" for none.
func Minute(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(minute)
}

// cell makes a value from the logs safe for one table cell (see Text): a
// client id or subject with a tab, a newline or a terminal escape sequence
// is printed quoted with the control characters escaped, so it can neither
// break the columns nor drive the terminal. An empty value is "-".
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return Text(s)
}

// WriteFindings renders findings as a table for people or JSON for
// programs, in the order given.
func WriteFindings(w io.Writer, fs []store.Finding, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(FindingViews(fs))
	case FormatTable, "":
		if len(fs) == 0 {
			_, err := fmt.Fprintln(w, "No findings.")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tKIND\tSEVERITY\tSTATE\tCLIENT\tSUBJECT\tCOUNT\tFIRST\tLAST\tSUMMARY")
		counts := map[string]int{}
		for _, f := range fs {
			counts[f.State]++
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", f.ID(), cell(f.Kind), cell(f.Severity), cell(f.State),
				cell(f.Client), cell(f.Subject), f.Count, Minute(f.First), Minute(f.Last), cell(f.Summary))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		noun := "findings"
		if len(fs) == 1 {
			noun = "finding"
		}
		_, err := fmt.Fprintf(w, "\n%d %s (%d open, %d silenced, %d resolved)\n", len(fs), noun,
			counts[store.StateOpen], counts[store.StateSilenced], counts[store.StateResolved])
		return err
	}
	return fmt.Errorf("%w %q for findings; use table or json", ErrFormat, format)
}

// SilenceView is the JSON shape of a silence. Active says whether it
// mutes findings at the time the view was made; Origin is OriginConfig or
// OriginStore.
type SilenceView struct {
	ID      string    `json:"id"`
	Client  string    `json:"client"`
	Kind    string    `json:"kind"`
	Subject string    `json:"subject"`
	Expires time.Time `json:"expires"`
	Active  bool      `json:"active"`
	Origin  string    `json:"origin"`
	Reason  string    `json:"reason"`
	Author  string    `json:"author"`
	Created time.Time `json:"created,omitzero"`
}

// NewSilenceView returns the view of s at time now.
func NewSilenceView(s store.Silence, now time.Time) SilenceView {
	origin := OriginStore
	if s.Config {
		origin = OriginConfig
	}
	return SilenceView{
		ID: s.ID, Client: s.Client, Kind: s.Kind, Subject: s.Subject,
		Expires: utc(s.Expires), Active: now.Before(s.Expires), Origin: origin,
		Reason: s.Reason, Author: s.Author, Created: utc(s.Created),
	}
}

// SilenceViews returns the views of ss at time now, in the same order,
// never nil.
func SilenceViews(ss []store.Silence, now time.Time) []SilenceView {
	out := make([]SilenceView, 0, len(ss))
	for _, s := range ss {
		out = append(out, NewSilenceView(s, now))
	}
	return out
}

// Silence returns the silence v shows, as read back from the API.
func (v SilenceView) Silence() store.Silence {
	return store.Silence{
		ID: v.ID, Client: v.Client, Kind: v.Kind, Subject: v.Subject,
		Expires: v.Expires, Reason: v.Reason, Author: v.Author, Created: v.Created,
		Config: v.Origin == OriginConfig,
	}
}

// WriteSilences renders silences as a table for people or JSON for
// programs, in the order given; ACTIVE and "active" are judged at now.
func WriteSilences(w io.Writer, ss []store.Silence, now time.Time, format string) error {
	switch format {
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(SilenceViews(ss, now))
	case FormatTable, "":
		if len(ss) == 0 {
			_, err := fmt.Fprintln(w, "No silences.")
			return err
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCLIENT\tKIND\tSUBJECT\tEXPIRES\tACTIVE\tORIGIN\tREASON")
		for _, s := range SilenceViews(ss, now) {
			active := "no"
			if s.Active {
				active = "yes"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cell(s.ID), patternCell(s.Client), patternCell(s.Kind), patternCell(s.Subject),
				Minute(s.Expires), active, s.Origin, cell(s.Reason))
		}
		return tw.Flush()
	}
	return fmt.Errorf("%w %q for silences; use table or json", ErrFormat, format)
}

// patternCell shows an empty pattern as "*": it matches everything.
func patternCell(pattern string) string {
	if pattern == "" {
		return "*"
	}
	return cell(pattern)
}

// ConfigSilences returns the silences of the configuration (Load has
// parsed their expiry) as store silences marked Config, with the IDs c1,
// c2, ... in the order of the file, so that they can be listed and named
// beside the stored ones (s1, s2, ...).
func ConfigSilences(cs []rules.Silence) []store.Silence {
	out := make([]store.Silence, 0, len(cs))
	for i, c := range cs {
		out = append(out, store.Silence{
			ID: "c" + strconv.Itoa(i+1), Client: c.Client, Kind: c.Kind, Subject: c.Subject,
			Expires: c.Expires, Reason: c.Reason, Config: true,
		})
	}
	return out
}
