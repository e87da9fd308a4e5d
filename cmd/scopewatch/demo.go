package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/scopewatch/scopewatch/daemon"
	"github.com/scopewatch/scopewatch/report"
)

// demoRules is the rules file the demo writes: a small catalog, roles,
// registrations and the routes of the generated API traffic.
const demoRules = `# Rules for the scopewatch demo.
scopes:
  openid: {description: OpenID Connect sign-in, sensitivity: low}
  profile: {description: Basic profile claims, sensitivity: low}
  view_lab_results: {description: Read lab results, sensitivity: phi}
  view_billing: {description: Read invoices, sensitivity: moderate}
  view_imaging: {description: Read imaging studies, sensitivity: phi}
  view_notes: {description: Read clinical notes, sensitivity: phi}
  view_schedule: {description: Read appointments, sensitivity: moderate}
  write_schedule: {description: Book appointments, sensitivity: moderate}
  write_orders: {description: Place orders, sensitivity: phi}
  patient/Observation.read: {description: SMART v1 read of Observations, sensitivity: phi}
  system/Group.read: {description: Bulk read of patient groups, sensitivity: phi}
  read_all_data: {description: Everything, sensitivity: phi, lifecycle: deprecated, replaced_by: view_lab_results}
  admin: {description: Manage clients, sensitivity: high}
  patient/*.read: {description: SMART v1 read of every resource in the patient compartment, sensitivity: phi}
roles:
  lab-technician: [openid, profile, view_lab_results, patient/Observation.read]
  billing: [openid, view_billing]
  integration: [openid, system/Group.read, write_orders]
  front-desk: [openid, profile, view_schedule, write_schedule]
clients:
  lab-portal: {role: lab-technician, owner: lab-systems@clinic.example}
  billing-export: {role: billing, owner: finance-it@clinic.example, scopes: [view_imaging]}
  ehr-sync: {role: integration, owner: integration@clinic.example}
  scheduler: {role: front-desk, owner: front-desk-it@clinic.example}
routes:
  - {method: GET, path: "/api/labs/{id}", scopes: [view_lab_results]}
  - {method: GET, path: "/api/billing/invoices/{id}", scopes: [view_billing]}
  - {method: GET, path: "/api/imaging/studies/{id}", scopes: [view_imaging]}
  - {method: GET, path: "/api/notes/{id}", scopes: [view_notes]}
  - {method: GET, path: "/api/schedule/{id}", scopes: [view_schedule]}
  - {method: PUT, path: "/api/schedule/{id}", scopes: [write_schedule]}
  - {method: POST, path: /api/orders, scopes: [write_orders]}
  - {method: GET, path: "/fhir/Observation/{id}", scopes: [patient/Observation.read]}
  - {method: GET, path: "/fhir/Group/{id}", scopes: [system/Group.read]}
  - {method: GET, path: /api/export/all, scopes: [read_all_data]}
  - {method: POST, path: /api/admin/clients, scopes: [admin]}
identity_scopes: [openid, profile, fhirUser, launch/patient]
`

// demoConfig is the daemon configuration the demo writes; %s are the
// directory and the listen address.
const demoConfig = `# Configuration for the scopewatch demo.
store: %[1]s/scopewatch.db
listen: %[2]s
rules: %[1]s/rules.yaml
sources:
  - name: keycloak
    path: %[1]s/keycloak.log
    format: keycloak
  - name: api-gateway
    path: %[1]s/api-access.log
    format: json
    fields: {time: time, client: client_id, method: method, path: path, status: status, ip: remote_addr}
    fhir_base: /fhir
detect:
  # The demo's logs are thin (a few hundred lines a day): allow quiet
  # stretches of up to 3 days before a source counts as unobserved.
  unused_scope: {window: 90d, min_observation: 30d, coverage_gap: 3d}
`

// demoClients is the demo's cast: what each client is granted and which
// routes it calls.
func demoClients() []synthClient {
	r := synthRouteFor
	return []synthClient{
		{ID: "lab-portal", Granted: []string{"openid", "profile", "view_lab_results", "patient/Observation.read", "read_all_data"},
			Calls: []synthCall{r["view_lab_results"], r["patient/Observation.read"]}},
		{ID: "ehr-sync", Granted: []string{"openid", "system/Group.read", "write_orders", "view_notes"},
			Calls: []synthCall{r["system/Group.read"], r["write_orders"], {Method: "GET", Path: "/api/notes/%d", Until: 0.2}}},
		{ID: "billing-export", Granted: []string{"openid", "view_billing", "view_lab_results", "admin"},
			Calls: []synthCall{r["view_billing"]}},
		{ID: "scheduler", Granted: []string{"openid", "profile", "view_schedule", "write_schedule"},
			Calls: []synthCall{r["view_schedule"], r["write_schedule"]}},
		{ID: "triage-bot", Granted: []string{"openid", "view_notes", "write_orders"},
			Calls: []synthCall{r["write_orders"]}, Since: 0.92},
		{ID: "mychart-app", Granted: []string{"openid", "fhirUser", "launch/patient", "patient/*.read"},
			Calls: []synthCall{{Method: "GET", Path: "/fhir/Observation/%d"}, {Method: "GET", Path: "/fhir/Observation"},
				{Method: "GET", Path: "/fhir/Condition/%d"}}},
	}
}

