package main

import (
	"context"
	"io"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

func cmdFindings(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("findings")
	configPath := fs.String("config", "", configUsage)
	state := fs.String("state", store.StateOpen, "open, silenced, resolved or all")
	kind := fs.String("kind", "", "only this kind of finding: "+strings.Join(rules.FindingKinds(), ", "))
	client := fs.String("client", "", "only this client")
	format := fs.String("format", "table", "table or json")
	local := fs.Bool("local", false, localUsage)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	filter, err := report.NewFindingFilter(*state, *kind, *client)
	if err != nil {
		return usageError{err}
	}
	if *format != report.FormatTable && *format != report.FormatJSON {
		return usagef("unknown format %q; use table or json", *format)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var views []report.FindingView
	path := "/api/v1/findings?" + filter.Query().Encode()
	err = readState(ctx, cfg, path, &views, func(db *store.DB) error {
		found, err := report.Findings(cfg, db, time.Now())
		if err != nil {
			return err
		}
		views = report.FindingViews(filter.Apply(found))
		return nil
	})
	if err != nil {
		return err
	}
	fleet := fleetOn(cfg, *local)
	if fleet {
		if views, err = fleetFindings(ctx, cfg, path, views); err != nil {
			return err
		}
	}
	if *client != "" && len(views) == 0 {
		if err := checkClient(ctx, cfg, *client, fleet); err != nil {
			return err
		}
	}
	out := make([]store.Finding, 0, len(views))
	for _, v := range views {
		out = append(out, v.Finding())
	}
	return report.WriteFindings(stdout, out, *format)
}
