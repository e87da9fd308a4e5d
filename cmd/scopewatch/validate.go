package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/daemon"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
)

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("validate")
	configPath := fs.String("config", "", "configuration file")
	sample := fs.String("sample", "", "a log file to try the source's format on, line by line")
	sourceName := fs.String("source", "", "with --sample: the source whose format to use (default: the one whose path or glob matches)")
	show := fs.Int("show", 10, "with --sample: how many failing lines, ignored lines and events to show")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("validate takes no arguments, got %q; to try a log file, use --sample %s", fs.Args(), fs.Arg(0))}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	parsers := make(map[string]ingest.Parser, len(cfg.Sources))
	var errs []error
	for _, src := range cfg.Sources {
		p, err := ingest.NewParser(src)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: sources %s: %w", cfg.File, src.Line, src.Name, err))
			continue
		}
		parsers[src.Name] = p
	}
	// The GeoIP databases are opened as run opens them: a file validate
	// passes is one the daemon accepts.
	if cfg.GeoIP.Enabled() {
		geo, err := daemon.OpenGeoIP(cfg, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			errs = append(errs, err)
		} else {
			geo.Close()
		}
	}
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	fmt.Fprint(stdout, cfg.Summary())
	// Warnings do not refuse the configuration: the daemon logs them too.
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "warning: %v\n", w)
	}
	fmt.Fprintln(stdout, "configuration is valid")
	if *sample == "" {
		return nil
	}
	src, err := cfg.SourceFor(*sourceName, *sample)
	if err != nil {
		return usageError{err}
	}
	return trySample(stdout, src, parsers[src.Name], *sample, *show)
}

// trySample parses every line of a sample file and tells which lines the
// format reads, which it ignores and why, and why the others fail, so a
// person can fix a configuration without reading code (ingest.Sample).
func trySample(w io.Writer, src rules.Source, p ingest.Parser, path string, show int) error {
	r, err := ingest.Sample(src, p, path, show)
	if err != nil {
		return err
	}
	t := &r.Tally
	lines, ignored, malformed := t.Lines, t.IgnoredLines(), t.MalformedLines()
	fmt.Fprintf(w, "\nsample %s as source %s: %d lines: %d parsed into %d events (%s), %d ignored, %d malformed\n",
		path, src.Name, lines, lines-ignored-malformed, r.Events, ingest.Counts(r.ByKind), ignored, malformed)
	fmt.Fprintf(w, "ignored by reason: %s\n", ingest.Counts(t.Ignored))
	if ignored > 0 {
		fmt.Fprintf(w, "first ignored lines:\n")
		for _, l := range r.Ignored {
			fmt.Fprintf(w, "  line %d: %s\n      %s\n", l.Line.Pos.Line, l.Reason, shown(l.Line))
		}
	}
	if malformed > 0 {
		fmt.Fprintf(w, "malformed by reason: %s\nfirst failing lines:\n", ingest.Counts(t.Malformed))
		for _, l := range r.Malformed {
			fmt.Fprintf(w, "  %s\n      %s\n", report.Text(l.Reason), shown(l.Line))
		}
	}
	if len(r.Examples) > 0 {
		fmt.Fprintf(w, "first events:\n")
		for _, ev := range r.Examples {
			fmt.Fprintf(w, "  %s\n", describeEvent(ev))
		}
	}
	return r.Err()
}

// shown is how a sample line is shown: clipped, or its length when it was
// too long to be read.
func shown(ln ingest.Line) string {
	if n, _, long := ingest.TooLong(ln); long {
		return fmt.Sprintf("(%d bytes, not shown)", n)
	}
	return report.Text(clip(ln.Text, 160)) // a log line may hold control characters: never raw to a terminal
}

func clip(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// describeEvent renders the fields of an event a person checks first.
func describeEvent(ev ingest.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "line %d: %s %s", ev.Pos.Line, ev.Kind, ev.Time.UTC().Format(time.RFC3339))
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, report.Text(v))
		}
	}
	field("client", ev.Client)
	field("type", ev.Type)
	if len(ev.Requested) > 0 {
		field("requested", "["+strings.Join(ev.Requested, " ")+"]")
	}
	if len(ev.Granted) > 0 {
		field("granted", "["+strings.Join(ev.Granted, " ")+"]")
	}
	field("method", ev.Method)
	field("path", ev.Path)
	if ev.Status != 0 {
		field("status", strconv.Itoa(ev.Status))
	}
	if ev.IP.IsValid() {
		field("ip", ev.IP.String())
	}
	field("country", ev.Country)
	field("reason", ev.Reason)
	return b.String()
}

// version is stamped at build time by the packages:
// go build -ldflags "-X main.version=1.2.3". It wins over the module
// version Go records.
var version string

// readVersion describes the running binary.
func readVersion() daemon.Version {
	v := daemon.Version{Version: "devel", Go: runtime.Version(), Revision: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				v.Revision = s.Value
			}
		}
	}
	if version != "" {
		v.Version = version
	}
	return v
}

func cmdVersion(stdout io.Writer) error {
	v := readVersion()
	fmt.Fprintf(stdout, "scopewatch %s (%s, revision %s)\n", v.Version, v.Go, v.Revision)
	return nil
}