// The two lines the demo adds to its logs besides the events, because
// real logs hold them too: server chatter that is ignored, and a line cut
// short (a writer that died mid-line) that is counted as malformed.
const (
	demoBanner    = "2026-01-01 00:00:00,000 INFO  [io.quarkus] (main) Keycloak 26.0.5 on JVM started in 9.512s.\n"
	demoTruncated = `{"time":"2026-01-01T00:00:00.000Z","remote_addr":"10.0.0.9","method":"GET","pa` + "\n"
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

// invokedAs is how the user ran this program, given os.Args[0], as a
// command to print in hints: the name when it was found on PATH, the path
// when one was typed (./bin/scopewatch), and "go run ./cmd/scopewatch"
// for a binary that go run built (under a go-build directory, the work
// directory or the build cache).
func invokedAs(arg0 string) string {
	if !strings.ContainsRune(arg0, filepath.Separator) && !strings.ContainsRune(arg0, '/') {
		return arg0
	}
	for _, dir := range strings.FieldsFunc(filepath.Dir(arg0), func(r rune) bool { return r == '/' || r == filepath.Separator }) {
		if strings.HasPrefix(dir, "go-build") {
			return "go run ./cmd/scopewatch"
		}
	}
	return shellQuote(arg0)
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

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo")
	dir := fs.String("dir", "", "directory for the generated logs, config and store (default: a new temporary directory)")
	events := fs.Int("events", 60000, "events to generate over 120 days")
	verbose := fs.Bool("v", false, "show the daemon's log")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
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
	if err := os.WriteFile(filepath.Join(*dir, "rules.yaml"), []byte(demoRules), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, demoConfig, *dir, "127.0.0.1:0"), 0o644); err != nil {
		return err
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "scopewatch demo in %s\n", *dir)

	// 120 days of traffic ending now: the first 70%% exists before the
	// daemon starts (history), the rest is appended while it tails, with a
	// rename rotation of both logs in between.
	end := time.Now().UTC().Truncate(time.Second)
	gen := newSynth(42, demoClients(), end.Add(-120*24*time.Hour), end, *events)
	w, err := openDemoWriters(*dir)
	if err != nil {
		return err
	}
	defer w.close()
	history := *events * 7 / 10
	if err := w.write(gen, 0, history); err != nil {
		return err
	}
	w.kc.WriteString(demoBanner)
	w.api.WriteString(demoTruncated)
	if err := w.flush(); err != nil {
		return err
	}
	total := uint64(history + 2) // the events, the banner and the truncated line

	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = newLogger(stderr, "text", nil)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	started := make(chan struct{})
	d, err := daemon.New(cfg, daemon.Options{Logger: log, Version: readVersion(), Started: func(string) { close(started) }})
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
	if err := w.write(gen, history, history+live/2); err != nil {
		return err
	}
	if err := w.rotate(*dir); err != nil {
		return err
	}
	if err := w.write(gen, history+live/2, *events); err != nil {
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
	srcs, err := d.Store().Sources()
	stop()
	if err := <-done; err != nil {
		return err
	}
	if err := d.Close(); err != nil { // the report below opens the store
		return err
	}
	if err != nil {
		return err
	}
	printDemoLines(stdout, total, report.SourceViews(srcs))
	return printDemoReport(ctx, invokedAs(os.Args[0]), cfgPath, stdout, stderr)
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

// printDemoReport prints the unused-scope report and the commands to try
// next, written as the user ran this one (cmd).
func printDemoReport(ctx context.Context, cmd, cfgPath string, stdout, stderr io.Writer) error {
	if err := cmdReport(ctx, []string{"unused", "--config", cfgPath}, stdout, stderr); err != nil {
		return err
	}
	cfg := shellQuote(cfgPath)
	fmt.Fprintf(stdout, "\nTry: %[1]s findings --config %[2]s\n     %[1]s clients --config %[2]s\n     %[1]s report unused --config %[2]s --format csv\n",
		cmd, cfg)
	return nil
}

// demoWriters appends generated lines to the two demo logs.
type demoWriters struct {
	kcFile, apiFile *os.File
	kc, api         *bufio.Writer
	buf             []byte
}

func openDemoWriters(dir string) (*demoWriters, error) {
	w := &demoWriters{}
	if err := w.open(dir); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *demoWriters) open(dir string) error {
	var err error
	if w.kcFile, err = os.OpenFile(filepath.Join(dir, "keycloak.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return err
	}
	if w.apiFile, err = os.OpenFile(filepath.Join(dir, "api-access.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return err
	}
	w.kc, w.api = bufio.NewWriterSize(w.kcFile, 1<<16), bufio.NewWriterSize(w.apiFile, 1<<16)
	return nil
}

// write appends events [from, to).
func (w *demoWriters) write(gen *synth, from, to int) error {
	for i := from; i < to; i++ {
		ev := gen.next(i)
		if ev.Grant {
			w.buf = gen.keycloakText(w.buf[:0], ev)
			w.kc.Write(w.buf)
		} else {
			w.buf = gen.apiJSON(w.buf[:0], ev)
			w.api.Write(w.buf)
		}
	}
	return w.flush()
}

func (w *demoWriters) flush() error {
	if err := w.kc.Flush(); err != nil {
		return err
	}
	return w.api.Flush()
}

// rotate renames both logs to .1 and reopens new ones, as logrotate's
// create mode does.
func (w *demoWriters) rotate(dir string) error {
	if err := w.flush(); err != nil {
		return err
	}
	for _, name := range []string{"keycloak.log", "api-access.log"} {
		p := filepath.Join(dir, name)
		if err := os.Rename(p, p+".1"); err != nil {
			return err
		}
	}
	w.close()
	return w.open(dir)
}

func (w *demoWriters) close() {
	w.kcFile.Close()
	w.apiFile.Close()
}
