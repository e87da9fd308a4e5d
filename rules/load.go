package rules

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v3"
)

// Defaults applied by Load to settings the file leaves out.
const (
	DefaultListen         = "127.0.0.1:9464"
	DefaultControlSocket  = "/run/scopewatch/control.sock"
	DefaultMaxEvents      = 50_000
	DefaultMaxClients     = 20_000
	DefaultMaxDelay       = Duration(250 * time.Millisecond)
	DefaultWindow         = Duration(90 * day)
	DefaultMinObservation = Duration(30 * day)
	DefaultRotateWait     = Duration(5 * time.Second)
	DefaultTimeZone       = "UTC"

	DefaultCoverageGap     = Duration(12 * time.Hour)
	DefaultStaleAfter      = Duration(24 * time.Hour)
	DefaultSweepEvery      = Duration(time.Hour)
	DefaultResolveAfter    = Duration(7 * day)
	DefaultRetention       = Duration(90 * day)
	DefaultClientRetention = Duration(180 * day)
	DefaultSprayDistinct   = 100
	DefaultSprayWindow     = Duration(10 * time.Minute)
	DefaultMaxScopes       = 15
	DefaultLearningPeriod  = Duration(14 * day)
	DefaultMinEvents       = 50
	DefaultProbeDenials    = 5
	DefaultProbeWindow     = Duration(10 * time.Minute)
	DefaultBurstRequests   = 100
	DefaultTravelSpeedKmh  = 805
	DefaultBurstWindow     = Duration(5 * time.Minute)
	DefaultBurstNewFor     = Duration(24 * time.Hour)
	DefaultGeoCheckEvery   = Duration(time.Minute)
)

// DefaultMaxLineBytes is a source's max_line_bytes when the file leaves
// it out, and MaxMaxLineBytes the largest it may be: a source holds
// buffers of one to two times it for each file it reads.
const (
	DefaultMaxLineBytes = 1 << 20
	MaxMaxLineBytes     = 16 << 20
)

// DefaultBroadPatterns are the broad_request patterns used when the
// configuration names none.
func DefaultBroadPatterns() []string {
	return []string{"admin", "*:admin", "*.admin", "read_all_data", "write_all_data"}
}

// DefaultProbeReasons are the refusal reasons probing counts when the
// configuration names none.
func DefaultProbeReasons() []string {
	return []string{"invalid_scope", "access_denied", "unauthorized_client", "invalid_client"}
}

// Formats is what Load must be told of the log formats: which names a
// source's format may take, and what each format asks of a source. The
// table of formats lives with the parsers (ingest.Formats), which import
// this package; Load keeps of a source's format only its name and where
// the file gives it, so that a problem still names file, line and field.
type Formats interface {
	// Names returns every name a source's format may take, sorted.
	Names() []string
	// Configure applies the defaults of s's format, one of Names, to s
	// and reports through bad each setting the format lacks or refuses:
	// field is the dotted path below the source (fields.time), msg says
	// what is wrong.
	Configure(s *Source, bad func(field, msg string))
}

// TimeFormats returns the named time formats a json source's time_format
// may take; any other value must be a Go reference layout.
func TimeFormats() []string {
	return []string{"rfc3339", "epoch_s", "epoch_ms", "epoch_us", "epoch_ns", "nginx"}
}

// EventKinds returns the event kinds a source's kind and kinds may name.
func EventKinds() []string {
	return []string{"use", "grant", "deny"}
}

// Load reads the configuration file at path, applies defaults, resolves
// relative paths against the file's directory, checks every setting and
// loads the rules file it names into Config.Rules. A configuration without
// a rules file gets empty Rules with the default identity scopes. formats
// says which log formats there are and what each asks of a source.
//
// Problems in the files are returned all at once, joined with errors.Join,
// each a *ConfigError naming file, line and field; a file that cannot be
// read at all is a plain wrapped error.
func Load(path string, formats Formats) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("resolve directory of config %s: %w", path, err)
	}
	c := &Config{File: path}
	lines, p, ok := decodeFile(path, data, c)
	if !ok {
		return nil, joinProblems(p.list)
	}
	c.resolvePaths(dir)
	c.check(lines, p, formats)

	var rulesProblems []*ConfigError
	switch {
	case c.RulesAt == "":
		c.Rules = &Rules{IdentityScopes: DefaultIdentityScopes()}
		if err := c.Rules.Compile(); err != nil {
			return nil, err // cannot happen: there is nothing to compile
		}
	default:
		r, rp, err := loadRules(c.RulesAt)
		if err != nil {
			p.add(lineOf(lines, "rules"), "rules", "cannot read the rules file: %v", err)
			break
		}
		r.checkRouteSources(c.Sources, rp)
		rulesProblems = rp.list
		c.Rules = r
	}
	if err := joinProblems(p.list, rulesProblems); err != nil {
		return nil, err
	}
	return c, nil
}

