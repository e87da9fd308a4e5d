package store

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// States of a finding.
const (
	StateOpen     = "open"     // the condition holds and nobody muted it
	StateSilenced = "silenced" // the condition holds but a silence mutes it
	StateResolved = "resolved" // the condition no longer holds
)

// Severities of a finding.
const (
	SeverityInfo    = "info"
	SeverityWarning = "warning"
	SeverityHigh    = "high"
)

// SeverityRank orders severities: info 0, warning 1, high 2 (and 0 for
// anything else).
func SeverityRank(severity string) int {
	switch severity {
	case SeverityHigh:
		return 2
	case SeverityWarning:
		return 1
	}
	return 0
}

// FindingKey identifies a finding: the same condition on the same client
// and subject (a scope, a country, a network, a source) is one finding,
// however often it is seen.
type FindingKey struct {
	Kind    string
	Client  string // "" for findings about a source or an address
	Subject string
}

// ID returns a short stable identifier of the key, for URLs and commands.
func (k FindingKey) ID() string {
	h := sha256.Sum256(k.bytes())
	return hex.EncodeToString(h[:6])
}

// bytes returns the store key: the three parts joined by 0 bytes, which
// none of them contains.
func (k FindingKey) bytes() []byte {
	b := make([]byte, 0, len(k.Kind)+len(k.Client)+len(k.Subject)+2)
	b = append(b, k.Kind...)
	b = append(b, 0)
	b = append(b, k.Client...)
	b = append(b, 0)
	return append(b, k.Subject...)
}

func (k FindingKey) valid() bool {
	return k.Kind != "" && !strings.ContainsRune(k.Kind+k.Client+k.Subject, 0)
}

// Finding is a condition worth a person's attention, with its history.
// For a finding raised by events, First and Last are event times (when
// the log lines say it happened); for one raised by a sweep (an unused
// scope, a stale source) they are when a sweep first and last found it,
// Last refreshed at least daily. Opened, Resolved and Changed are when
// scopewatch judged it.
type Finding struct {
	FindingKey
	Severity string
	State    string
	Summary  string    // one sentence for people
	First    time.Time // when the condition was first seen
	Last     time.Time // when it was last seen
	Count    uint64    // how often it was seen
	Opened   time.Time // when it last became open (or silenced)
	Resolved time.Time // when it last resolved; zero while it holds
	Changed  time.Time // when State last changed
	Silence  string    // ID of the silence muting it, when silenced
	Evidence Evidence
}

// MaxEvidenceLines bounds the log lines kept as evidence of a finding:
// the first one and the newest.
const MaxEvidenceLines = 5

// Evidence is what backs a finding. Fields that do not apply are empty.
type Evidence struct {
	Lines      []LineRef `json:"lines,omitempty"`       // where it was seen: the first line, then the newest
	LastGrant  time.Time `json:"last_grant,omitzero"`   // newest grant of the scope
	LastUse    time.Time `json:"last_use,omitzero"`     // newest use of the scope
	Narrower   []string  `json:"narrower,omitempty"`    // proposed replacement scopes
	Scopes     []string  `json:"scopes,omitempty"`      // the scopes of a request with too many
	ReplacedBy string    `json:"replaced_by,omitempty"` // the catalog's replacement of a deprecated scope
	Country    string    `json:"country,omitempty"`
	ASN        uint32    `json:"asn,omitempty"`
	Network    string    `json:"network,omitempty"` // a CIDR range
	IP         string    `json:"ip,omitempty"`
	Subject    string    `json:"subject,omitempty"` // the user, pseudonymised when configured
	Requests   int       `json:"requests,omitempty"`
	Window     string    `json:"window,omitempty"` // the window Requests were counted in
	Detail     string    `json:"detail,omitempty"`
}

// LineRef points at one log line.
type LineRef struct {
	Source string `json:"source"`
	Path   string `json:"path,omitempty"`
	Line   int64  `json:"line"`
	Offset int64  `json:"offset"` // byte offset just after the line
}

