package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

func cmdSilence(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	action, err := groupAction("silence", args, stdout)
	if err != nil {
		return err
	}
	switch action {
	case "add":
		return cmdSilenceAdd(ctx, args[1:], stdout, stderr)
	case "list":
		return cmdSilenceList(ctx, args[1:], stdout, stderr)
	default: // expire
		return cmdSilenceExpire(ctx, args[1:], stdout, stderr)
	}
}

func cmdSilenceAdd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("silence add")
	configPath := fs.String("config", "", configUsage)
	var req silenceRequest
	fs.StringVar(&req.Client, "client", "", "client id or shell pattern (lab-*)")
	fs.StringVar(&req.Kind, "kind", "", "finding kind: "+strings.Join(rules.FindingKinds(), ", "))
	fs.StringVar(&req.Subject, "subject", "", "subject (scope, country, network, source) or shell pattern")
	fs.StringVar(&req.For, "for", "", "how long the silence lasts: 30d, 2w, 12h")
	fs.StringVar(&req.Until, "until", "", "when the silence ends: a date (the end of that day, UTC) or an RFC 3339 time")
	fs.StringVar(&req.Reason, "reason", "", "why these findings are acceptable (required)")
	fs.StringVar(&req.Author, "author", "", "who adds the silence; only the identity the silence is recorded with anyway (the user running the command, or SCOPEWATCH_API_USER over TCP) is accepted")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	// Checked here too, so that a mistake is a usage error whether or not
	// a daemon runs.
	if _, err := req.silence(time.Now()); err != nil {
		return usageError{asFlags(err)}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var v alert.SilenceView
	err = changeStore(ctx, cfg, "/api/v1/silences", req, &v, func(db *store.DB) error {
		// From the file, the author is the user running the command.
		who := currentUser()
		if req.Author != "" && req.Author != who {
			return usagef("--author %q refused: the silence is recorded as added by %q, the user running this command", req.Author, who)
		}
		req.Author = who
		s, err := req.silence(time.Now())
		if err != nil {
			return usageError{asFlags(err)}
		}
		s, err = db.AddSilence(s)
		v = alert.NewSilenceView(s, time.Now())
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, v.ID)
	return nil
}

func cmdSilenceList(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("silence list")
	configPath := fs.String("config", "", configUsage)
	all := fs.Bool("all", false, "include expired silences")
	format := fs.String("format", "table", "table or json")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *format != alert.FormatTable && *format != alert.FormatJSON {
		return usagef("unknown format %q; use table or json", *format)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var views []alert.SilenceView
	err = readState(ctx, cfg, "/api/v1/silences", &views, func(db *store.DB) error {
		ss, err := allSilences(cfg, db)
		views = alert.SilenceViews(ss, time.Now())
		return err
	})
	if err != nil {
		return err
	}
	now := time.Now()
	ss := make([]store.Silence, 0, len(views))
	for _, v := range views {
		if s := v.Silence(); *all || now.Before(s.Expires) {
			ss = append(ss, s)
		}
	}
	return alert.WriteSilences(stdout, ss, now, *format)
}

func cmdSilenceExpire(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("silence expire")
	configPath := fs.String("config", "", configUsage)
	// The id may come before or after the flags.
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	id := fs.Arg(0)
	if fs.NArg() > 0 {
		if err := parseFlags(fs, fs.Args()[1:], stdout); err != nil {
			return err
		}
	}
	if id == "" {
		return usagef("silence expire needs the id of a silence (silence list shows them)")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if err := refuseConfigSilence(cfg, id); err != nil {
		return usageError{err}
	}
	var v alert.SilenceView
	err = changeStore(ctx, cfg, "/api/v1/silences/"+url.PathEscape(id)+"/expire", nil, &v, func(db *store.DB) error {
		s, err := db.ExpireSilence(id, time.Now())
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no silence %q in %s; silence list --all shows them", id, db.Path())
		}
		v = alert.NewSilenceView(s, time.Now())
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s expired at %s\n", v.ID, v.Expires.UTC().Format(time.RFC3339))
	return nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// silenceRequest is the body of POST /api/v1/silences, which `scopewatch
// silence add` sends. For and Until are read by the side that stores the
// silence, against its clock.
type silenceRequest struct {
	Client  string `json:"client"`
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	For     string `json:"for,omitempty"`   // a duration: 30d, 2w, 12h
	Until   string `json:"until,omitempty"` // a date (the end of that day, UTC) or an RFC 3339 time
	Reason  string `json:"reason"`
	Author  string `json:"author,omitempty"`
}

// fieldError is a problem with one field of a silence request.
type fieldError struct {
	Field string
	Msg   string
}

func (e *fieldError) Error() string { return e.Field + ": " + e.Msg }

// silence checks r and returns the silence it asks for, with its expiry
// computed from now. All problems are returned at once, each a
// *fieldError.
func (r silenceRequest) silence(now time.Time) (store.Silence, error) {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &fieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
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

// asFlags rewrites the field errors of a silence request as flag names,
// one line each.
func asFlags(err error) error {
	var lines []string
	for _, e := range unjoin(err) {
		var fe *fieldError
		if errors.As(e, &fe) {
			lines = append(lines, "--"+fe.Field+": "+fe.Msg)
			continue
		}
		lines = append(lines, e.Error())
	}
	return errors.New(strings.Join(lines, "\n"))
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// allSilences returns the configured silences (c1, c2, ...) and then the
// stored ones in the order they were added (s1, s2, ...), expired ones
// included.
func allSilences(cfg *rules.Config, db *store.DB) ([]store.Silence, error) {
	stored, err := db.Silences()
	if err != nil {
		return nil, err
	}
	// bbolt orders keys as bytes (s10 before s2); order by number.
	slices.SortStableFunc(stored, func(a, b store.Silence) int {
		return cmp.Compare(silenceSeq(a.ID), silenceSeq(b.ID))
	})
	return append(alert.ConfigSilences(cfg.Detect.Silences), stored...), nil
}

func silenceSeq(id string) uint64 {
	n, _ := strconv.ParseUint(strings.TrimPrefix(id, "s"), 10, 64)
	return n
}

// refuseConfigSilence explains that a silence of the configuration file
// can be ended only by editing the file.
func refuseConfigSilence(cfg *rules.Config, id string) error {
	for i, s := range alert.ConfigSilences(cfg.Detect.Silences) {
		if s.ID != id {
			continue
		}
		at := fmt.Sprintf("detect.silences[%d] in %s", i, cfg.File)
		if line := cfg.Detect.Silences[i].Line; line > 0 {
			at = fmt.Sprintf("detect.silences[%d] at %s:%d", i, cfg.File, line)
		}
		return fmt.Errorf("silence %s comes from the configuration (%s); remove it there or change its until to end it", id, at)
	}
	return nil
}

// changeStore makes a change through the running daemon's API when it is
// up: the daemon holds the store, and its engine must learn of the
// change. When no daemon answers, it opens the store file for writing and
// calls fromFile.
func changeStore(ctx context.Context, cfg *rules.Config, path string, body, into any, fromFile func(*store.DB) error) error {
	ok, err := postDaemon(ctx, cfg, path, body, into)
	if ok || err != nil {
		return err
	}
	if _, err := os.Stat(cfg.Store); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store %s does not exist yet: start the daemon or run scan once to create it, or put the silence in detect.silences of %s", cfg.Store, cfg.File)
	}
	db, err := store.Open(cfg.Store, store.Options{})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w, and no scopewatch API answered on %s nor at %s (the control_socket and listen of %s): "+
			"if that process is a scan, try again when it has finished; if it is a daemon, it uses others", err, cfg.ControlSocket, cfg.Listen, cfg.File)
	}
	if err != nil {
		return err
	}
	err = fromFile(db)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// postDaemon posts body as JSON to the running daemon and decodes its
// answer into into; ok is false when none answers. An answer 400 or 409
// is a usage error: the daemon refused what was asked.
func postDaemon(ctx context.Context, cfg *rules.Config, path string, body, into any) (ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if body == nil {
		body = struct{}{}
	}
	resp, ok, err := callDaemon(ctx, cfg, http.MethodPost, path, body)
	if !ok || err != nil {
		return ok, err
	}
	defer resp.Body.Close()
	at := daemonAt(cfg, resp)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		err := fmt.Errorf("daemon %s answered %s: %s", at, resp.Status, bytes.TrimSpace(b))
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusConflict {
			err = usageError{err}
		}
		return true, err
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return true, fmt.Errorf("read answer of daemon %s: %w", at, err)
	}
	return true, nil
}