// resolvePaths makes every relative path absolute against dir and fills
// in the default globs.
func (c *Config) resolvePaths(dir string) {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	c.Store = abs(c.Store)
	c.RulesAt = abs(c.RulesAt)
	c.WebConfig = abs(c.WebConfig)
	c.ControlSocket = abs(c.ControlSocket)
	c.Privacy.KeyFile = abs(c.Privacy.KeyFile)
	c.GeoIP.City = abs(c.GeoIP.City)
	c.GeoIP.Country = abs(c.GeoIP.Country)
	c.GeoIP.ASN = abs(c.GeoIP.ASN)
	c.Alert.Report.Dir = abs(c.Alert.Report.Dir)
	c.Alert.Slack.TokenFile = abs(c.Alert.Slack.TokenFile)
	c.Alert.Slack.WebhookURLFile = abs(c.Alert.Slack.WebhookURLFile)
	for i := range c.Sources {
		s := &c.Sources[i]
		s.Path = abs(s.Path)
		s.Glob = abs(s.Glob)
		if s.Kafka != nil {
			s.Kafka.absPaths(abs)
		}
		if s.Glob == "" && s.Path != "" {
			s.Glob = s.Path + ".*"
		}
	}
}

// check applies defaults and records every problem of the configuration
// proper (not of its rules file) in p.
func (c *Config) check(lines map[string]int, p *problems, formats Formats) {
	if c.Store == "" {
		p.add(lineOf(lines, "store"), "store", "required: the path of the state database, e.g. /var/lib/scopewatch/scopewatch.db")
	}

	listenOK := true
	if c.Listen == "" {
		c.Listen = DefaultListen
	} else if msg := checkListen(c.Listen); msg != "" {
		p.add(lineOf(lines, "listen"), "listen", "%s", msg)
		listenOK = false
	}
	webOK := true
	if c.WebConfig != "" {
		if _, err := os.Stat(c.WebConfig); err != nil {
			p.add(lineOf(lines, "web_config"), "web_config", "cannot read the web config file: %v", err)
			webOK = false
		} else if err := web.Validate(c.WebConfig); err != nil {
			// exporter-toolkit's own check, so that the daemon starts with
			// exactly the files its server will accept.
			p.add(lineOf(lines, "web_config"), "web_config", "invalid web config %s: %v", c.WebConfig, err)
			webOK = false
		} else if ws, err := ReadWebConfig(c.WebConfig); err != nil {
			p.add(lineOf(lines, "web_config"), "web_config", "%v", err)
			webOK = false
		} else {
			c.WebTLS, c.WebUsers = ws.TLS, ws.Users
		}
	}
	if listenOK && webOK && !c.ListenInsecure && !LoopbackListen(c.Listen) && (!c.WebTLS || len(c.WebUsers) == 0) {
		var missing string
		switch {
		case !c.WebTLS && len(c.WebUsers) == 0:
			missing = "TLS and basic auth"
		case !c.WebTLS:
			missing = "TLS"
		default:
			missing = "basic auth"
		}
		p.add(lineOf(lines, "listen"), "listen", "listen %s exposes the API without %s: configure web_config, or set listen_insecure: true to accept it", c.Listen, missing)
	}
	c.checkCluster(lines, p)
	if c.ControlSocket == "" {
		c.ControlSocket = DefaultControlSocket
	} else if len(c.ControlSocket) > maxSocketPath {
		p.add(lineOf(lines, "control_socket"), "control_socket", "path of %d bytes is too long for a unix socket (at most %d): choose a shorter one", len(c.ControlSocket), maxSocketPath)
	}

	if _, set := lines["batch.max_events"]; !set {
		c.Batch.MaxEvents = DefaultMaxEvents
	} else if c.Batch.MaxEvents < 1 {
		p.add(lines["batch.max_events"], "batch.max_events", "must be at least 1, got %d; leave it out for the default %d", c.Batch.MaxEvents, DefaultMaxEvents)
	}
	if _, set := lines["batch.max_clients"]; !set {
		c.Batch.MaxClients = DefaultMaxClients
	} else if c.Batch.MaxClients < 1 {
		p.add(lines["batch.max_clients"], "batch.max_clients", "must be at least 1, got %d; leave it out for the default %d", c.Batch.MaxClients, DefaultMaxClients)
	}
	if m := c.Batch.MemoryLimit; m.Bytes != 0 && m.Bytes < MinMemoryLimit {
		least := MemoryLimit{Bytes: MinMemoryLimit}
		p.add(lines["batch.memory_limit"], "batch.memory_limit", "%s is below the least limit of %s, where the collector would run all the time; set %s or more, none, or leave it out for auto", m, least, least)
	}
	positive(lines, p, "batch.max_delay", &c.Batch.MaxDelay, DefaultMaxDelay)
	positive(lines, p, "detect.unused_scope.window", &c.Detect.UnusedScope.Window, DefaultWindow)
	positive(lines, p, "detect.unused_scope.min_observation", &c.Detect.UnusedScope.MinObservation, DefaultMinObservation)

	switch {
	case c.Privacy.KeyFile != "":
		key, ok := c.readSecret(lines, p, "privacy.key_file", c.Privacy.KeyFile, "cannot read the key file: %v")
		switch {
		case !ok:
		case len(strings.TrimSpace(string(key))) == 0:
			p.add(lineOf(lines, "privacy.key_file"), "privacy.key_file", "key file %s is empty", c.Privacy.KeyFile)
		default:
			c.Privacy.Key = []byte(strings.TrimSpace(string(key)))
		}
	case c.Privacy.PseudonymiseSubjects:
		p.add(lineOf(lines, "privacy.pseudonymise_subjects"), "privacy.pseudonymise_subjects",
			"needs privacy.key_file, a file holding the secret HMAC key for pseudonyms")
	}

	c.checkLog(lines, p)
	c.checkDetect(lines, p)
	c.checkGeoIP(lines, p)
	c.checkAlert(lines, p)

	if len(c.Sources) == 0 {
		p.add(lineOf(lines, "sources"), "sources", "at least one source is required, e.g. {name: keycloak, path: /var/log/keycloak/keycloak.log, format: keycloak}")
	}
	names := map[string]int{} // name → index of its first source
	for i := range c.Sources {
		c.checkSource(i, lines, p, names, formats)
	}
	c.checkKafkaGroups(lines, p)
}

