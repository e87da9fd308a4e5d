package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/scopewatch/scopewatch/daemon"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
)

func cmdScan(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("scan")
	configPath := fs.String("config", "", "configuration file")
	sourceName := fs.String("source", "", "configured source whose format the files are in (default: the source whose path or glob matches)")
	quiet := fs.Bool("quiet", false, "print nothing on success")
	noDetect := fs.Bool("no-detect", false, "only record usage: raise no findings about the lines read (a backfill of old logs)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return usagef("scan needs at least one file")
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	bySource := map[string][]string{}
	var order []string
	for _, f := range fs.Args() {
		src, err := sourceFor(cfg, *sourceName, f)
		if err != nil {
			return err
		}
		if bySource[src] == nil {
			order = append(order, src)
		}
		bySource[src] = append(bySource[src], f)
	}
	d, err := daemon.New(cfg, daemon.Options{
		Logger:   newLogger(stderr, cfg.Log.Format, daemon.LogLevel(cfg.Log.Level)),
		Version:  readVersion(),
		NoDetect: *noDetect,
	})
	if err != nil {
		return err
	}
	defer d.Close()
	files := make([]daemon.ScanFiles, 0, len(order))
	for _, name := range order {
		files = append(files, daemon.ScanFiles{Source: name, Paths: bySource[name]})
	}
	start := time.Now()
	err = d.Scan(ctx, files)
	var refused *ingest.FormatError
	if err != nil && !errors.As(err, &refused) {
		return err
	}
	if !*quiet {
		el := time.Since(start)
		n := d.Committed()
		fmt.Fprintf(stdout, "scanned %d new lines from %d file(s) in %s (%.0f lines/s)\n",
			n, fs.NArg(), el.Round(time.Millisecond), float64(n)/el.Seconds())
	}
	if err != nil {
		return err // each refused file, why, and what would read it
	}
	return ctx.Err()
}

// sourceConfig returns the configured source named name.
func sourceConfig(cfg *rules.Config, name string) rules.Source {
	for _, s := range cfg.Sources {
		if s.Name == name {
			return s
		}
	}
	return rules.Source{Name: name}
}

// sourceFor picks the configured source a file belongs to: the one named,
// else the one whose path or rotated-file glob matches the file.
func sourceFor(cfg *rules.Config, name, file string) (string, error) {
	if name != "" {
		for _, s := range cfg.Sources {
			if s.Name == name {
				return name, nil
			}
		}
		return "", usagef("no source named %q in %s", name, cfg.File)
	}
	abs, _ := filepath.Abs(file)
	for _, s := range cfg.Sources {
		if abs == s.Path {
			return s.Name, nil
		}
		if ok, _ := filepath.Match(s.Glob, abs); ok {
			return s.Name, nil
		}
	}
	if len(cfg.Sources) == 1 {
		return cfg.Sources[0].Name, nil
	}
	return "", usagef("%s matches no source's path or glob in %s; name one with --source", file, cfg.File)
}
