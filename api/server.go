package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/report"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// Daemon is what the API asks the running daemon.
type Daemon interface {
	// Config returns the configuration in force; a reload replaces it.
	Config() *rules.Config
	// Ready reports whether the daemon tails every source and commits.
	Ready() bool
	// SilencesChanged tells the engine that the stored silences changed.
	SilencesChanged()
}

// Store is what the API reads and changes in the store; *store.DB is one.
type Store interface {
	report.Store
	Client(id string) (store.Client, bool, error)
	Sources() ([]store.Source, error)
	DeadLetters() ([]store.DeadLetter, error)
	Backup(w io.Writer, size func(int64)) (int64, error)
	AddSilence(s store.Silence) (store.Silence, error)
	ExpireSilence(id string, at time.Time) (store.Silence, error)
}

// Options are what NewHandler serves from.
type Options struct {
	Daemon Daemon
	Store  *store.DB
	// Metrics is served at /metrics; the handler's own errors are
	// counted in it.
	Metrics *prometheus.Registry
	Logger  *slog.Logger
}

// server holds what the handlers share.
type server struct {
	d   Daemon
	db  Store
	reg *prometheus.Registry
	log *slog.Logger
}

func (p *server) config() *rules.Config { return p.d.Config() }
func (p *server) ready() bool           { return p.d.Ready() }
func (p *server) silencesChanged()      { p.d.SilencesChanged() }

// NewHandler serves /metrics, /healthz, /readyz and the API. Every route and
// JSON shape is described in dist/openapi.yaml, which the tests hold to
// the responses: a route or a view field changes there too.
//
// /metrics, /healthz and /readyz carry no client data and are open. Every
// /api/v1 route reads the store or changes detection state: it needs an
// identity (see caller), a checked peer of the control socket or a basic
// auth user of web_config over TCP, and answers 403 without one.
func NewHandler(o Options) http.Handler {
	p := &server{d: o.Daemon, db: o.Store, reg: o.Metrics, log: o.Logger}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{Registry: p.reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !p.ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /api/v1/clients", needsCaller(p, func(w http.ResponseWriter, r *http.Request) {
		cs, err := p.db.Clients()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, report.Views(cs))
	}))
	mux.Handle("GET /api/v1/clients/{id}", needsCaller(p, func(w http.ResponseWriter, r *http.Request) {
		c, ok, err := p.db.Client(r.PathValue("id"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if !ok {
			http.Error(w, "no such client", http.StatusNotFound)
			return
		}
		writeJSON(w, report.Views([]store.Client{c})[0])
	}))
	mux.Handle("GET /api/v1/sources", needsCaller(p, func(w http.ResponseWriter, r *http.Request) {
		srcs, err := p.db.Sources()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, report.SourceViews(srcs))
	}))
	mux.Handle("GET /api/v1/reports/unused", needsCaller(p, func(w http.ResponseWriter, r *http.Request) {
		now := time.Now
		if at := r.URL.Query().Get("at"); at != "" {
			t, err := report.ParseAt(at)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			now = func() time.Time { return t }
		}
		rep, err := report.Unused(p.config(), p.db, now)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if c := r.URL.Query().Get("client"); c != "" {
			rep = report.FilterUnused(rep, c)
		}
		format := r.URL.Query().Get("format")
		if format == "" && strings.Contains(r.Header.Get("Accept"), "text/csv") {
			format = report.FormatCSV
		}
		switch format {
		case "", report.FormatJSON:
			writeJSON(w, rep)
		case report.FormatCSV:
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			report.WriteUnused(w, rep, report.FormatCSV)
		case report.FormatMarkdown:
			w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
			report.WriteUnused(w, rep, report.FormatMarkdown)
		default:
			http.Error(w, fmt.Sprintf("unknown format %q; use json, csv or markdown", format), http.StatusBadRequest)
		}
	}))
	// A scope name may hold a slash (patient/*.read): the client escapes
	// it, and {name...} takes the rest of the path either way.
	mux.Handle("GET /api/v1/reports/scope/{name...}", needsCaller(p, func(w http.ResponseWriter, r *http.Request) {
		rep, err := report.Scope(p.config(), p.db, r.PathValue("name"), time.Now)
		if errors.Is(err, report.ErrUnknownScope) {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, rep)
	}))
	findingsAPI(mux, p)
	return mux
}

// maxBody bounds the body of a POST: a silence is a few hundred bytes.
const maxBody = 64 << 10