// readSecret reads the file of a secret (the pseudonym key, a Slack token
// or webhook URL), named by field, and judges its mode. A file that its
// group or everyone may write is refused: whoever can write it can replace
// the key, or send the findings elsewhere. One they may read is accepted
// with a warning, unless this process reads it through its group (not
// its owner, a member of its group: root:scopewatch 0640 read by the
// daemon, as the package installs the key). cannotRead formats the error
// of a file that cannot be read. ok is false when the file was refused.
func (c *Config) readSecret(lines map[string]int, p *problems, field, path, cannotRead string) (data []byte, ok bool) {
	line := lineOf(lines, field)
	f, err := os.Open(path)
	if err != nil {
		p.add(line, field, cannotRead, err)
		return nil, false
	}
	defer f.Close()
	// The mode of the file read, not of a path that may change meanwhile.
	fi, err := f.Stat()
	if err != nil {
		p.add(line, field, cannotRead, err)
		return nil, false
	}
	mode := fi.Mode().Perm()
	uid, gid := -1, -1
	if st, isUnix := fi.Sys().(*syscall.Stat_t); isUnix {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	who := func(groupBit, otherBit fs.FileMode) string {
		var parts []string
		if mode&groupBit != 0 {
			parts = append(parts, "its group "+groupName(gid))
		}
		if mode&otherBit != 0 {
			parts = append(parts, "everyone")
		}
		return strings.Join(parts, " and ")
	}
	if mode&0o022 != 0 {
		p.add(line, field, "%s is writable by %s (mode %04o): whoever can write it can replace the secret; chmod go-w %s",
			path, who(0o020, 0o002), mode, path)
		return nil, false
	}
	if mode&0o044 != 0 {
		viaGroup := mode&0o004 == 0 && uid >= 0 && os.Geteuid() != uid && inGroup(gid)
		if !viaGroup {
			fix := "chmod go-r " + path
			if mode&0o004 == 0 {
				fix = "chmod g-r " + path + ", or give the file to the group scopewatch runs as (root:scopewatch 0640)"
			} else if mode&0o040 != 0 {
				fix = "chmod o-r " + path + " (and g-r unless only scopewatch's group may read it)"
			}
			c.Warnings = append(c.Warnings, &ConfigError{File: c.File, Line: line, Field: field,
				Msg: fmt.Sprintf("%s is readable by %s (mode %04o), and it holds a secret; %s", path, who(0o040, 0o004), mode, fix)})
		}
	}
	data, err = io.ReadAll(f)
	if err != nil {
		p.add(line, field, cannotRead, err)
		return nil, false
	}
	return data, true
}

// groupName names the group gid, or its number when it has no name.
func groupName(gid int) string {
	if gid < 0 {
		return "(unknown)"
	}
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

// inGroup reports whether this process is a member of the group gid.
func inGroup(gid int) bool {
	if gid < 0 {
		return false
	}
	if os.Getegid() == gid {
		return true
	}
	groups, _ := os.Getgroups()
	return slices.Contains(groups, gid)
}

// checkLog applies the defaults of the log section.
func (c *Config) checkLog(lines map[string]int, p *problems) {
	switch c.Log.Level {
	case "":
		c.Log.Level = "info"
	case "debug", "info", "warn", "error":
	default:
		p.add(lineOf(lines, "log.level", "log"), "log.level", "unknown level %q: use debug, info, warn or error", c.Log.Level)
	}
	switch c.Log.Format {
	case "":
		c.Log.Format = "text"
	case "text", "json":
	default:
		p.add(lineOf(lines, "log.format", "log"), "log.format", "unknown format %q: use text or json", c.Log.Format)
	}
}

// positive applies the default to an absent duration and refuses an
// explicit zero.
func positive(lines map[string]int, p *problems, field string, d *Duration, def Duration) {
	line, set := lines[field]
	switch {
	case !set:
		*d = def
	case *d == 0:
		p.add(line, field, "must be more than 0; leave it out for the default %s", def)
	}
}

func (c *Config) checkSource(i int, lines map[string]int, p *problems, names map[string]int, formats Formats) {
	s := &c.Sources[i]
	at := joinIndex("sources", i)
	f := func(name string) (int, string) {
		fp := joinField(at, name)
		return lineOf(lines, fp, at), fp
	}

	if s.Name == "" {
		p.add(lineOf(lines, at+".name", at), at+".name", "required: a short name for the source, used in metrics and findings")
	} else if msg := checkName(s.Name); msg != "" {
		line, fp := f("name")
		p.add(line, fp, "%s", msg)
	} else if first, dup := names[s.Name]; dup {
		line, fp := f("name")
		p.add(line, fp, "duplicate source name %q (also sources[%d], line %d); source names must be unique",
			s.Name, first, lineOf(lines, joinIndex("sources", first)+".name"))
	} else {
		names[s.Name] = i
	}

	switch {
	case s.Kafka != nil && s.Path != "":
		line, fp := f("kafka")
		p.add(line, fp, "a source reads a file (path) or Kafka topics (kafka), not both: make two sources")
	case s.Kafka != nil:
		c.checkKafka(s.Kafka, at, lines, p)
	case s.Path == "":
		line, fp := f("path")
		p.add(line, fp, "required: the log file to read (or kafka: the topics to read)")
	}
	if s.Path != "" {
		if msg := checkLogPath(s.Path); msg != "" {
			line, fp := f("path")
			p.add(line, fp, "%s", msg)
		}
	}
	if s.Glob != "" {
		if _, err := filepath.Match(s.Glob, ""); err != nil {
			line, fp := f("glob")
			p.add(line, fp, "bad glob pattern %q: %v", s.Glob, err)
		}
	}

	known := formats.Names()
	switch {
	case s.Format == "":
		line, fp := f("format")
		p.add(line, fp, "required; known formats: %s", strings.Join(known, ", "))
	case !slices.Contains(known, s.Format):
		line, fp := f("format")
		p.add(line, fp, "unknown format %q; known formats: %s", s.Format, strings.Join(known, ", "))
	}

	if _, set := lines[at+".rotate_wait"]; !set {
		s.RotateWait = DefaultRotateWait
	}
	if _, set := lines[at+".max_line_bytes"]; !set {
		s.MaxLineBytes = DefaultMaxLineBytes
	} else if s.MaxLineBytes <= 0 || s.MaxLineBytes > MaxMaxLineBytes {
		line, fp := f("max_line_bytes")
		p.add(line, fp, "must be from 1 to %d (16 MiB) bytes, got %d; leave it out for the default %d (1 MiB)",
			MaxMaxLineBytes, s.MaxLineBytes, DefaultMaxLineBytes)
	}

	if slices.Contains(known, s.Format) {
		formats.Configure(s, func(field, msg string) {
			fp := joinField(at, field)
			p.add(lineOf(lines, withParents(fp, at)...), fp, "%s", msg)
		})
	}
	for _, f := range s.Fields.all() {
		if f.path != "" && slices.Contains(strings.Split(f.path, "."), "") {
			fp := at + ".fields." + f.name
			p.add(lineOf(lines, fp, at+".fields", at), fp, "bad path %q: an empty key between dots", f.path)
		}
	}
	if s.TimeFormat != "" && !validTimeFormat(s.TimeFormat) {
		line, fp := f("time_format")
		p.add(line, fp, "unknown time_format %q; use %s, or a Go layout with month, day, hour and minute such as 2006-01-02T15:04:05.000Z07:00",
			s.TimeFormat, strings.Join(TimeFormats(), ", "))
	}
	if s.Kind != "" && !slices.Contains(EventKinds(), s.Kind) {
		line, fp := f("kind")
		p.add(line, fp, "unknown kind %q; use %s", s.Kind, strings.Join(EventKinds(), ", "))
	}
	for _, v := range slices.Sorted(maps.Keys(s.Kinds)) {
		if k := s.Kinds[v]; !slices.Contains(EventKinds(), k) {
			fp := joinKey(at+".kinds", v)
			p.add(lineOf(lines, fp, at+".kinds", at), fp, "unknown kind %q; use %s", k, strings.Join(EventKinds(), ", "))
		}
	}
	if len(s.Kinds) > 0 && s.Fields.Kind == "" {
		line, fp := f("kinds")
		p.add(line, fp, "needs fields.kind, the field whose values kinds maps")
	}

	s.Trusted = s.Trusted[:0]
	for j, tp := range s.TrustedProxies {
		pfx, err := netip.ParsePrefix(tp)
		if err != nil {
			if a, aerr := netip.ParseAddr(tp); aerr == nil {
				pfx, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			fp := joinIndex(at+".trusted_proxies", j)
			p.add(lineOf(lines, fp, at+".trusted_proxies", at), fp, "bad address or CIDR range %q, e.g. 10.0.0.0/8 or 2001:db8::/32", tp)
			continue
		}
		s.Trusted = append(s.Trusted, pfx.Masked())
	}
	if s.FHIRBase != "" && !strings.HasPrefix(s.FHIRBase, "/") {
		line, fp := f("fhir_base")
		p.add(line, fp, "must be a path starting with /, e.g. /fhir")
	}

	if s.TimeZone == "" {
		s.TimeZone = DefaultTimeZone
	}
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil {
		line, fp := f("timezone")
		p.add(line, fp, "unknown time zone %q; use an IANA name such as UTC or Europe/Berlin", s.TimeZone)
	}
	s.Location = loc
}

// all returns every field of f with its YAML name.
func (f JSONFields) all() []struct{ name, path string } {
	return []struct{ name, path string }{
		{"time", f.Time}, {"client", f.Client}, {"scopes", f.Scopes}, {"requested", f.Requested},
		{"subject", f.Subject}, {"ip", f.IP}, {"method", f.Method}, {"path", f.Path},
		{"status", f.Status}, {"kind", f.Kind}, {"reason", f.Reason}, {"country", f.Country},
	}
}

// checkName says what is wrong with a source name, or "" when nothing is.
func checkName(name string) string {
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Sprintf("source name %q may hold only letters, digits, '-', '_' and '.'", name)
		}
	}
	return ""
}

// maxSocketPath is the longest path a unix socket may have (sun_path of
// Linux's sockaddr_un, less its final NUL).
const maxSocketPath = 107

// LoopbackListen reports whether a listen address is on loopback only:
// localhost or a loopback IP. An empty host listens on every interface.
func LoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// WebSecurity is what a web config file turns on.
type WebSecurity struct {
	TLS   bool     // tls_server_config names a certificate
	Users []string // the basic_auth_users, sorted
}

// ReadWebConfig reads what the exporter-toolkit web config file at path
// turns on. It does not validate the file: web.Validate does.
func ReadWebConfig(path string) (WebSecurity, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return WebSecurity{}, fmt.Errorf("cannot read the web config file: %v", err)
	}
	var f struct {
		TLS   map[string]any    `yaml:"tls_server_config"`
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		return WebSecurity{}, fmt.Errorf("invalid web config %s: %v", path, err)
	}
	ws := WebSecurity{TLS: f.TLS["cert_file"] != nil || f.TLS["cert"] != nil}
	for u := range f.Users {
		ws.Users = append(ws.Users, u)
	}
	slices.Sort(ws.Users)
	return ws, nil
}

