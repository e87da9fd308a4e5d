package rules

import (
	"net/netip"
	"time"
)

// Config is the daemon configuration, loaded from one YAML file. Every
// relative path in it is resolved against the directory of that file.
type Config struct {
	File    string   `yaml:"-"`       // path the config was loaded from
	Store   string   `yaml:"store"`   // bbolt file
	Listen  string   `yaml:"listen"`  // HTTP address for /metrics, /healthz, /readyz, /api/v1; default 127.0.0.1:9464
	RulesAt string   `yaml:"rules"`   // path of the rules file
	Privacy Privacy  `yaml:"privacy"` // what to hide
	Batch   Batch    `yaml:"batch"`   // store batching
	Sources []Source `yaml:"sources"`
	Detect  Detect   `yaml:"detect"`
	GeoIP   GeoIP    `yaml:"geoip"` // MaxMind-format databases for unfamiliar_geo
	Alert   Alert    `yaml:"alert"` // scheduled reports
	Log     Log      `yaml:"log"`   // the daemon's own log
	Cluster Cluster  `yaml:"cluster"`

	// WebConfig is an exporter-toolkit web configuration file that turns on
	// TLS and basic auth for every HTTP endpoint; empty serves plain HTTP.
	WebConfig string `yaml:"web_config"`
	// ListenInsecure accepts a listen address off loopback without TLS
	// and basic auth in WebConfig, which Load otherwise refuses. The API
	// still refuses store reads and changes there without credentials.
	ListenInsecure bool `yaml:"listen_insecure"`
	// ControlSocket is the unix socket the daemon also serves the API on,
	// to root, its own user and the members of the socket's group;
	// default DefaultControlSocket.
	ControlSocket string `yaml:"control_socket"`
	// WebTLS and WebUsers are what WebConfig turns on, read by Load: TLS,
	// and the basic auth user names.
	WebTLS   bool     `yaml:"-"`
	WebUsers []string `yaml:"-"`

	// Rules is the parsed rules file named by RulesAt.
	Rules *Rules `yaml:"-"`

	// Warnings are problems Load found that do not refuse the
	// configuration (a secret file others may read), each naming file,
	// line and field: validate prints them and the daemon logs them.
	Warnings []*ConfigError `yaml:"-"`
}

// Log configures the daemon's own log on stderr (journald under systemd).
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn or error
	Format string `yaml:"format"` // text (default) or json
}

// Privacy controls what identifying data is kept.
type Privacy struct {
	PseudonymiseSubjects bool   `yaml:"pseudonymise_subjects"`
	KeyFile              string `yaml:"key_file"` // HMAC key for pseudonyms; required when pseudonymising
	// Key is the content of KeyFile, read by Load (surrounding white space
	// removed); nil when no key file is configured.
	Key []byte `yaml:"-"`
}

// GeoIP names the MaxMind-format databases used to place addresses. Either
// a City or a Country database gives the country; an ASN database adds the
// network owner. Both are optional: without them, the country a log line
// carries itself (Okta, Auth0, Entra) is used.
type GeoIP struct {
	City    string `yaml:"city"`    // GeoIP2/GeoLite2 City database
	Country string `yaml:"country"` // GeoIP2/GeoLite2 Country database (instead of City)
	ASN     string `yaml:"asn"`     // GeoLite2/GeoIP2 ASN database
	// CheckEvery is how often the files are checked for a new version,
	// which is then loaded without interrupting lookups; default 1m.
	CheckEvery Duration `yaml:"check_every"`
}

// CountryDB returns the configured database that gives countries: City
// when set, else Country.
func (g GeoIP) CountryDB() string {
	if g.City != "" {
		return g.City
	}
	return g.Country
}

// CountryKey names the setting CountryDB comes from, "city" or
// "country", for messages about that file.
func (g GeoIP) CountryKey() string {
	if g.City != "" {
		return "city"
	}
	return "country"
}

// Enabled reports whether any database is configured.
func (g GeoIP) Enabled() bool { return g.CountryDB() != "" || g.ASN != "" }

// Batch bounds one store transaction (a checkpoint of the clients' usage,
// which is held in memory) and the memory it is held in.
type Batch struct {
	MaxEvents int      `yaml:"max_events"` // lines or events per transaction; default 50,000 (a backlog's may hold more: README)
	MaxDelay  Duration `yaml:"max_delay"`  // from a line read to its transaction; default 250ms
	// MaxClients bounds the clients held in memory once durable; the
	// least recently active beyond it are evicted and read back from the
	// store on demand. Default 20,000.
	MaxClients int `yaml:"max_clients"`
	// MemoryLimit is the soft limit of the daemon's memory; default
	// auto, from its cgroup (MemoryLimit).
	MemoryLimit MemoryLimit `yaml:"memory_limit"`
}