// AddLine records ref as evidence, keeping the first line and the newest
// ones, at most MaxEvidenceLines in all.
func (e *Evidence) AddLine(ref LineRef) {
	if ref.Source == "" {
		return
	}
	if len(e.Lines) == MaxEvidenceLines {
		copy(e.Lines[1:], e.Lines[2:])
		e.Lines = e.Lines[:MaxEvidenceLines-1]
	}
	e.Lines = append(e.Lines, ref)
}

// Clone returns a deep copy of f.
func (f Finding) Clone() Finding {
	f.Evidence.Lines = slices.Clone(f.Evidence.Lines)
	f.Evidence.Narrower = slices.Clone(f.Evidence.Narrower)
	f.Evidence.Scopes = slices.Clone(f.Evidence.Scopes)
	return f
}

// Silence mutes the findings it matches until it expires.
type Silence struct {
	ID      string
	Client  string // shell pattern (path.Match) on the client id; "" for any
	Kind    string // finding kind; "" for any
	Subject string // shell pattern on the finding's subject; "" for any
	Expires time.Time
	Reason  string
	Author  string
	Created time.Time
	// Config is set on silences that come from the configuration file
	// rather than the store.
	Config bool `json:"-"`
}

// Matches reports whether s applies to the finding key k at time now.
func (s *Silence) Matches(k FindingKey, now time.Time) bool {
	if !now.Before(s.Expires) {
		return false
	}
	if s.Kind != "" && s.Kind != k.Kind {
		return false
	}
	return match(s.Client, k.Client) && match(s.Subject, k.Subject)
}

// SilenceFor returns the first silence of ss that mutes the finding key k
// at now, or nil: the one rule by which the engine silences findings and
// readers see them silenced.
func SilenceFor(ss []Silence, k FindingKey, now time.Time) *Silence {
	for i := range ss {
		if ss[i].Matches(k, now) {
			return &ss[i]
		}
	}
	return nil
}

// ApplySilences sets the state a reader should see on every finding that
// still holds: silenced, with the ID of the first silence in ss that is
// active at now and matches it, or open when none does. Resolved findings
// are left as they are. The engine does the same when silences change;
// doing it at read time too shows a silence added or expired while no
// daemon runs, or not yet re-applied by it, at once.
func ApplySilences(fs []Finding, ss []Silence, now time.Time) {
	for i := range fs {
		f := &fs[i]
		if f.State != StateOpen && f.State != StateSilenced {
			continue
		}
		f.State, f.Silence = StateOpen, ""
		if s := SilenceFor(ss, f.FindingKey, now); s != nil {
			f.State, f.Silence = StateSilenced, s.ID
		}
	}
}

func match(pattern, s string) bool {
	if pattern == "" || pattern == "*" {
		return true
	}
	ok, err := path.Match(pattern, s)
	return err == nil && ok
}

// CheckPattern reports a pattern that can never match.
func CheckPattern(pattern string) error {
	if _, err := path.Match(pattern, ""); err != nil {
		return fmt.Errorf("bad pattern %q: %w", pattern, err)
	}
	return nil
}

// Span is a stretch of event time a source was observed for: the events
// in it arrived without a longer silence than the configured coverage gap.
type Span struct {
	Start time.Time
	End   time.Time
}

// MaxSpans bounds the spans kept per source; beyond it the two oldest
// neighbours are joined, so old gaps are forgotten first.
const MaxSpans = 512

// ErrNotFound means a record asked for by id does not exist.
var ErrNotFound = errors.New("not found")

// Bucket names of schema version 2.
var (
	bucketFindings = []byte("findings")
	bucketSilences = []byte("silences")
	bucketCoverage = []byte("coverage")
)

// Findings returns every stored finding, ordered by kind, client and
// subject.
func (db *DB) Findings() ([]Finding, error) {
	var out []Finding
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketFindings).ForEach(func(k, v []byte) error {
			var f Finding
			if err := json.Unmarshal(v, &f); err != nil {
				return fmt.Errorf("finding %q: %w: %v", k, ErrCorrupt, err)
			}
			out = append(out, f)
			return nil
		})
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read findings from %s", db.path))
	}
	return out, nil
}

