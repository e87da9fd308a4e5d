package ingest

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/scopewatch/scopewatch/store"
)

// Kind says what an event records.
type Kind uint8

// Event kinds.
const (
	KindUnknown Kind = iota
	KindGrant        // a token was issued
	KindDeny         // a token request was refused
	KindUse          // an API call was made with a token
	KindAdmin        // an administrative change (client, grant or scope configuration)
)

var kindNames = [...]string{"unknown", "grant", "deny", "use", "admin"}

// String returns the lower-case name of k, as used in config and metrics.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// ParseKind maps a lower-case kind name to its Kind.
func ParseKind(s string) (Kind, bool) {
	for i, n := range kindNames {
		if i > 0 && n == s {
			return Kind(i), true
		}
	}
	return KindUnknown, false
}

// Position says where a line came from: the source, the file (by identity
// and head fingerprint, not path), the byte offset just after the line and
// its 1-based line number within the file.
type Position struct {
	Source   string
	Path     string
	File     store.FileID
	HeadLen  int
	HeadHash uint64
	Offset   int64
	Line     int64
	// AfterLoss marks the first line read after lines of the file were
	// lost (truncated or copied away before they could be read), so the
	// record of what was observed can show the gap.
	AfterLoss bool
}

// Record returns the store record that resumes reading just after this line.
func (p Position) Record() store.Position {
	return store.Position{
		Source: p.Source, File: p.File, HeadLen: p.HeadLen, HeadHash: p.HeadHash,
		Offset: p.Offset, Line: p.Line, Path: p.Path,
	}
}

// Line is one complete line read by a Source. Text excludes the line
// terminator (and a trailing carriage return). Consumers must not modify
// Text and must copy what they keep beyond processing the line.
type Line struct {
	Text []byte
	Pos  Position
}

// Event is one normalised fact read from a log line.
type Event struct {
	Time      time.Time
	Source    string
	Kind      Kind
	Client    string   // OAuth client_id; "" when the line carries none
	Subject   string   // user or service account
	Requested []string // scopes asked for (grant and deny events)
	Granted   []string // scopes issued (grant events)
	Method    string   // API call method
	Path      string   // API call path, without query string
	Query     string   // API call query string, without '?'
	Status    int      // HTTP status of an API call, 0 when unknown
	IP        netip.Addr
	Country   string // ISO country code when the log itself carries geography
	Reason    string // error or failure reason (invalid_scope, ...)
	Type      string // the format's own event type (CODE_TO_TOKEN, seccft, ...)
	Pos       Position
}

// Parser turns one line into zero or more events. It appends to dst and
// returns the extended slice. A line that is well formed but carries nothing
// of interest yields no events and a nil error. Parse is synchronous and
// must not keep references to line after it returns.
type Parser interface {
	Parse(line []byte, pos Position, dst []Event) ([]Event, error)
}

// Source produces lines. Run returns when ctx ends (with nil) or on an error
// it cannot recover from; it never closes out. A full out is back-pressure.
type Source interface {
	Name() string
	Run(ctx context.Context, out chan<- Line) error
}

// ParseError describes a line that could not be parsed. Reason is a short,
// bounded word (bad_json, bad_time, no_client, ...) suitable as a metric
// label; the rest is for people.
type ParseError struct {
	Source string
	Line   int64
	Offset int64
	Field  string
	Reason string
	Err    error
}

func (e *ParseError) Error() string {
	msg := e.Reason
	if e.Err != nil {
		msg = e.Err.Error()
	}
	if e.Field != "" {
		return fmt.Sprintf("%s: line %d: field %s: %s", e.Source, e.Line, e.Field, msg)
	}
	return fmt.Sprintf("%s: line %d: %s", e.Source, e.Line, msg)
}

// Unwrap returns the underlying error.
func (e *ParseError) Unwrap() error { return e.Err }

// Malformed reasons shared by parsers.
const (
	ReasonBadJSON    = "bad_json"
	ReasonBadTime    = "bad_time"
	ReasonBadField   = "bad_field"
	ReasonNoClient   = "no_client"
	ReasonNoTime     = "no_time"
	ReasonBadFormat  = "bad_format"
	ReasonOversized  = "oversized"
	ReasonBadEncoded = "bad_encoding"
)
