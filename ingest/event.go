package ingest

import (
	"context"
	"errors"
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
	// Behind marks a line read while more than BehindBytes of its file
	// were known to follow it (the file's size when last looked at): its
	// source is reading a backlog, which the engine reads in larger
	// checkpoints. Kafka records and compressed files do not set it.
	Behind bool
	// Partition marks the position of a partition whose lines carry
	// whole clients (a Kafka topic keyed by client): each client's state
	// belongs to the partition its events came from, and leaves with it
	// (Release).
	Partition bool
}

// BehindBytes is how much of a file must follow a line for the line to
// be read behind (Position.Behind): about 5,000 lines of a Keycloak log,
// a few hundredths of a second of reading. A tail keeping up reads near
// the end its last check saw, whatever the rate the file grows at.
const BehindBytes = 4 << 20

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
	// Block, when set, is the block Text lies in, which its reader reads
	// into again once every line sent from it is Done (Block.Done). A
	// consumer that calls Done must not use Text, nor anything sliced
	// from it, afterwards. Nil for a line whose text is its own, or that
	// no one hands back (a LineReader's).
	Block *Block
	// Release, set on a line without text, hands the partition at Pos
	// back: see Release.
	Release *Release
	// Restore, set on a line without text, gives the engine the state of
	// the partition at Pos read from its changelog: see Restore.
	Restore *Restore
}

// Request reports whether ln is no line of a log but a request to the
// engine (Release, Restore), passed on in its place.
func (ln *Line) Request() bool { return ln.Release != nil || ln.Restore != nil }

// Restore asks the engine to take on the state of a partition this
// instance now reads, as the partition's changelog holds it: once every
// line before it is committed, the clients, findings and windows of
// Snapshot are written into the store with the partition's position and
// taken into memory, in one transaction. Done receives the outcome, nil
// once that is durable; the partition's records are then read from
// Snapshot's position.
type Restore struct {
	Snapshot *store.Snapshot
	Done     chan<- error
}

// Release asks the engine to let go of a partition another instance now
// reads: once every line before it is committed, every client whose
// events came from the partition is deleted from memory and from the
// store, with its findings and windows, together with the partition's
// position, in one transaction. Done receives the outcome, nil once that
// is durable. The partition's next owner rebuilds those clients by
// reading it from its start.
type Release struct {
	Done chan<- error
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
	// Dropped lists the optional fields the line carried in a form that
	// could not be read (a placeholder IP, a country that is no code):
	// they are left empty and counted, and the event is kept.
	Dropped Fields
}

// Fields is a set of optional event fields.
type Fields uint8

// The optional fields a parser may drop, keeping the event.
const (
	FieldIP Fields = 1 << iota
	FieldCountry
	FieldSubject
	FieldStatus
	numFields = iota
)

var fieldNames = [numFields]string{"ip", "country", "subject", "status"}

// FieldNames lists the names of the droppable fields, as used in metric
// labels, in the order of their bits.
func FieldNames() []string { return fieldNames[:] }

// Each calls fn with the name of every field in f.
func (f Fields) Each(fn func(name string)) {
	for i, name := range fieldNames {
		if f&(1<<i) != 0 {
			fn(name)
		}
	}
}

// Parser turns one line into zero or more events. It appends to dst and
// returns the extended slice. Every line has one of three outcomes:
//
//   - events, and a nil error;
//   - a Skip error: the line is well formed but carries nothing of
//     interest, for the bounded reason the Skip names;
//   - a *ParseError: the line is malformed. dst comes back as it was given,
//     except for a line of several records (an array page), where each
//     record counts on its own: the events of the good records are
//     returned and ParseError.Records says how many were malformed.
//
// Parse is synchronous and must not keep references to line after it
// returns.
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
	// Record is the 1-based index of the first malformed record of a line
	// holding several (an array page), and Records how many of its
	// records were malformed; both are 0 for a line of one record, which
	// is malformed whole.
	Record, Records int
	// Hint says what would read the line, when something else would (the
	// format that parses it, a wrapper setting); empty when nothing does.
	Hint string
}

// Error names the source, line, record and field, then what is wrong.
func (e *ParseError) Error() string {
	msg := e.Reason
	if e.Err != nil {
		msg = e.Err.Error()
	}
	where := fmt.Sprintf("%s: line %d", e.Source, e.Line)
	if e.Record > 0 {
		where += fmt.Sprintf(" record %d", e.Record)
	}
	if e.Field != "" {
		where += ": field " + e.Field
	}
	s := where + ": " + msg
	if e.Records > 1 {
		s += fmt.Sprintf(" (%d malformed records in the line)", e.Records)
	}
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

// Count is how many records the error stands for: Records for a line of
// several, otherwise 1.
func (e *ParseError) Count() int {
	if e.Records > 0 {
		return e.Records
	}
	return 1
}

// Skip is the error Parse returns for a line that is well formed but
// carries nothing scopewatch counts. Its value is a bounded reason,
// suitable as a metric label.
type Skip string

// Error implements error.
func (s Skip) Error() string { return "ignored: " + string(s) }

// Why the lines that carry no event are ignored. The set is closed: a
// parser names one of these, and the metrics are created for each.
const (
	// SkipBlank: an empty or white-space line.
	SkipBlank Skip = "blank"
	// SkipOtherLogger: a record of another logger or category than the
	// format's events, such as the server's own log in the same stream.
	SkipOtherLogger Skip = "other_logger"
	// SkipOtherEvent: an event of a type that issues, refuses or uses no
	// token (LOGIN, LOGOUT, user.session.start, a gateway's own message).
	SkipOtherEvent Skip = "other_event"
	// SkipNoClient: an event without a client to attribute it to (a
	// failed login before any client was named).
	SkipNoClient Skip = "no_client"
	// SkipUndecided: an outcome that decides nothing (Okta's UNKNOWN or
	// CHALLENGE, an Entra record without a result).
	SkipUndecided Skip = "undecided"
	// SkipNoRequest: an access-log line without an HTTP request (a TCP
	// connection, a timeout before the request line).
	SkipNoRequest Skip = "no_request"
	// SkipPartial: a piece of a line a container runtime split (CRI "P"),
	// read with the piece that ends it.
	SkipPartial Skip = "partial"
	// SkipContinuation: a continuation line of a multi-line record (a
	// stack trace), which holds no event.
	SkipContinuation Skip = "continuation"
)

// SkipReasons lists every Skip, for metrics created at zero.
func SkipReasons() []Skip {
	return []Skip{SkipBlank, SkipOtherLogger, SkipOtherEvent, SkipNoClient, SkipUndecided,
		SkipNoRequest, SkipPartial, SkipContinuation}
}

// Outcome sorts the error Parse returned: skip is the reason of a line
// ignored, malformed the error of a malformed one (a *ParseError, or one
// made for an error of another type). Both are zero for a nil error.
func Outcome(err error) (skip Skip, malformed *ParseError) {
	switch e := err.(type) {
	case nil:
		return "", nil
	case Skip:
		return e, nil
	case *ParseError:
		return "", e
	}
	var pe *ParseError
	if errors.As(err, &pe) {
		return "", pe
	}
	return "", &ParseError{Reason: ReasonBadFormat, Err: err}
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
	ReasonBadEncoded = "bad_encoding"
	// ReasonTooLong marks a line longer than the source's max_line_bytes;
	// it is skipped up to its end and reading goes on.
	ReasonTooLong = "too_long"
	// ReasonNoDate marks a line whose time carries no date (a time-only
	// prefix such as WildFly's HH:mm:ss,SSS) where no wrapper around it
	// gives one.
	ReasonNoDate = "no_date"
)