// Coverage returns the observed spans of every source, oldest first.
func (db *DB) Coverage() (map[string][]Span, error) {
	out := make(map[string][]Span)
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCoverage).ForEach(func(k, v []byte) error {
			var spans []Span
			if err := json.Unmarshal(v, &spans); err != nil {
				return fmt.Errorf("coverage of %q: %w: %v", k, ErrCorrupt, err)
			}
			out[string(k)] = spans
			return nil
		})
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read coverage from %s", db.path))
	}
	return out, nil
}

// Silences returns the stored silences, expired ones included, ordered by
// ID.
func (db *DB) Silences() ([]Silence, error) {
	var out []Silence
	err := db.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSilences).ForEach(func(k, v []byte) error {
			var s Silence
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("silence %q: %w: %v", k, ErrCorrupt, err)
			}
			out = append(out, s)
			return nil
		})
	})
	if err != nil {
		return nil, failed(err, fmt.Sprintf("read silences from %s", db.path))
	}
	return out, nil
}

// AddSilence stores s under a new ID, which it returns in the copy.
func (db *DB) AddSilence(s Silence) (Silence, error) {
	if db.readOnly {
		return Silence{}, fmt.Errorf("add silence to %s: %w", db.path, ErrReadOnly)
	}
	if s.Created.IsZero() {
		s.Created = db.now()
	}
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSilences)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		s.ID = fmt.Sprintf("s%d", seq)
		v, err := json.Marshal(&s)
		if err != nil {
			return err
		}
		return b.Put([]byte(s.ID), v)
	})
	if err != nil {
		return Silence{}, failed(err, fmt.Sprintf("add silence to %s", db.path))
	}
	return s, nil
}

// ExpireSilence ends the silence id at time at, and returns it.
func (db *DB) ExpireSilence(id string, at time.Time) (Silence, error) {
	if db.readOnly {
		return Silence{}, fmt.Errorf("expire silence %s in %s: %w", id, db.path, ErrReadOnly)
	}
	var s Silence
	err := db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSilences)
		v := b.Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if at.Before(s.Expires) {
			s.Expires = at
		}
		nv, err := json.Marshal(&s)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), nv)
	})
	if err != nil {
		return Silence{}, failed(err, fmt.Sprintf("expire silence %s in %s", id, db.path))
	}
	return s, nil
}

// writeFindings stores the findings and coverage of a batch.
func writeFindings(tx *bolt.Tx, b *Batch) error {
	fb := tx.Bucket(bucketFindings)
	for k := range b.DropFindings {
		if err := fb.Delete(k.bytes()); err != nil {
			return fmt.Errorf("delete finding %s: %w", k.ID(), err)
		}
	}
	for k, f := range b.Findings {
		if !k.valid() {
			return fmt.Errorf("finding %q/%q/%q: %w", k.Kind, k.Client, k.Subject, ErrInvalid)
		}
		f.FindingKey = k
		v, err := json.Marshal(&f)
		if err != nil {
			return fmt.Errorf("encode finding %s: %w", k.ID(), err)
		}
		if err := fb.Put(k.bytes(), v); err != nil {
			return fmt.Errorf("write finding %s: %w", k.ID(), err)
		}
	}
	cb := tx.Bucket(bucketCoverage)
	for src, spans := range b.Coverage {
		if src == "" || strings.IndexByte(src, 0) >= 0 {
			return fmt.Errorf("coverage of source %q: %w", src, ErrInvalid)
		}
		v, err := json.Marshal(spans)
		if err != nil {
			return fmt.Errorf("encode coverage of %s: %w", src, err)
		}
		if err := cb.Put([]byte(src), v); err != nil {
			return fmt.Errorf("write coverage of %s: %w", src, err)
		}
	}
	return nil
}