// Source is one log to read.
type Source struct {
	Name   string `yaml:"name"`
	Path   string `yaml:"path"`   // the live file; or Kafka
	Kafka  *Kafka `yaml:"kafka"`  // topics to read instead of a file
	Glob   string `yaml:"glob"`   // rotated siblings to finish after a restart; default Path + ".*"
	Format string `yaml:"format"` // one of the Formats Load is given: keycloak, okta, auth0, entra, json, nginx, envoy, ...
	Poll   bool   `yaml:"poll"`   // poll for changes instead of inotify (network file systems)
	// Wrapper says what deployments put around each line (docker, cri,
	// compose, syslog, journald): auto (default) finds it line by line,
	// none reads lines as the format alone; see the README's Formats.
	Wrapper string `yaml:"wrapper"`
	// RotateWait is how long a rotated file keeps being read after the live
	// path has moved on, for writers that append until signalled; default 5s.
	RotateWait Duration `yaml:"rotate_wait"`
	// MaxLineBytes is the longest line read, in bytes before its newline
	// (a carriage return included); default 1 MiB. A longer line is
	// counted malformed (reason too_long) at its offset, and reading goes
	// on at the next line. It applies to the live tail, rotated files,
	// scan and validate --sample alike.
	MaxLineBytes int `yaml:"max_line_bytes"`

	// Fields maps event fields to JSON paths (format json); see JSONFields.
	Fields JSONFields `yaml:"fields"`
	// TimeFormat says how the time field is written (format json):
	// rfc3339 (default), epoch_s, epoch_ms, epoch_us, epoch_ns, nginx
	// (02/Jan/2006:15:04:05 -0700), or a Go reference layout.
	TimeFormat string `yaml:"time_format"`
	// Kind is the event kind of every line when Fields.Kind is empty: use
	// (default), grant or deny (format json).
	Kind string `yaml:"kind"`
	// Kinds maps values of the Fields.Kind field to event kinds (format json).
	Kinds map[string]string `yaml:"kinds"`
	// TimeZone names the zone of timestamps written without one (the
	// jboss-logging text prefix); default UTC.
	TimeZone string `yaml:"timezone"`

	// TrustedProxies are the addresses and CIDR ranges of proxies in front
	// of the logging server: the client IP is the right-most address of
	// X-Forwarded-For that is not one of them (so a client cannot forge
	// its address by sending its own header). Empty: private, loopback
	// and link-local addresses are taken for proxies. Parsed into Trusted.
	TrustedProxies []string       `yaml:"trusted_proxies"`
	Trusted        []netip.Prefix `yaml:"-"`
	// Template is the log template of a templated format: HAPI FHIR's
	// LoggingInterceptor message format (format hapi-fhir).
	Template string `yaml:"template"`
	// FHIRBase is the path prefix of the FHIR API (e.g. /fhir) for mapping
	// REST calls to SMART-on-FHIR scopes; empty when the source serves no
	// FHIR API.
	FHIRBase string `yaml:"fhir_base"`
	// Location is TimeZone loaded by Load.
	Location *time.Location `yaml:"-"`

	Line int `yaml:"-"` // line of the source's entry in the config file
}

// JSONFields are dotted paths into a JSON object (a.b.c descends into
// nested objects). Empty paths are not read.
type JSONFields struct {
	Time      string `yaml:"time"`
	Client    string `yaml:"client"`
	Scopes    string `yaml:"scopes"`    // granted scopes: space-separated string or array
	Requested string `yaml:"requested"` // requested scopes, when logged apart from granted
	Subject   string `yaml:"subject"`
	IP        string `yaml:"ip"`
	Method    string `yaml:"method"`
	Path      string `yaml:"path"` // may include a query string, which is split off
	Status    string `yaml:"status"`
	Kind      string `yaml:"kind"`
	Reason    string `yaml:"reason"`
	Country   string `yaml:"country"`
}

