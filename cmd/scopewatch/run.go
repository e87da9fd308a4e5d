package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/scopewatch/scopewatch/rules"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("run")
	configPath := fs.String("config", "", configUsage)
	logJSON := fs.Bool("log-json", false, "log as JSON, whatever log.format says")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	sd, err := systemdFromEnv()
	if err != nil {
		return usageError{err}
	}
	if *logJSON {
		cfg.Log.Format = "json"
	}
	level := new(slog.LevelVar)
	level.Set(logLevel(cfg.Log.Level))
	log := newLogger(stderr, cfg.Log.Format, level)
	// Caught from here on (SIGHUP's default action ends the process): one
	// that arrives before the reloader listens, or while a reload runs,
	// waits in the buffer, and more coalesce into it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	return runService(ctx, cfg, log, serveOptions{systemd: sd, level: level, reload: hup, logJSON: *logJSON})
}

// logLevel maps a validated log.level to slog's level.
func logLevel(s string) slog.Level {
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

// newLogger logs to w as text or JSON (format "json"), from level up.
func newLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// runDaemon tails every configured source and serves HTTP until ctx ends,
// then drains, commits and returns. started, when not nil, receives the
// pipeline and the HTTP address once both are up (for the demo and tests).
func runDaemon(ctx context.Context, cfg *rules.Config, log *slog.Logger, started func(*pipeline, string)) error {
	return runService(ctx, cfg, log, serveOptions{started: started})
}

// serveOptions are the service-manager side of the daemon.
type serveOptions struct {
	started func(*pipeline, string)
	// systemd receives READY, WATCHDOG, RELOADING and STOPPING; nil or
	// without NOTIFY_SOCKET, nothing is sent.
	systemd *systemd
	// reload asks for the configuration to be read again from its file
	// (SIGHUP).
	reload <-chan os.Signal
	// level is the log level a reload may change.
	level *slog.LevelVar
	// logJSON is --log-json, which a reload keeps.
	logJSON bool
	// peerCheck, when not nil, judges the peers of the control socket
	// instead of socketGroupCheck (tests).
	peerCheck peerCheck
}

// reloadRequest hands a prepared configuration to the run loop; done
// receives once the loop has stopped the old run and started the new one.
type reloadRequest struct {
	setup *setup
	done  chan struct{}
}

// runService runs the daemon: the HTTP server and the store for the whole
// process, and the sources, engine, Slack delivery and reports once per
// configuration. A reload drains and commits the running configuration's
// sources, then starts the new one where they stopped.
func runService(ctx context.Context, cfg *rules.Config, log *slog.Logger, o serveOptions) error {
	for _, w := range cfg.Warnings { // problems that do not refuse the configuration
		log.Warn("configuration warning", "problem", w.Error())
	}
	p, err := openPipeline(cfg, log)
	if err != nil {
		return err
	}
	defer p.close()
	rm := newReloadMetrics(p.reg)
	sd := o.systemd

	sources := p.liveSources()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	api := newAPI(p)
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 5 * time.Second, ConnContext: tcpPeer}
	// exporter-toolkit serves plain HTTP without a web config, and with one
	// adds TLS and basic auth in front of every endpoint.
	webFlags := &web.FlagConfig{WebConfigFile: &cfg.WebConfig}
	srvDone := make(chan error, 1)
	go func() { srvDone <- web.Serve(ln, srv, webFlags, log.With("component", "http")) }()
	ctl, err := startControl(cfg.ControlSocket, api, o.peerCheck, log)
	if err != nil {
		srv.Close()
		<-srvDone
		return err
	}
	defer ctl.stop(log)
	log.Info("scopewatch started", "store", cfg.Store, "listen", ln.Addr().String(), "control_socket", ctl.path, "sources", len(cfg.Sources))
	if o.started != nil {
		o.started(p, ln.Addr().String())
	}
	stopping := context.AfterFunc(ctx, func() {
		if err := sd.notify("STOPPING=1\nSTATUS=draining and committing"); err != nil {
			log.Warn("systemd notification", "err", err)
		}
	})
	defer stopping()

	// The watchdog and the reloader live as long as the process.
	daemonCtx, stopDaemon := context.WithCancel(context.WithoutCancel(ctx))
	var daemonWG sync.WaitGroup
	var warnOnce sync.Once
	daemonWG.Go(func() {
		sd.watchdogLoop(daemonCtx, p.probe, func(err error) {
			warnOnce.Do(func() { log.Warn("systemd watchdog notification failed; systemd will restart the service", "err", err) })
		})
	})
	reloads := make(chan reloadRequest)
	if o.reload != nil {
		r := &reloader{p: p, log: log, sd: sd, metrics: rm, level: o.level, logJSON: o.logJSON, apply: reloads}
		daemonWG.Go(func() { r.run(daemonCtx, o.reload) })
	}

	var runErr error
	for {
		genCtx, stopGen := context.WithCancel(ctx)
		var genWG sync.WaitGroup
		startRun(genCtx, &genWG, p, log, sd)
		runDone := make(chan error, 1)
		go func() { runDone <- p.run(genCtx, sources, false) }()
		var req reloadRequest
		select {
		case runErr = <-runDone:
		case req = <-reloads:
			stopGen()
			runErr = <-runDone
		}
		stopGen()
		genWG.Wait()
		if req.done == nil || runErr != nil || ctx.Err() != nil {
			if req.done != nil {
				p.discard(req.setup)
				close(req.done)
			}
			break
		}
		p.apply(req.setup)
		sources = p.liveSources()
		close(req.done)
	}
	stopDaemon()
	daemonWG.Wait()

	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("http shutdown", "err", err)
	}
	if err := <-srvDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http server", "err", err)
	}
	if runErr != nil {
		return runErr
	}
	log.Info("scopewatch stopped; everything read is committed", "lines", p.committedLines.Load())
	return nil
}

