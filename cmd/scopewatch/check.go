package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/store"
)

// cmdCheck checks the store file: bbolt's consistency check and a decode
// of every record of every bucket. It prints what it checked and every
// problem, and fails (exit 1) when it found any. It reads the file
// read-only, so it cannot run beside the daemon, which holds it for
// writing.
func cmdCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("check")
	configPath := fs.String("config", "", configUsage)
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	r, err := store.Check(cfg.Store)
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w: stop the daemon to check the store", err)
	}
	if err != nil {
		return err
	}
	printCheck(stdout, &r)
	if !r.Damaged() {
		return nil
	}
	return fmt.Errorf("store %s is damaged (%s): restore it from a backup, see README Backup", r.Path, problems(len(r.Problems)))
}

// printCheck writes what Check checked and found.
func printCheck(w io.Writer, r *store.Report) {
	fmt.Fprintf(w, "store %s: %s", r.Path, sizeOf(r.FileSize))
	if r.PageSize > 0 {
		fmt.Fprintf(w, ", %d pages of %d bytes in use", r.Pages, r.PageSize)
	}
	if r.Schema > 0 {
		fmt.Fprintf(w, ", schema version %d", r.Schema)
	}
	fmt.Fprintln(w)
	for _, b := range r.Buckets {
		fmt.Fprintf(w, "  bucket %-13s %d records decoded\n", b.Name, b.Records)
	}
	switch {
	case r.PageCheck:
		fmt.Fprintln(w, "  bbolt consistency check: every page reachable or free, keys in order")
	case len(r.Buckets) > 0:
		fmt.Fprintln(w, "  bbolt consistency check: skipped, reading the pages already failed")
	}
	if !r.Damaged() {
		fmt.Fprintln(w, "no problems found")
		return
	}
	fmt.Fprintf(w, "%s:\n", problems(len(r.Problems)))
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  %s\n", report.Text(p.String())) // keys are client ids, which anyone can choose
	}
}

// problems counts problems in words.
func problems(n int) string {
	if n == 1 {
		return "1 problem"
	}
	return fmt.Sprintf("%d problems", n)
}
