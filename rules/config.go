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

	// Rules is the parsed rules file named by RulesAt.
	Rules *Rules `yaml:"-"`
}

// Privacy controls what identifying data is kept.
type Privacy struct {
	PseudonymiseSubjects bool   `yaml:"pseudonymise_subjects"`
	KeyFile              string `yaml:"key_file"` // HMAC key for pseudonyms; required when pseudonymising
}

// Batch bounds one store transaction.
type Batch struct {
	MaxEvents int      `yaml:"max_events"` // default 1000
	MaxDelay  Duration `yaml:"max_delay"`  // default 250ms
}

// Source is one log to read.
type Source struct {
	Name   string `yaml:"name"`
	Path   string `yaml:"path"`   // the live file
	Glob   string `yaml:"glob"`   // rotated siblings to finish after a restart; default Path + ".*"
	Format string `yaml:"format"` // one of Formats(): keycloak, okta, auth0, entra, json, nginx, envoy, ...
	Poll   bool   `yaml:"poll"`   // poll for changes instead of inotify (network file systems)
	// RotateWait is how long a rotated file keeps being read after the live
	// path has moved on, for writers that append until signalled; default 5s.
	RotateWait Duration `yaml:"rotate_wait"`

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
	UnusedScope UnusedScope `yaml:"unused_scope"`
}

// UnusedScope configures the unused-scope detector.
type UnusedScope struct {
	Window         Duration `yaml:"window"`          // default 90d
	MinObservation Duration `yaml:"min_observation"` // default 30d
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