// findingsAPI serves the findings and the silences. Findings are shown in
// their effective state: a silence added or expired through the API shows
// at once, before the engine has re-applied silences.
func findingsAPI(mux *http.ServeMux, p *server) {
	mux.Handle("GET /api/v1/findings", needsCaller(p, func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		filter, err := report.NewFindingFilter(q.Get("state"), q.Get("kind"), q.Get("client"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fs, err := report.Findings(p.config(), p.db, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, report.FindingViews(filter.Apply(fs)))
	}))
	mux.Handle("GET /api/v1/findings/{id}", needsCaller(p, func(w http.ResponseWriter, r *http.Request) {
		fs, err := report.Findings(p.config(), p.db, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		id := r.PathValue("id")
		for _, f := range fs {
			if f.ID() == id {
				writeJSON(w, report.NewFindingView(f))
				return
			}
		}
		http.Error(w, fmt.Sprintf("no finding %q", id), http.StatusNotFound)
	}))
	mux.Handle("GET /api/v1/dead-letters", needsCaller(p, func(w http.ResponseWriter, r *http.Request) {
		dl, err := p.db.DeadLetters()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, alert.DeadLetterViews(dl))
	}))
	// A copy of the store holds every client id and address: like the
	// POSTs, never for a web page (DNS rebinding).
	mux.Handle("GET /api/v1/backup", needsCaller(p, knownHost(p, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="scopewatch.db"`)
		if _, err := p.db.Backup(w, func(n int64) { w.Header().Set("Content-Length", strconv.FormatInt(n, 10)) }); err != nil {
			// Headers may be out already; a short body against the
			// Content-Length tells the client the copy is incomplete.
			p.log.Error("backup through the API failed", "err", err)
		}
	})))
	mux.Handle("GET /api/v1/silences", needsCaller(p, func(w http.ResponseWriter, r *http.Request) {
		ss, err := report.Silences(p.config(), p.db)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, report.SilenceViews(ss, time.Now()))
	}))
	// Adding or expiring a silence changes what is reported: a caller
	// with an identity may, never a web page the operator happens to
	// visit (cross-origin or DNS-rebinding POSTs).
	guard := http.NewCrossOriginProtection()
	mux.Handle("POST /api/v1/silences", guard.Handler(needsCaller(p, knownHost(p, func(w http.ResponseWriter, r *http.Request) {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
			http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
			return
		}
		var req SilenceRequest
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			if mb := (*http.MaxBytesError)(nil); errors.As(err, &mb) {
				http.Error(w, fmt.Sprintf("request body over %d bytes", mb.Limit), http.StatusRequestEntityTooLarge)
				return
			}
			http.Error(w, "bad request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if dec.More() {
			http.Error(w, "bad request body: more than one JSON value", http.StatusBadRequest)
			return
		}
		// The author is who asks: a request may name it, but not as
		// someone else.
		who, _ := caller(p, r)
		if req.Author != "" && req.Author != who {
			http.Error(w, fmt.Sprintf("author %q refused: the silence is recorded as added by %q, the identity of this request", req.Author, who), http.StatusForbidden)
			return
		}
		req.Author = who
		s, err := req.Silence(time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s, err = p.db.AddSilence(s)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		p.silencesChanged()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, report.NewSilenceView(s, time.Now()))
	}))))
	mux.Handle("POST /api/v1/silences/{id}/expire", guard.Handler(needsCaller(p, knownHost(p, func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if err := report.ConfigSilence(p.config(), id); err != nil {
			http.Error(w, err.Error(), http.StatusConflict)
			return
		}
		s, err := p.db.ExpireSilence(id, time.Now())
		if errors.Is(err, store.ErrNotFound) {
			http.Error(w, fmt.Sprintf("no silence %q", id), http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		p.silencesChanged()
		writeJSON(w, report.NewSilenceView(s, time.Now()))
	}))))
}

// knownHost refuses a request whose Host is neither an IP address,
// localhost, nor the configured listen address: a browser that a hostile
// page made resolve its own name to this machine (DNS rebinding) sends that
// name. It is no access check: needsCaller is.
func knownHost(p *server, h http.HandlerFunc) http.HandlerFunc {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			host = r.Host
		}
		listen, _, _ := net.SplitHostPort(p.config().Listen)
		if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err != nil && host != "localhost" && host != listen {
			http.Error(w, fmt.Sprintf("host %q refused: use the address scopewatch listens on", r.Host), http.StatusForbidden)
			return
		}
		h(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
