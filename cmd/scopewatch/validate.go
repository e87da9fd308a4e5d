package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/ingest"
)

func cmdValidate(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file")
	sample := fs.String("sample", "", "a log file to try the source's format on, line by line")
	sourceName := fs.String("source", "", "with --sample: the source whose format to use (default: the one whose path or glob matches)")
	show := fs.Int("show", 10, "with --sample: how many failing lines and events to show")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
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
	if len(errs) > 0 {
		return usageError{errors.Join(errs...)}
	}
	fmt.Fprint(stdout, cfg.Summary())
	fmt.Fprintln(stdout, "configuration is valid")
	if *sample == "" {
		return nil
	}
	name, err := sourceFor(cfg, *sourceName, *sample)
	if err != nil {
		return err
	}
	return trySample(stdout, name, parsers[name], *sample, *show)
}

// trySample parses every line of a sample file and tells which lines the
// format reads, which it ignores, and why the others fail, so a person
// can fix a configuration without reading code. It fails when a line is
// malformed or no line yields an event.
func trySample(w io.Writer, source string, p ingest.Parser, path string, show int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = bufio.NewReaderSize(f, 1<<16)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	var (
		lines, ignored, malformed, events int
		offset                            int64
		byKind                            = map[string]int{}
		byReason                          = map[string]int{}
		failures, examples                []string
		evs                               []ingest.Event
	)
	for sc.Scan() {
		lines++
		text := sc.Bytes()
		offset += int64(len(text)) + 1
		evs, err = p.Parse(text, ingest.Position{Source: source, Path: path, Offset: offset, Line: int64(lines)}, evs[:0])
		skip, pe := ingest.Outcome(err)
		if pe != nil {
			malformed++
			reason := pe.Reason
			if reason == "" {
				reason = ingest.ReasonBadFormat
			}
			byReason[reason]++
			if len(failures) < show {
				failures = append(failures, fmt.Sprintf("  %v\n      %s", err, clip(text, 160)))
			}
			continue
		}
		if skip != "" || len(evs) == 0 {
			ignored++
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
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	fmt.Fprintf(w, "\nsample %s as source %s: %d lines: %d parsed into %d events (%s), %d ignored, %d malformed\n",
		path, source, lines, lines-ignored-malformed, events, counts(byKind), ignored, malformed)
	if malformed > 0 {
		fmt.Fprintf(w, "malformed by reason: %s\nfirst failing lines:\n%s\n", counts(byReason), strings.Join(failures, "\n"))
	}
	if len(examples) > 0 {
		fmt.Fprintf(w, "first events:\n%s\n", strings.Join(examples, "\n"))
	}
	switch {
	case malformed > 0:
		return fmt.Errorf("%d of %d lines of %s are malformed for format of source %s", malformed, lines, path, source)
	case events == 0:
		return fmt.Errorf("no line of %s yields an event for source %s; is it the right format?", path, source)
	}
	return nil
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
			fmt.Fprintf(&b, " %s=%s", k, v)
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

// versionInfo describes the running binary.
type versionInfo struct {
	Version  string
	Go       string
	Revision string
}

// version is stamped at build time by the packages:
// go build -ldflags "-X main.version=1.2.3". It wins over the module
// version Go records.
var version string

func readVersion() versionInfo {
	v := versionInfo{Version: "devel", Go: runtime.Version(), Revision: "unknown"}
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