// checkCluster checks the peers of the cluster section: addresses,
// each named once, none of them this instance's own.
func (c *Config) checkCluster(lines map[string]int, p *problems) {
	seen := map[string]bool{}
	for i, peer := range c.Cluster.Peers {
		at := fmt.Sprintf("cluster.peers[%d]", i)
		line := lineOf(lines, at, "cluster.peers", "cluster")
		switch host, _, _ := net.SplitHostPort(peer); {
		case checkListen(peer) != "" || host == "" || strings.HasSuffix(peer, ":0"):
			p.add(line, at, "peer %q: want a host and a port another instance listens on, e.g. scopewatch-b:9464", peer)
		case peer == c.Listen:
			p.add(line, at, "peer %q is this instance's own listen address: list only the other instances", peer)
		case seen[peer]:
			p.add(line, at, "peer %q is listed twice", peer)
		}
		seen[peer] = true
	}
}

// checkListen says what is wrong with a listen address, or "" when
// nothing is.
func checkListen(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("bad address %q: want host:port, e.g. %s", addr, DefaultListen)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("bad port %q in %q: want a number from 0 to 65535", port, addr)
	}
	return ""
}

// checkLogPath says what is wrong with the path of a log file, or "" when
// nothing is. The file itself need not exist yet (the daemon waits for
// it), but its directory must exist and be readable.
func checkLogPath(path string) string {
	dir := filepath.Dir(path)
	d, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Sprintf("no such directory: %s", dir)
		}
		return fmt.Sprintf("cannot read directory: %v", err)
	}
	defer d.Close()
	if fi, err := d.Stat(); err == nil && !fi.IsDir() {
		return fmt.Sprintf("not a directory: %s", dir)
	}
	if _, err := d.Readdirnames(1); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("cannot read directory: %v", err)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ""
	case err != nil:
		return fmt.Sprintf("cannot read: %v", err)
	case fi.IsDir():
		return fmt.Sprintf("names a directory, not a log file: %s", path)
	}
	return ""
}

