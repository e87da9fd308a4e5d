package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/rules"
)

// reloadMetrics tell whether the configuration in force is the one on
// disk, in the manner of Prometheus' own reload gauges.
type reloadMetrics struct {
	successful  prometheus.Gauge
	lastSuccess prometheus.Gauge
	// pendingRestart is 1 while the file changes a setting that only a
	// restart applies (store, listen, web_config, log.format).
	pendingRestart prometheus.Gauge
}

// newReloadMetrics registers the reload gauges with reg; the
// configuration the daemon started with counts as a successful load.
func newReloadMetrics(reg prometheus.Registerer) *reloadMetrics {
	m := &reloadMetrics{
		successful: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded (or none was asked for), 0 if the daemon runs on an older configuration than the file's.",
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_config_last_reload_success_timestamp_seconds",
			Help: "When the configuration in force was loaded.",
		}),
		pendingRestart: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "scopewatch_config_pending_restart",
			Help: "1 while the configuration file changes a setting that takes effect only at a restart (store, listen, web_config, control_socket, log.format).",
		}),
	}
	reg.MustRegister(m.successful, m.lastSuccess, m.pendingRestart)
	m.succeeded(time.Now())
	return m
}

func (m *reloadMetrics) succeeded(at time.Time) {
	m.successful.Set(1)
	m.lastSuccess.Set(float64(at.UnixNano()) / 1e9)
}

// reloader re-reads the configuration, its rules and the GeoIP databases
// on request. It loads and prepares the new configuration while the old
// one keeps running, so a configuration that fails to load or prepare
// changes nothing: the error is logged and the metric drops to 0. A good
// one is handed to the run loop, which drains and commits the running
// sources and starts the new ones from the committed positions.
type reloader struct {
	p       *pipeline
	log     *slog.Logger
	sd      *systemd
	metrics *reloadMetrics
	level   *slog.LevelVar // nil: the level stays
	logJSON bool           // --log-json, which outranks log.format
	apply   chan<- reloadRequest
}

// run handles reload requests until ctx ends.
func (r *reloader) run(ctx context.Context, requests <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-requests:
			r.reload(ctx)
		}
	}
}

// reload performs one reload; it returns once the new configuration runs
// or the old one was kept.
func (r *reloader) reload(ctx context.Context) {
	if err := r.sd.notify(reloading()); err != nil {
		r.log.Warn("systemd notification", "err", err)
	}
	old := r.p.config()
	r.log.Info("reloading the configuration", "config", old.File)
	cfg, err := rules.Load(old.File, ingest.Formats{})
	var s *setup
	if err == nil {
		for _, w := range cfg.Warnings { // problems that do not refuse the configuration
			r.log.Warn("configuration warning", "problem", w.Error())
		}
		r.keepRestartOnly(old, cfg)
		s, err = r.p.prepare(cfg)
	}
	if err != nil {
		r.metrics.successful.Set(0)
		// rules.Load lists every problem, one per line, with file, line
		// and field.
		r.log.Error("configuration not reloaded; the previous one stays in force", "config", old.File, "err", err)
		status := "READY=1\nSTATUS=reload failed; running on the previous configuration: " + firstLine(err.Error())
		if err := r.sd.notify(status); err != nil {
			r.log.Warn("systemd notification", "err", err)
		}
		return
	}
	req := reloadRequest{setup: s, done: make(chan struct{})}
	select {
	case r.apply <- req:
	case <-ctx.Done():
		r.p.discard(s)
		return
	}
	<-req.done
	if ctx.Err() != nil {
		return
	}
	if r.level != nil {
		r.level.Set(logLevel(cfg.Log.Level))
	}
	r.metrics.succeeded(time.Now())
	r.log.Info("configuration reloaded", "config", cfg.File, "sources", len(cfg.Sources),
		"clients", len(cfg.Rules.Clients), "scopes", len(cfg.Rules.Scopes), "geoip", cfg.GeoIP.Enabled())
	// READY=1 follows from the new run once its sources are tailing.
}

// keepRestartOnly keeps in cfg the settings a reload cannot change (the
// store, the listener, the control socket, the log format), so that what the daemon reports
// as in force is what it runs, and says which changes wait for a restart.
func (r *reloader) keepRestartOnly(old, cfg *rules.Config) {
	var changed []string
	keep := func(name string, cur, next *string) {
		if *cur != *next {
			changed = append(changed, name)
			*next = *cur
		}
	}
	keep("store", &old.Store, &cfg.Store)
	keep("listen", &old.Listen, &cfg.Listen)
	keep("web_config", &old.WebConfig, &cfg.WebConfig)
	keep("control_socket", &old.ControlSocket, &cfg.ControlSocket)
	if r.logJSON {
		cfg.Log.Format = "json"
	}
	keep("log.format", &old.Log.Format, &cfg.Log.Format)
	if len(changed) > 0 {
		r.log.Warn("changed settings take effect at the next restart", "settings", strings.Join(changed, ","))
		r.metrics.pendingRestart.Set(1)
	} else {
		r.metrics.pendingRestart.Set(0)
	}
}

// firstLine returns s up to its first newline, for one-line statuses.
func firstLine(s string) string {
	line, more, _ := strings.Cut(s, "\n")
	if more != "" {
		return fmt.Sprintf("%s (and more)", line)
	}
	return line
}
