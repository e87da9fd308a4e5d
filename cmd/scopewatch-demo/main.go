// Command scopewatch-demo generates 120 days of Keycloak and API gateway
// traffic into a new directory with a config and a rules file, starts the
// real daemon on them, appends more traffic while it tails (rotating both
// logs once, as logrotate does), waits until every line is committed,
// stops the daemon with a clean drain, and prints the unused-scope report
// and the scopewatch commands to run against the same config afterwards.
//
//	go run ./cmd/scopewatch-demo [--dir DIR] [--events N]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/scopewatch/scopewatch/daemon"
	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
)

// demoFiles are the files the demo writes into its directory.
var demoFiles = []string{"scopewatch.yaml", "rules.yaml", "scopewatch.db", "keycloak.log", "keycloak.log.1",
	"api-access.log", "api-access.log.1"}

// checkDemoDir refuses a directory that already holds a file the demo
// writes: a second run would append its traffic to the first run's logs
// and add it to the same store, so every count would grow again, and it
// would overwrite a config or rules file that is not the demo's.
func checkDemoDir(dir string) error {
	var found []string
	for _, name := range demoFiles {
		if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
			found = append(found, name)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("demo directory %s: %w", dir, err)
		}
	}
	if len(found) == 0 {
		return nil
	}
	if slices.Contains(found, "scopewatch.db") {
		return usagef("--dir %s already holds a demo store: running the demo again there would add this run's traffic to its counts; remove it or pick another directory", dir)
	}
	return usagef("--dir %s already holds files the demo writes (%s): remove them or pick another directory", dir, strings.Join(found, ", "))
}

// scopewatchCommand is how to run scopewatch, for the hints, given how
// the user ran this program (os.Args[0]): "go run ./cmd/scopewatch" for
// a binary that go run built (under a go-build directory, the work
// directory or the build cache), the scopewatch beside this program when
// a path was typed (./bin/scopewatch-demo: ./bin/scopewatch), and
// scopewatch when this program was found on PATH.
func scopewatchCommand(arg0 string) string {
	if !strings.ContainsRune(arg0, filepath.Separator) && !strings.ContainsRune(arg0, '/') {
		return "scopewatch"
	}
	dir := arg0[:strings.LastIndexAny(arg0, "/"+string(filepath.Separator))+1] // as typed: ./bin/
	for _, d := range strings.FieldsFunc(dir, func(r rune) bool { return r == '/' || r == filepath.Separator }) {
		if strings.HasPrefix(d, "go-build") {
			return "go run ./cmd/scopewatch"
		}
	}
	return shellQuote(dir + "scopewatch")
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// characters that never need quoting.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "scopewatch-demo:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "scopewatch-demo:", err)
		os.Exit(1)
	}
}