// startRun starts what one configuration runs beside the engine: the
// GeoIP file watch, Slack delivery, scheduled reports, and the READY=1
// notification once every source is tailing and the engine answers. All
// stop when ctx ends; wg tracks them.
func startRun(ctx context.Context, wg *sync.WaitGroup, p *pipeline, log *slog.Logger, sd *systemd) {
	cfg := p.config()
	ready := p.readyC()
	wg.Go(func() {
		select {
		case <-ready:
		case <-ctx.Done():
			return
		}
		select {
		case <-p.probe(ctx): // the engine runs and its commits go through
		case <-ctx.Done():
			return
		}
		status := fmt.Sprintf("READY=1\nSTATUS=tailing %d sources", len(cfg.Sources))
		if err := sd.notify(status); err != nil {
			log.Warn("systemd notification", "err", err)
		}
	})
	if p.geo != nil {
		geo := p.geo
		wg.Go(func() {
			if err := geo.Watch(ctx, time.Duration(cfg.GeoIP.CheckEvery)); err != nil {
				log.Error("geoip watch", "err", err)
			}
		})
	}
	d := newDelivery(p, log)
	p.notify = nil
	if d != nil {
		p.notify = d.notifier.Changed
		wg.Go(func() {
			if err := d.notifier.Run(ctx); err != nil {
				log.Error("slack notifications stopped", "err", err)
			}
		})
		wg.Go(func() {
			if err := d.sender.Run(ctx); err != nil {
				log.Error("slack delivery stopped; queued messages stay in the outbox", "err", err)
			}
		})
	}
	if rs := reportScheduler(p, log, postReport(p, d)); rs != nil {
		wg.Go(func() {
			select { // a report judges what the sources show: not before they are read
			case <-ready:
			case <-ctx.Done():
				return
			}
			p.waitCaughtUp(ctx, log) // nor before their backlog is committed
			if err := rs.Run(ctx); err != nil {
				log.Error("scheduled reports stopped", "err", err)
			}
		})
	}
}
