package traffic

import (
	"bufio"
	"os"
	"path/filepath"
)

// DemoRules is the rules file the demo writes: a small catalog, roles,
// registrations and the routes of the generated API traffic.
const DemoRules = `# Rules for the scopewatch demo.
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

// DemoConfig is the daemon configuration the demo writes; %s are the
// directory and the listen address.
const DemoConfig = `# Configuration for the scopewatch demo.
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

// DemoClients is the demo's cast: what each client is granted and which
// routes it calls.
func DemoClients() []Client {
	r := routeFor
	return []Client{
		{ID: "lab-portal", Granted: []string{"openid", "profile", "view_lab_results", "patient/Observation.read", "read_all_data"},
			Calls: []Call{r["view_lab_results"], r["patient/Observation.read"]}},
		{ID: "ehr-sync", Granted: []string{"openid", "system/Group.read", "write_orders", "view_notes"},
			Calls: []Call{r["system/Group.read"], r["write_orders"], {Method: "GET", Path: "/api/notes/%d", Until: 0.2}}},
		{ID: "billing-export", Granted: []string{"openid", "view_billing", "view_lab_results", "admin"},
			Calls: []Call{r["view_billing"]}},
		{ID: "scheduler", Granted: []string{"openid", "profile", "view_schedule", "write_schedule"},
			Calls: []Call{r["view_schedule"], r["write_schedule"]}},
		{ID: "triage-bot", Granted: []string{"openid", "view_notes", "write_orders"},
			Calls: []Call{r["write_orders"]}, Since: 0.92},
		{ID: "mychart-app", Granted: []string{"openid", "fhirUser", "launch/patient", "patient/*.read"},
			Calls: []Call{{Method: "GET", Path: "/fhir/Observation/%d"}, {Method: "GET", Path: "/fhir/Observation"},
				{Method: "GET", Path: "/fhir/Condition/%d"}}},
	}
}

// DemoBanner and DemoTruncated are the two lines the demo adds to its
// logs besides the events, because real logs hold them too: server chatter that is ignored, and a line cut
// short (a writer that died mid-line) that is counted as malformed.
const (
	DemoBanner    = "2026-01-01 00:00:00,000 INFO  [io.quarkus] (main) Keycloak 26.0.5 on JVM started in 9.512s.\n"
	DemoTruncated = `{"time":"2026-01-01T00:00:00.000Z","remote_addr":"10.0.0.9","method":"GET","pa` + "\n"
)

// Writers append generated lines to the two demo logs, keycloak.log
// (jboss-logging text) and api-access.log (JSON), in a directory.
type Writers struct {
	kcFile, apiFile *os.File
	// Keycloak and API buffer the two logs; what is written to them
	// directly (a line of the kinds real logs hold besides events) lands
	// at the next Flush.
	Keycloak, API *bufio.Writer
	buf           []byte
}

// OpenWriters opens (creating or appending to) the two demo logs in dir.
func OpenWriters(dir string) (*Writers, error) {
	w := &Writers{}
	if err := w.open(dir); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writers) open(dir string) error {
	var err error
	if w.kcFile, err = os.OpenFile(filepath.Join(dir, "keycloak.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return err
	}
	if w.apiFile, err = os.OpenFile(filepath.Join(dir, "api-access.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
		return err
	}
	w.Keycloak, w.API = bufio.NewWriterSize(w.kcFile, 1<<16), bufio.NewWriterSize(w.apiFile, 1<<16)
	return nil
}

// Write appends events [from, to) of gen, token events to the Keycloak
// log and API calls to the gateway log, and flushes both.
func (w *Writers) Write(gen *Generator, from, to int) error {
	for i := from; i < to; i++ {
		ev := gen.Next(i)
		if ev.Grant {
			w.buf = gen.KeycloakText(w.buf[:0], ev)
			w.Keycloak.Write(w.buf)
		} else {
			w.buf = gen.APIJSON(w.buf[:0], ev)
			w.API.Write(w.buf)
		}
	}
	return w.Flush()
}

// Flush writes what is buffered to both logs.
func (w *Writers) Flush() error {
	if err := w.Keycloak.Flush(); err != nil {
		return err
	}
	return w.API.Flush()
}

// Rotate renames both logs to .1 and reopens new ones, as logrotate's
// create mode does.
func (w *Writers) Rotate(dir string) error {
	if err := w.Flush(); err != nil {
		return err
	}
	for _, name := range []string{"keycloak.log", "api-access.log"} {
		p := filepath.Join(dir, name)
		if err := os.Rename(p, p+".1"); err != nil {
			return err
		}
	}
	w.Close()
	return w.open(dir)
}

// Close closes both logs; call Flush first to keep what is buffered.
func (w *Writers) Close() {
	w.kcFile.Close()
	w.apiFile.Close()
}
