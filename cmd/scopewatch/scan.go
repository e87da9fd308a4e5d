package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"github.com/scopewatch/scopewatch/daemon"
	"github.com/scopewatch/scopewatch/ingest"
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
	var files []daemon.ScanFiles // per source, in the order first named
	for _, f := range fs.Args() {
		src, err := cfg.SourceFor(*sourceName, f)
		if err != nil {
			return usageError{err}
		}
		i := slices.IndexFunc(files, func(s daemon.ScanFiles) bool { return s.Source == src.Name })
		if i < 0 {
			i = len(files)
			files = append(files, daemon.ScanFiles{Source: src.Name})
		}
		files[i].Paths = append(files[i].Paths, f)
	}
	d, err := daemon.New(cfg, daemon.Options{
		Logger:         newLogger(stderr, cfg.Log.Format, daemon.LogLevel(cfg.Log.Level)),
		Version:        readVersion(),
		NoDetect:       *noDetect,
		SetMemoryLimit: debug.SetMemoryLimit,
		SetGCPercent:   debug.SetGCPercent,
		Collect:        runtime.GC,
	})
	if err != nil {
		return err
	}
	defer d.Close()
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
