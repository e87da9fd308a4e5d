package api

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// SilenceRequest is the body of POST /api/v1/silences, which `scopewatch
// silence add` sends. For and Until are read by the side that stores the
// silence, against its clock.
type SilenceRequest struct {
	Client  string `json:"client"`
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	For     string `json:"for,omitempty"`   // a duration: 30d, 2w, 12h
	Until   string `json:"until,omitempty"` // a date (the end of that day, UTC) or an RFC 3339 time
	Reason  string `json:"reason"`
	Author  string `json:"author,omitempty"`
}

// FieldError is a problem with one field of a silence request.
type FieldError struct {
	Field string
	Msg   string
}

// Error names the field and what is wrong with it.
func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// Silence checks r and returns the silence it asks for, with its expiry
// computed from now. All problems are returned at once, each a
// *FieldError.
func (r SilenceRequest) Silence(now time.Time) (store.Silence, error) {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	for _, f := range []struct{ name, pattern string }{{"client", r.Client}, {"subject", r.Subject}} {
		if err := store.CheckPattern(f.pattern); err != nil {
			bad(f.name, "%v", err)
		}
	}
	if r.Kind != "" && !slices.Contains(rules.FindingKinds(), r.Kind) {
		bad("kind", "%s", rules.Unknown("finding kind", r.Kind, rules.FindingKinds()))
	}
	if matchesAll(r.Client) && r.Kind == "" && matchesAll(r.Subject) {
		bad("client", "name at least one of client, kind and subject: a silence that matches every finding is refused")
	}
	if strings.TrimSpace(r.Reason) == "" {
		bad("reason", "required: why these findings are acceptable, for the next reviewer")
	}
	var expires time.Time
	switch {
	case r.For != "" && r.Until != "":
		bad("for", "give for or until, not both")
	case r.For != "":
		d, err := rules.ParseDuration(r.For)
		switch {
		case err != nil:
			bad("for", "%v", err)
		case d <= 0:
			bad("for", "must be longer than 0")
		default:
			expires = now.Add(d.Std())
		}
	case r.Until != "":
		t, err := rules.ParseUntil(r.Until)
		switch {
		case err != nil:
			bad("until", "%v", err)
		case !t.After(now):
			bad("until", "%s is not in the future", t.UTC().Format(time.RFC3339))
		default:
			expires = t
		}
	default:
		bad("for", "required: how long the silence lasts (for 30d) or when it ends (until 2027-03-31); silences do not last for ever")
	}
	if len(errs) > 0 {
		return store.Silence{}, errors.Join(errs...)
	}
	return store.Silence{
		Client: r.Client, Kind: r.Kind, Subject: r.Subject, Expires: expires,
		Reason: strings.TrimSpace(r.Reason), Author: r.Author,
	}, nil
}

func matchesAll(pattern string) bool { return pattern == "" || pattern == "*" }
