package rules

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// Summary describes what the daemon would do with c, for people checking
// a configuration: the store, the listen address, the rules file with its
// counts and, for each source, its name, format, path, whether the path
// exists now, its glob and how many rotated files match it now. Summary
// looks at the file system each time it is called.
func (c *Config) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config   %s\n", c.File)
	fmt.Fprintf(&b, "store    %s\n", c.Store)
	fmt.Fprintf(&b, "listen   %s\n", c.Listen)
	fmt.Fprintf(&b, "log      %s, %s\n", c.Log.Level, c.Log.Format)
	rulesAt := c.RulesAt
	if rulesAt == "" {
		rulesAt = "(none)"
	}
	var r Rules
	if c.Rules != nil {
		r = *c.Rules
	}
	fmt.Fprintf(&b, "rules    %s: %s, %s, %s, %s\n", rulesAt,
		count(len(r.Scopes), "scope"), count(len(r.Roles), "role"),
		count(len(r.Clients), "client"), count(len(r.Routes), "route"))
	geo := "none (countries only from logs that carry them)"
	if c.GeoIP.Enabled() {
		var dbs []string
		if db := c.GeoIP.CountryDB(); db != "" {
			dbs = append(dbs, db)
		}
		if c.GeoIP.ASN != "" {
			dbs = append(dbs, c.GeoIP.ASN)
		}
		geo = strings.Join(dbs, ", ")
	}
	fmt.Fprintf(&b, "geoip    %s\n", geo)
	d := c.Detect
	fmt.Fprintf(&b, "detect   unused after %s (clients observed %s); baselines %s and %d events; %s\n",
		d.UnusedScope.Window, d.UnusedScope.MinObservation, d.UnfamiliarGeo.LearningPeriod, d.UnfamiliarGeo.MinEvents,
		count(len(d.Silences), "silence"))
	fmt.Fprintf(&b, "alert    %s\n", c.Alert.describe())
	if len(c.Cluster.Peers) > 0 {
		fmt.Fprintf(&b, "cluster  reports merge this instance with %s\n", strings.Join(c.Cluster.Peers, ", "))
	}
	fmt.Fprintf(&b, "sources  %d\n", len(c.Sources))

	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  NAME\tFORMAT\tPATH\tNOW\tGLOB\tROTATED")
	for _, s := range c.Sources {
		if k := s.Kafka; k != nil {
			topics := strings.Join(k.Topics, ",")
			if r := k.Repartition; r != nil {
				topics += " -> " + r.Topic // keyed by client there
			}
			if k.Changelog != "" {
				topics += " (state in " + k.Changelog + ")"
			}
			fmt.Fprintf(w, "  %s\t%s\tkafka:%s\tgroup %s\t-\t-\n", s.Name, s.Format, topics, k.Group)
			continue
		}
		rotated := "-"
		if m, err := filepath.Glob(s.Glob); err == nil {
			rotated = fmt.Sprint(len(m))
		}
		fmt.Fprintf(w, "  %s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Format, s.Path, pathState(s.Path), s.Glob, rotated)
	}
	w.Flush()
	return b.String()
}

// pathState says in a word or two whether a log file can be read now.
func pathState(path string) string {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "missing (waits for it)"
	case err != nil:
		return "error: " + err.Error()
	case !fi.Mode().IsRegular():
		return "exists, not a regular file" // opening a FIFO to try it would block
	}
	f, err := os.Open(path)
	if err != nil {
		return "unreadable"
	}
	f.Close()
	return "exists"
}

func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
