package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/api"
	"github.com/scopewatch/scopewatch/report"
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
	var req api.SilenceRequest
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
	if _, err := req.Silence(time.Now()); err != nil {
		return usageError{asFlags(err)}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var v report.SilenceView
	err = changeStore(ctx, cfg, "/api/v1/silences", req, &v, func(db *store.DB) error {
		// From the file, the author is the user running the command.
		who := currentUser()
		if req.Author != "" && req.Author != who {
			return usagef("--author %q refused: the silence is recorded as added by %q, the user running this command", req.Author, who)
		}
		req.Author = who
		s, err := req.Silence(time.Now())
		if err != nil {
			return usageError{asFlags(err)}
		}
		s, err = db.AddSilence(s)
		v = report.NewSilenceView(s, time.Now())
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
	if *format != report.FormatTable && *format != report.FormatJSON {
		return usagef("unknown format %q; use table or json", *format)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var views []report.SilenceView
	err = readState(ctx, cfg, "/api/v1/silences", &views, func(db *store.DB) error {
		ss, err := report.Silences(cfg, db)
		views = report.SilenceViews(ss, time.Now())
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
	return report.WriteSilences(stdout, ss, now, *format)
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
	if err := report.ConfigSilence(cfg, id); err != nil {
		return usageError{err}
	}
	var v report.SilenceView
	err = changeStore(ctx, cfg, "/api/v1/silences/"+url.PathEscape(id)+"/expire", nil, &v, func(db *store.DB) error {
		s, err := db.ExpireSilence(id, time.Now())
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no silence %q in %s; silence list --all shows them", id, db.Path())
		}
		v = report.NewSilenceView(s, time.Now())
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

// asFlags rewrites the field errors of a silence request as flag names,
// one line each.
func asFlags(err error) error {
	var lines []string
	for _, e := range unjoin(err) {
		var fe *api.FieldError
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

// changeStore makes a change through the running daemon's API when it is
// up: the daemon holds the store, and its engine must learn of the
// change. When no daemon answers, it opens the store file for writing and
// calls fromFile.
func changeStore(ctx context.Context, cfg *rules.Config, path string, body, into any, fromFile func(*store.DB) error) error {
	ok, err := api.NewClient(cfg).Post(ctx, path, body, into)
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