// validTimeFormat reports whether f is a named time format or a Go layout
// that carries at least month, day, hour and minute: a year may be
// missing (syslog), but a string that merely holds a layout element by
// accident ("iso8601" has "01", a month) must not pass.
func validTimeFormat(f string) bool {
	if slices.Contains(TimeFormats(), f) {
		return true
	}
	// Any time but the reference time itself, which formats as its layout.
	sample := time.Date(2031, time.November, 23, 21, 47, 39, 0, time.UTC)
	got, err := time.Parse(f, sample.Format(f))
	return err == nil && got.Month() == sample.Month() && got.Day() == sample.Day() &&
		got.Hour() == sample.Hour() && got.Minute() == sample.Minute()
}

// withParents returns the dotted field path and each of its parents up to
// top, nearest first: sources[0].fields.time, sources[0].fields,
// sources[0] for top sources[0]. Its lines are where a problem with the
// field is reported, the first present in the file (lineOf).
func withParents(field, top string) []string {
	out := []string{field}
	for field != top {
		i := strings.LastIndexByte(field, '.')
		if i < len(top) {
			break
		}
		field = field[:i]
		out = append(out, field)
	}
	return out
}

// lineOf returns the line of the first of the field paths present in the
// file, else the line of the document's first key, else 1.
func lineOf(lines map[string]int, fields ...string) int {
	for _, f := range fields {
		if l, ok := lines[f]; ok {
			return l
		}
	}
	if l, ok := lines[""]; ok {
		return l
	}
	return 1
}