// Detect holds detector settings.
type Detect struct {
	UnusedScope     UnusedScope     `yaml:"unused_scope"`
	BroadRequest    BroadRequest    `yaml:"broad_request"`
	UnfamiliarGeo   UnfamiliarGeo   `yaml:"unfamiliar_geo"`
	UnfamiliarBurst UnfamiliarBurst `yaml:"unfamiliar_burst"`
	// ImpossibleTravel flags one subject seen at two places too far
	// apart for the time between them.
	ImpossibleTravel ImpossibleTravel `yaml:"impossible_travel"`
	// ResolveAfter is how long a finding raised by events (a broad
	// request, a new country, a burst, probing, a token in a URL) stays
	// open without recurring before it resolves; default 7d.
	ResolveAfter Duration `yaml:"resolve_after"`
	// Retention is how long a resolved finding is kept; default 90d.
	Retention Duration `yaml:"retention"`
	// ClientRetention is how long a client's record is kept after its
	// last event; a client unseen for longer is pruned from the store
	// (a registered one never is). At least UnusedScope.Window; default
	// 180d.
	ClientRetention Duration `yaml:"client_retention"`
	// ClientIDSpray flags many distinct unknown client ids (neither
	// registered nor issued a token) within a window on one source.
	ClientIDSpray ClientIDSpray `yaml:"client_id_spray"`
	// Silences mute findings that match them; more can be added at run
	// time with `scopewatch silence add`.
	Silences []Silence `yaml:"silences"`
}

// ImpossibleTravel raises impossible_travel when one subject (a
// pseudonymised user, or a client without one, such as a
// client-credentials client) is seen at two GeoIP City locations farther
// apart, less both accuracy radii, than SpeedKmh allows in the time
// between the two events. It needs a City database.
type ImpossibleTravel struct {
	SpeedKmh int `yaml:"speed_kmh"` // default 805, Okta's
}

// ClientIDSpray raises a client_id_spray finding when more than Distinct
// unknown client ids are seen on one source within Window.
type ClientIDSpray struct {
	Distinct int      `yaml:"distinct"` // default 100
	Window   Duration `yaml:"window"`   // default 10m
}

// UnusedScope configures the unused-scope detector.
type UnusedScope struct {
	Window         Duration `yaml:"window"`          // default 90d
	MinObservation Duration `yaml:"min_observation"` // default 30d
	// CoverageGap is the longest silence between two events of a source
	// that still counts as observed time (a quiet night); a longer one is a
	// gap in the record (the daemon down with the logs rotated away, a
	// stalled source, lost lines). Default 12h.
	CoverageGap Duration `yaml:"coverage_gap"`
	// StaleAfter is how old a source's newest event may grow before the
	// source is reported stale and unused findings that depend on it are
	// held back; default 24h.
	StaleAfter Duration `yaml:"stale_after"`
	// Every is how often unused scopes and stale sources are evaluated;
	// default 1h.
	Every Duration `yaml:"every"`
}

// BroadRequest configures the broad-request detector.
type BroadRequest struct {
	// MaxScopes is the most scopes one request may carry before it is
	// flagged; default 15.
	MaxScopes int `yaml:"max_scopes"`
	// Patterns are broad scopes beyond the SMART wildcards, as shell
	// patterns (path.Match); default admin, *:admin, *.admin,
	// read_all_data, write_all_data.
	Patterns []string `yaml:"patterns"`
	// Baseline says when a client's history is long enough for a scope it
	// never asked for before to count as an escalation.
	Baseline Baseline `yaml:"baseline"`
	// Probing flags a client or address collecting refusals.
	Probing Probing `yaml:"probing"`
}

// Baseline is how much history forms a client's baseline: both the time
// since its first event and the number of events must be reached.
type Baseline struct {
	LearningPeriod Duration `yaml:"learning_period"` // default 14d
	MinEvents      int      `yaml:"min_events"`      // default 50
}

// Probing flags Denials or more invalid_scope / access_denied refusals
// within Window from one client or one address.
type Probing struct {
	Denials int      `yaml:"denials"` // default 5
	Window  Duration `yaml:"window"`  // default 10m
	// Reasons are the refusal reasons that count; default invalid_scope,
	// access_denied, unauthorized_client, invalid_client.
	Reasons []string `yaml:"reasons"`
}

// UnfamiliarGeo configures the unfamiliar-geography detector.
type UnfamiliarGeo struct {
	Baseline `yaml:",inline"`
	// AllowCountries are never unfamiliar; DenyCountries always raise a
	// high finding, even while a baseline forms. ISO 3166-1 alpha-2 codes.
	AllowCountries []string `yaml:"allow_countries"`
	DenyCountries  []string `yaml:"deny_countries"`
	// AllowNetworks are egress ranges (VPN, relay, partner NAT) whose
	// traffic is never unfamiliar: CIDR ranges, or AS numbers written
	// AS64500 (needs geoip.asn).
	AllowNetworks []string `yaml:"allow_networks"`
	// Parsed forms of AllowNetworks, filled by Load.
	AllowPrefixes []netip.Prefix `yaml:"-"`
	AllowASNs     []uint32       `yaml:"-"`
}

