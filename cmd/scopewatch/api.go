package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// newAPI serves /metrics, /healthz, /readyz and the read API.
func newAPI(p *pipeline) http.Handler {
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
	mux.HandleFunc("GET /api/v1/clients", func(w http.ResponseWriter, r *http.Request) {
		cs, err := p.db.Clients()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, alert.Views(cs))
	})
	mux.HandleFunc("GET /api/v1/clients/{id}", func(w http.ResponseWriter, r *http.Request) {
		c, ok, err := p.db.Client(r.PathValue("id"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		if !ok {
			http.Error(w, "no such client", http.StatusNotFound)
			return
		}
		writeJSON(w, alert.Views([]store.Client{c})[0])
	})
	mux.HandleFunc("GET /api/v1/sources", func(w http.ResponseWriter, r *http.Request) {
		srcs, err := p.db.Sources()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, srcs)
	})
	mux.HandleFunc("GET /api/v1/reports/unused", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now
		if at := r.URL.Query().Get("at"); at != "" {
			t, err := parseAt(at)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			now = func() time.Time { return t }
		}
		cs, err := p.db.Clients()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		rep := unusedReport(p.cfg, cs, now)
		if c := r.URL.Query().Get("client"); c != "" {
			rep = filterReport(rep, c)
		}
		if strings.Contains(r.Header.Get("Accept"), "text/csv") {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			alert.WriteUnused(w, rep, alert.FormatCSV)
			return
		}
		writeJSON(w, rep)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// unusedReport computes the unused-scope report with the configured
// window and registrations.
func unusedReport(cfg *rules.Config, cs []store.Client, now func() time.Time) detect.UnusedReport {
	var regs map[string]rules.Client
	if cfg.Rules != nil {
		regs = cfg.Rules.Clients
	}
	return detect.Unused(cs, detect.UnusedOptions{
		Window:         time.Duration(cfg.Detect.UnusedScope.Window),
		MinObservation: time.Duration(cfg.Detect.UnusedScope.MinObservation),
		Registrations:  regs,
		Now:            now,
	})
}

// filterReport keeps only one client's entries.
func filterReport(rep detect.UnusedReport, client string) detect.UnusedReport {
	u := rep.Unused[:0:0]
	for _, x := range rep.Unused {
		if x.Client == client {
			u = append(u, x)
		}
	}
	pend := rep.Pending[:0:0]
	for _, x := range rep.Pending {
		if x.Client == client {
			pend = append(pend, x)
		}
	}
	rep.Unused, rep.Pending = u, pend
	return rep
}

// parseAt reads a report time as RFC 3339 or a date.
func parseAt(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return time.Time{}, usagef("bad time %q: use RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", s)
	}
	return t, nil
}
