package main

import (
	"context"
	"errors"
	"flag"
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

// loadConfig parses the common --config flag and loads the configuration.
func loadConfig(path string) (*rules.Config, error) {
	if path == "" {
		return nil, usagef("--config is required")
	}
	cfg, err := rules.Load(path)
	if err != nil {
		return nil, usageError{err}
	}
	return cfg, nil
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "configuration file")
	logJSON := fs.Bool("log-json", false, "log as JSON (for journald or a log shipper)")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	log := newLogger(stderr, *logJSON)
	// SIGHUP's default action ends the process: until the handler that
	// reloads is listening, a reload request must not stop a starting
	// daemon.
	signal.Ignore(syscall.SIGHUP)
	return runDaemon(ctx, cfg, log, nil)
}

// reloadOnHangup reloads the GeoIP databases on SIGHUP until ctx ends. A
// failed reload keeps the databases in use; the geoip package logs it and
// counts it.
func reloadOnHangup(ctx context.Context, p *pipeline, log *slog.Logger) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if p.geo == nil {
				log.Info("SIGHUP: no GeoIP databases to reload; the configuration is read at start only")
				continue
			}
			if err := p.geo.Reload(); err == nil {
				log.Info("geoip databases reloaded on SIGHUP")
			}
		}
	}
}

func newLogger(w io.Writer, asJSON bool) *slog.Logger {
	if asJSON {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// runDaemon tails every configured source and serves HTTP until ctx ends,
// then drains, commits and returns. started, when not nil, receives the
// pipeline and the HTTP address once both are up (for the demo and tests).
func runDaemon(ctx context.Context, cfg *rules.Config, log *slog.Logger, started func(*pipeline, string)) error {
	p, err := openPipeline(cfg, log)
	if err != nil {
		return err
	}
	defer p.close()

	sources := p.liveSources()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	srv := &http.Server{Handler: newAPI(p), ReadHeaderTimeout: 5 * time.Second}
	// exporter-toolkit serves plain HTTP without a web config, and with one
	// adds TLS and basic auth in front of every endpoint.
	webFlags := &web.FlagConfig{WebConfigFile: &cfg.WebConfig}
	srvDone := make(chan error, 1)
	go func() { srvDone <- web.Serve(ln, srv, webFlags, log.With("component", "http")) }()
	log.Info("scopewatch started", "store", cfg.Store, "listen", ln.Addr().String(), "sources", len(cfg.Sources))
	if started != nil {
		started(p, ln.Addr().String())
	}

	var wg sync.WaitGroup
	bgCtx, stopBackground := context.WithCancel(ctx)
	if p.geo != nil {
		wg.Go(func() {
			if err := p.geo.Watch(bgCtx, time.Duration(cfg.GeoIP.CheckEvery)); err != nil {
				log.Error("geoip watch", "err", err)
			}
		})
	}
	wg.Go(func() { reloadOnHangup(bgCtx, p, log) })
	d := newDelivery(p, log)
	if d != nil {
		p.notify = d.notifier.Changed
		wg.Go(func() {
			if err := d.notifier.Run(bgCtx); err != nil {
				log.Error("slack notifications stopped", "err", err)
			}
		})
		wg.Go(func() {
			if err := d.sender.Run(bgCtx); err != nil {
				log.Error("slack delivery stopped; queued messages stay in the outbox", "err", err)
			}
		})
	}
	if rs := reportScheduler(p, log, postReport(p, d)); rs != nil {
		wg.Go(func() {
			select { // a report judges what the sources show: not before they are read
			case <-p.readyC:
			case <-bgCtx.Done():
				return
			}
			if err := rs.Run(bgCtx); err != nil {
				log.Error("scheduled reports stopped", "err", err)
			}
		})
	}

	runErr := p.run(ctx, sources, false)
	stopBackground()
	wg.Wait()

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