// UnfamiliarBurst configures the burst detector: more than Requests
// events within Window from one network that is new to the client.
type UnfamiliarBurst struct {
	Requests int      `yaml:"requests"` // default 100
	Window   Duration `yaml:"window"`   // default 5m
	// NewFor is how long after its first event a network stays new to a
	// client; default 24h.
	NewFor Duration `yaml:"new_for"`
	// Baseline must have formed before bursts are judged.
	Baseline Baseline `yaml:"baseline"`
}

// Silence mutes the findings it matches until it expires.
type Silence struct {
	// Client and Subject are shell patterns (path.Match) on the client id
	// and on the finding's subject (a scope, a country, a network, ...);
	// empty matches everything. Kind is a finding kind, empty for all.
	Client  string `yaml:"client"`
	Kind    string `yaml:"kind"`
	Subject string `yaml:"subject"`
	// Until is the expiry, YYYY-MM-DD or RFC 3339; required.
	Until  string `yaml:"until"`
	Reason string `yaml:"reason"` // required: why the finding is acceptable
	// Expires is Until parsed by Load.
	Expires time.Time `yaml:"-"`
	Line    int       `yaml:"-"`
}

// Duration is a time.Duration that also accepts whole days ("90d") and
// weeks ("2w") in YAML, alone or combined with Go units ("1d12h").
type Duration time.Duration

// Rules is the policy model, loaded from the rules file.
type Rules struct {
	File           string              `yaml:"-"`
	Scopes         map[string]Scope    `yaml:"scopes"`          // the scope catalog
	Roles          map[string][]string `yaml:"roles"`           // role → allowed scopes
	Clients        map[string]Client   `yaml:"clients"`         // client id → registration
	Routes         []Route             `yaml:"routes"`          // API route → scopes it exercises
	IdentityScopes []string            `yaml:"identity_scopes"` // used when issued; default openid profile email fhirUser offline_access online_access launch launch/patient launch/encounter

	lines    map[string]int      // field path → line, when loaded from a file
	routes   *routeTable         // built by Compile
	identity map[string]struct{} // IdentityScopes as a set, built by Compile
}

// Lifecycle states of a catalog scope.
const (
	Active     = "active"
	Deprecated = "deprecated"
	Retired    = "retired"
)

// Scope is one entry of the scope catalog.
type Scope struct {
	Description string `yaml:"description"`
	Sensitivity string `yaml:"sensitivity"` // low | moderate | high | phi
	Lifecycle   string `yaml:"lifecycle"`   // active (default) | deprecated | retired
	ReplacedBy  string `yaml:"replaced_by"`
	Sunset      string `yaml:"sunset"` // YYYY-MM-DD
	// Admin marks a scope that administers the system (clients, users,
	// configuration): asking for it, or being granted it, raises
	// broad_request at high severity whatever the client's role.
	Admin bool `yaml:"admin"`
}

// Client is a client registration.
type Client struct {
	Role              string   `yaml:"role"`
	Owner             string   `yaml:"owner"`
	Channel           string   `yaml:"channel"`
	ExpectedCountries []string `yaml:"expected_countries"`
	// Scopes are the scopes registered (granted by configuration) for the
	// client, counted as granted even before a token shows them.
	Scopes []string `yaml:"scopes"`
}

// Route maps API calls to the scopes they exercise.
type Route struct {
	Sources []string `yaml:"sources"` // empty: every source
	Method  string   `yaml:"method"`  // GET, POST, ...; "" or "*" for any
	// Path is a pattern: literal segments, {name} or * for one segment, and
	// a final ** for any remainder. A trailing slash is ignored.
	Path   string   `yaml:"path"`
	Scopes []string `yaml:"scopes"`
	Line   int      `yaml:"-"`
}

// Cluster names the other instances of a fleet that share Kafka sources,
// each client's events going to one instance: the reports and listings
// ask every one of them and merge their answers.
type Cluster struct {
	// Peers are the listen addresses (host:port) of the other instances.
	// They are asked with the same credentials as this one
	// (SCOPEWATCH_API_USER, SCOPEWATCH_API_PASSWORD, SCOPEWATCH_API_CA).
	Peers []string `yaml:"peers"`
}