// usageError is a bad flag, argument or directory (exit 2).
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("scopewatch-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory for the generated logs, config and store (default: a new temporary directory)")
	events := fs.Int("events", 60000, "events to generate over 120 days")
	verbose := fs.Bool("v", false, "show the daemon's log")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if *events < 100 {
		return usagef("--events must be at least 100")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "scopewatch-demo-")
		if err != nil {
			return err
		}
		*dir = d
	} else if err := checkDemoDir(*dir); err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	cfgPath := filepath.Join(*dir, "scopewatch.yaml")
	if err := os.WriteFile(filepath.Join(*dir, "rules.yaml"), []byte(traffic.DemoRules), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, traffic.DemoConfig, *dir, "127.0.0.1:0"), 0o644); err != nil {
		return err
	}
	cfg, err := rules.Load(cfgPath, ingest.Formats{})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "scopewatch demo in %s\n", *dir)

	// 120 days of traffic ending now: the first 70%% exists before the
	// daemon starts (history), the rest is appended while it tails, with a
	// rename rotation of both logs in between.
	end := time.Now().UTC().Truncate(time.Second)
	gen := traffic.New(42, traffic.DemoClients(), end.Add(-120*24*time.Hour), end, *events)
	w, err := traffic.OpenWriters(*dir)
	if err != nil {
		return err
	}
	defer w.Close()
	history := *events * 7 / 10
	if err := w.Write(gen, 0, history); err != nil {
		return err
	}
	w.Keycloak.WriteString(traffic.DemoBanner)
	w.API.WriteString(traffic.DemoTruncated)
	if err := w.Flush(); err != nil {
		return err
	}
	total := uint64(history + 2) // the events, the banner and the truncated line

	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	started := make(chan struct{})
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Version: daemon.Version{Version: "demo", Go: runtime.Version(), Revision: "unknown"}, Started: func(string) { close(started) }})
	if err != nil {
		return err
	}
	defer d.Close()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	select {
	case <-started:
	case err := <-done:
		return err
	}
	select {
	case <-d.Attached():
	case err := <-done:
		return fmt.Errorf("daemon stopped early: %w", err)
	}
	// The daemon listens on a port of the moment and stops when the demo
	// ends: an address printed here would be dead by the time it is read.
	fmt.Fprintf(stdout, "daemon up, tailing %s and %s (its HTTP API and /metrics are served only while the demo runs)\n",
		cfg.Sources[0].Path, cfg.Sources[1].Path)

	live := *events - history
	if err := w.Write(gen, history, history+live/2); err != nil {
		return err
	}
	if err := w.Rotate(*dir); err != nil {
		return err
	}
	if err := w.Write(gen, history+live/2, *events); err != nil {
		return err
	}
	total += uint64(live)
	fmt.Fprintf(stdout, "wrote %d events (%d while tailing, with one rename rotation); waiting for them to be committed\n", *events, live)

	deadline := time.After(2 * time.Minute)
	for d.Committed() < total {
		select {
		case <-d.Progress():
		case err := <-done:
			return fmt.Errorf("daemon stopped early: %w", err)
		case <-deadline:
			return fmt.Errorf("only %d of %d lines committed after 2 minutes", d.Committed(), total)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	stop()
	if err := <-done; err != nil {
		return err
	}
	srcs, err := d.Store().Sources()
	if err != nil {
		return err
	}
	rep, err := report.Unused(cfg, d.Store(), time.Now)
	if err != nil {
		return err
	}
	if err := d.Close(); err != nil {
		return err
	}
	printDemoLines(stdout, total, report.SourceViews(srcs))
	return printDemoReport(stdout, rep, scopewatchCommand(os.Args[0]), cfgPath)
}

// printDemoLines says what the committed lines were, so that the numbers
// add up: the generated events, the start-up banner that is ignored and
// the truncated line that is malformed.
func printDemoLines(w io.Writer, total uint64, srcs []report.SourceView) {
	var events, ignored, malformed uint64
	for _, s := range srcs {
		events += s.Events
		ignored += s.Ignored
		malformed += s.Malformed
	}
	fmt.Fprintf(w, "all %d lines committed; daemon stopped cleanly\n", total)
	fmt.Fprintf(w, "  %d events, and %d lines of the kinds real logs also hold: %d ignored (Keycloak's start-up banner, not an event), %d malformed (a gateway line cut short)\n\n",
		events, ignored+malformed, ignored, malformed)
}

// printDemoReport prints the unused-scope report, as scopewatch report
// unused prints it, and the commands to try next, run as cmd.
func printDemoReport(stdout io.Writer, rep detect.UnusedReport, cmd, cfgPath string) error {
	if err := report.WriteUnused(stdout, rep, report.FormatTable); err != nil {
		return err
	}
	cfg := shellQuote(cfgPath)
	fmt.Fprintf(stdout, "\nTry: %[1]s findings --config %[2]s\n     %[1]s clients --config %[2]s\n     %[1]s report unused --config %[2]s --format csv\n",
		cmd, cfg)
	return nil
}
