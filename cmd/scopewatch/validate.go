package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/daemon"
	"github.com/scopewatch/scopewatch/ingest"
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
	name, err := sourceFor(cfg, *sourceName, *sample)
	if err != nil {
		return err
	}
	return trySample(stdout, sourceConfig(cfg, name), parsers[name], *sample, *show)
}

// trySample parses every line of a sample file and tells which lines the
// format reads, which it ignores and why, and why the others fail, so a
// person can fix a configuration without reading code. It reads the file
// as the daemon and scan do (ingest's line reader, the source's
// max_line_bytes, gzip told by its magic bytes). It fails when a line is
// malformed or no line yields an event, saying what would read the lines
// when another format or wrapper does.
func trySample(w io.Writer, src rules.Source, p ingest.Parser, path string, show int) error {
	lr, closeFile, err := ingest.OpenLines(path, src.Name, src.MaxLineBytes)
	if err != nil {
		return err
	}
	defer closeFile()
	var (
		tally             ingest.Tally
		events            int
		byKind            = map[string]int{}
		failures, skipped []string
		examples          []string
		failing           [][]byte // a few malformed lines, for what would read them
		evs               []ingest.Event
	)
	for {
		ln, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		evs, err = ingest.ParseLine(p, ln, evs[:0])
		skip, pe := ingest.Outcome(err)
		tally.Add(ln, len(evs), skip, pe)
		text := shown(ln)
		switch {
		case pe != nil && len(evs) == 0:
			if len(failures) < show {
				msg := err.Error()
				if x := ingest.Explain(pe, ln.Text); x != "" {
					msg += " (" + x + ")"
				}
				failures = append(failures, fmt.Sprintf("  %s\n      %s", alert.Text(msg), text))
			}
			if _, _, long := ingest.TooLong(ln); !long && len(failing) < 20 {
				failing = append(failing, bytes.Clone(ln.Text))
			}
			continue
		case len(evs) == 0:
			if skip == "" {
				skip = ingest.SkipOtherEvent
			}
			if len(skipped) < show {
				skipped = append(skipped, fmt.Sprintf("  line %d: %s\n      %s", ln.Pos.Line, string(skip), text))
			}
			continue
		}
		for _, ev := range evs {
			events++
			byKind[ev.Kind.String()]++
			if len(examples) < show {
				examples = append(examples, "  "+describeEvent(ev))
			}
		}
	}
	lines, ignored, malformed := tally.Lines, tally.IgnoredLines(), tally.MalformedLines()
	fmt.Fprintf(w, "\nsample %s as source %s: %d lines: %d parsed into %d events (%s), %d ignored, %d malformed\n",
		path, src.Name, lines, lines-ignored-malformed, events, counts(byKind), ignored, malformed)
	fmt.Fprintf(w, "ignored by reason: %s\n", ingest.Counts(tally.Ignored))
	if ignored > 0 {
		fmt.Fprintf(w, "first ignored lines:\n%s\n", strings.Join(skipped, "\n"))
	}
	if malformed > 0 {
		fmt.Fprintf(w, "malformed by reason: %s\nfirst failing lines:\n%s\n", ingest.Counts(tally.Malformed), strings.Join(failures, "\n"))
	}
	if len(examples) > 0 {
		fmt.Fprintf(w, "first events:\n%s\n", strings.Join(examples, "\n"))
	}
	switch {
	case events == 0 && lines > 0:
		return fmt.Errorf("no line of %s yields an event for source %s: %s", path, src.Name, tally.Diagnose(src))
	case malformed > 0:
		msg := fmt.Sprintf("%d of %d lines of %s are malformed for format %s of source %s", malformed, lines, path, src.Format, src.Name)
		if n := tally.Malformed[ingest.ReasonTooLong]; n > 0 {
			msg += fmt.Sprintf("; %d are longer than max_line_bytes (%d): raise it if they hold events", n, maxLine(src))
		}
		if hint := ingest.Suggest(src, failing); hint != "" {
			msg += "; " + hint
		}
		return errors.New(msg)
	case events == 0:
		return fmt.Errorf("%s holds no line", path)
	}
	return nil
}

// maxLine is the line limit src reads with.
func maxLine(src rules.Source) int {
	if src.MaxLineBytes > 0 {
		return src.MaxLineBytes
	}
	return ingest.DefaultMaxLineSize
}

// shown is how a sample line is shown: clipped, or its length when it was
// too long to be read.
func shown(ln ingest.Line) string {
	if n, _, long := ingest.TooLong(ln); long {
		return fmt.Sprintf("(%d bytes, not shown)", n)
	}
	return alert.Text(clip(ln.Text, 160)) // a log line may hold control characters: never raw to a terminal
}

func counts(m map[string]int) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
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
			fmt.Fprintf(&b, " %s=%s", k, alert.Text(v))
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
