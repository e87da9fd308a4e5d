package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/api"
	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	action, err := groupAction("report", args, stdout)
	if err != nil {
		return err
	}
	if action == "unused" {
		return reportUnused(ctx, args, stdout, stderr)
	}
	return reportScope(ctx, args[1:], stdout, stderr)
}

func reportUnused(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report unused")
	configPath := fs.String("config", "", configUsage)
	client := fs.String("client", "", "only this client")
	format := fs.String("format", "table", "table, json, csv or markdown")
	at := fs.String("at", "", "judge as of this time (RFC 3339 or date) instead of now")
	local := fs.Bool("local", false, localUsage)
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	switch *format {
	case report.FormatTable, report.FormatJSON, report.FormatCSV, report.FormatMarkdown:
	default:
		return usagef("unknown format %q; use table, json, csv or markdown", *format)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	now := time.Now
	if *at != "" {
		t, err := report.ParseAt(*at)
		if err != nil {
			return err
		}
		now = func() time.Time { return t }
	}
	var rep detect.UnusedReport
	q := url.Values{}
	if *client != "" {
		q.Set("client", *client)
	}
	fleet := fleetOn(cfg, *local)
	if fleet && *at == "" {
		// Every instance judges at the same moment.
		t := now()
		now = func() time.Time { return t }
		*at = t.Format(time.RFC3339Nano)
	}
	if *at != "" {
		q.Set("at", now().Format(time.RFC3339Nano))
	}
	path := "/api/v1/reports/unused?" + q.Encode()
	err = readState(ctx, cfg, path, &rep, func(db *store.DB) error {
		var err error
		if rep, err = report.Unused(cfg, db, now); err != nil {
			return err
		}
		if *client != "" {
			rep = report.FilterUnused(rep, *client)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if fleet {
		if rep, err = fleetUnused(ctx, cfg, path, rep); err != nil {
			return err
		}
	}
	if *client != "" && len(rep.Unused) == 0 && len(rep.Pending) == 0 {
		if err := checkClient(ctx, cfg, *client, fleet); err != nil {
			return err
		}
	}
	return report.WriteUnused(stdout, rep, *format)
}

// reportScope prints, for one scope, the clients that hold or use it and
// whether removing it from the catalog would break one of them.
func reportScope(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report scope")
	configPath := fs.String("config", "", configUsage)
	format := fs.String("format", "table", "table, json, csv or markdown")
	local := fs.Bool("local", false, localUsage)
	// The name may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	rest := fs.Args()
	if name == "" && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	if name == "" {
		return usagef("report scope needs the name of a scope: report scope NAME --config FILE")
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	switch *format {
	case report.FormatTable, report.FormatJSON, report.FormatCSV, report.FormatMarkdown:
	default:
		return usagef("unknown format %q; use table, json, csv or markdown", *format)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var rep report.ScopeReport
	path := "/api/v1/reports/scope/" + url.PathEscape(name)
	err = readState(ctx, cfg, path, &rep, func(db *store.DB) error {
		var err error
		rep, err = report.Scope(cfg, db, name, time.Now)
		return err
	})
	if err != nil {
		return err
	}
	if fleetOn(cfg, *local) {
		if rep, err = fleetScope(ctx, cfg, path, rep); err != nil {
			return err
		}
	}
	return report.WriteScope(stdout, rep, *format)
}

func cmdClients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("clients")
	configPath := fs.String("config", "", configUsage)
	client := fs.String("client", "", "only this client")
	format := fs.String("format", "table", "table or json")
	local := fs.Bool("local", false, localUsage)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *format != report.FormatTable && *format != report.FormatJSON {
		return usagef("unknown format %q; use table or json", *format)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	fleet := fleetOn(cfg, *local)
	var views []report.ClientView
	if *client != "" {
		one, err := seenClient(ctx, cfg, *client)
		if fleet {
			one, err = fleetClient(ctx, cfg, *client)
		}
		if err != nil {
			return err
		}
		views = []report.ClientView{one}
	} else {
		err = readState(ctx, cfg, "/api/v1/clients", &views, func(db *store.DB) error {
			cs, err := db.Clients()
			if err != nil {
				return err
			}
			views = report.Views(cs)
			return nil
		})
		if err != nil {
			return err
		}
		if fleet {
			if views, err = fleetClients(ctx, cfg, views); err != nil {
				return err
			}
		}
	}
	return report.WriteClients(stdout, views, *format)
}

// seenClient returns what the store holds about client id, from the
// running daemon or the store file. A client no log line has named yet is
// an error saying so, and whether the rules register it.
func seenClient(ctx context.Context, cfg *rules.Config, id string) (report.ClientView, error) {
	var one report.ClientView
	err := readState(ctx, cfg, "/api/v1/clients/"+url.PathEscape(id), &one, func(db *store.DB) error {
		c, ok, err := db.Client(id)
		if err != nil {
			return err
		}
		if !ok {
			return api.ErrNoClient
		}
		one = report.Views([]store.Client{c})[0]
		return nil
	})
	if errors.Is(err, api.ErrNoClient) {
		return one, unseen(cfg, id, "")
	}
	return one, err
}

// errUnseen is what the error of a client no log line has named is.
var errUnseen = errors.New("client not seen")

type unseenError struct{ msg string }

func (e unseenError) Error() string      { return e.msg }
func (unseenError) Is(target error) bool { return target == errUnseen }

// unseen returns the error for client id, which no log line has named
// (where says where, when not in this instance's store).
func unseen(cfg *rules.Config, id, where string) error {
	if where != "" {
		where = " (" + where + ")"
	}
	if registered(cfg, id) {
		return unseenError{fmt.Sprintf("client %q has not been seen%s: the rules register it, but no log line has named it yet", id, where)}
	}
	return unseenError{fmt.Sprintf("unknown client %q: no log line has named it%s and the rules do not register it; `scopewatch clients` lists the clients seen", id, where)}
}

// checkClient returns an error unless the store (of an instance of the
// fleet, when fleet) has seen client id or the rules register it. A command filtered by --client that has nothing to
// show calls it: a misspelled client would otherwise print an empty
// report, which reads as a clean bill.
func checkClient(ctx context.Context, cfg *rules.Config, id string, fleet bool) error {
	if registered(cfg, id) {
		return nil
	}
	if fleet {
		_, err := fleetClient(ctx, cfg, id)
		return err
	}
	_, err := seenClient(ctx, cfg, id)
	return err
}

// registered reports whether the rules register client id.
func registered(cfg *rules.Config, id string) bool {
	if cfg.Rules == nil {
		return false
	}
	_, ok := cfg.Rules.Clients[id]
	return ok
}

// readState gets data from the running daemon's API when it is up,
// because bbolt lets only one process hold the file; otherwise it opens the
// store read-only and calls fromFile.
func readState(ctx context.Context, cfg *rules.Config, path string, into any, fromFile func(*store.DB) error) error {
	ok, err := api.NewClient(cfg).Get(ctx, path, into)
	if ok || err != nil {
		return err
	}
	db, err := store.Open(cfg.Store, store.Options{ReadOnly: true})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w; no scopewatch API answered on %s nor at %s (the control_socket and listen of %s), so the running daemon must use others", err, cfg.ControlSocket, cfg.Listen, cfg.File)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	return fromFile(db)
}
