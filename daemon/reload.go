package daemon

import (
	"context"
	"errors"
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

// reloadOn reloads the configuration from its file on each request until
// ctx ends.
func (d *Daemon) reloadOn(ctx context.Context, requests <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-requests:
			d.reloadFile(ctx)
		}
	}
}

// reloadFile re-reads the configuration, its rules and the GeoIP
// databases, and puts them in force (see Reload). A configuration that
// fails to load or prepare changes nothing: the error is logged, systemd
// told, and the metric drops to 0.
func (d *Daemon) reloadFile(ctx context.Context) {
	sd := d.o.Systemd
	if err := sd.notify(reloading()); err != nil {
		d.log.Warn("systemd notification", "err", err)
	}
	old := d.Config()
	d.log.Info("reloading the configuration", "config", old.File)
	cfg, err := rules.Load(old.File, ingest.Formats{})
	if err == nil {
		for _, w := range cfg.Warnings { // problems that do not refuse the configuration
			d.log.Warn("configuration warning", "problem", w.Error())
		}
		err = d.reload(ctx, cfg)
	}
	if errors.Is(err, errNotRunning) || ctx.Err() != nil {
		return
	}
	if err != nil {
		d.reloadM.successful.Set(0)
		// rules.Load lists every problem, one per line, with file, line
		// and field.
		d.log.Error("configuration not reloaded; the previous one stays in force", "config", old.File, "err", err)
		status := "READY=1\nSTATUS=reload failed; running on the previous configuration: " + firstLine(err.Error())
		if err := sd.notify(status); err != nil {
			d.log.Warn("systemd notification", "err", err)
		}
		return
	}
	if d.o.Level != nil {
		d.o.Level.Set(LogLevel(cfg.Log.Level))
	}
	d.reloadM.succeeded(time.Now())
	d.log.Info("configuration reloaded", "config", cfg.File, "sources", len(cfg.Sources),
		"clients", len(cfg.Rules.Clients), "scopes", len(cfg.Rules.Scopes), "geoip", cfg.GeoIP.Enabled())
	// READY=1 follows from the new run once its sources are tailing.
}

// errNotRunning is Reload's answer when Run has ended or ends before the
// new configuration could be put in force.
var errNotRunning = errors.New("the daemon is not running")

// Reload puts cfg in force while Run runs: its parsers and GeoIP
// databases are built while the running configuration keeps going, then
// the running sources are drained and committed, and cfg's start from the
// committed positions. It returns once cfg runs; called before Run, it
// waits for Run to start. On an error the running
// configuration stays in force. Settings that only a restart changes
// (store, listen, web_config, control_socket, log.format) are kept.
func (d *Daemon) Reload(cfg *rules.Config) error {
	return d.reload(context.Background(), cfg)
}

func (d *Daemon) reload(ctx context.Context, cfg *rules.Config) error {
	d.keepRestartOnly(d.Config(), cfg)
	g, err := d.prepare(cfg)
	if err != nil {
		return err
	}
	req := &reloadRequest{gen: g, done: make(chan struct{})}
	select {
	case d.reloads <- req:
	case <-ctx.Done():
		d.discard(g)
		return ctx.Err()
	case <-d.ended:
		d.discard(g)
		return errNotRunning
	}
	<-req.done
	if !req.applied {
		return errNotRunning
	}
	return nil
}

// keepRestartOnly keeps in cfg the settings a reload cannot change (the
// store, the listener, the control socket, the log format), so that what the daemon reports
// as in force is what it runs, and says which changes wait for a restart.
func (d *Daemon) keepRestartOnly(old, cfg *rules.Config) {
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
	if d.o.LogJSON {
		cfg.Log.Format = "json"
	}
	keep("log.format", &old.Log.Format, &cfg.Log.Format)
	if len(changed) > 0 {
		d.log.Warn("changed settings take effect at the next restart", "settings", strings.Join(changed, ","))
		d.reloadM.pendingRestart.Set(1)
	} else {
		d.reloadM.pendingRestart.Set(0)
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

// LogLevel maps a validated log.level to slog's level.
func LogLevel(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
