package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/exporter-toolkit/web"

	"github.com/scopewatch/scopewatch/api"
)

// reloadRequest hands a prepared generation to the run loop; done is
// closed once the loop has stopped the old run and started the new one
// (applied tells which).
type reloadRequest struct {
	gen     *generation
	done    chan struct{}
	applied bool
}

// Run runs the daemon until ctx ends: the HTTP server and the control
// socket for the whole call, and the sources, engine, Slack delivery and
// reports once per generation. A reload drains and commits the running
// generation's sources, then starts the new one where they stopped. When
// ctx ends, Run stops the sources, commits everything read and returns.
func (d *Daemon) Run(ctx context.Context) error {
	cfg, log, o := d.Config(), d.log, d.o
	sd := o.Systemd

	sources := d.liveSources()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	handler := api.NewHandler(api.Options{Daemon: d, Store: d.db, Metrics: d.reg, Logger: log})
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Second, ConnContext: api.TCPConnContext}
	// exporter-toolkit serves plain HTTP without a web config, and with one
	// adds TLS and basic auth in front of every endpoint.
	webFlags := &web.FlagConfig{WebConfigFile: &cfg.WebConfig}
	srvDone := make(chan error, 1)
	go func() { srvDone <- web.Serve(ln, srv, webFlags, log.With("component", "http")) }()
	ctl, err := api.StartControl(cfg.ControlSocket, handler, log)
	if err != nil {
		srv.Close()
		<-srvDone
		return err
	}
	defer ctl.Stop(log)
	log.Info("scopewatch started", "store", cfg.Store, "listen", ln.Addr().String(), "control_socket", ctl.Path(), "sources", len(cfg.Sources))
	if o.Started != nil {
		o.Started(ln.Addr().String())
	}
	// STOPPING=1 as soon as the stop is asked, and surely sent before Run
	// returns: a notification left to a goroutine of its own could be
	// lost with the process.
	returning, notified := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(notified)
		select {
		case <-ctx.Done():
		case <-returning:
		}
		if ctx.Err() != nil { // asked to stop, also when both are so
			if err := sd.notify("STOPPING=1\nSTATUS=draining and committing"); err != nil {
				log.Warn("systemd notification", "err", err)
			}
		}
	}()
	defer func() {
		close(returning)
		<-notified
	}()

	// The watchdog and the reloader live as long as the process.
	daemonCtx, stopDaemon := context.WithCancel(context.WithoutCancel(ctx))
	var daemonWG sync.WaitGroup
	var warnOnce sync.Once
	daemonWG.Go(func() {
		sd.watchdogLoop(daemonCtx, d.Probe, func(err error) {
			warnOnce.Do(func() { log.Warn("systemd watchdog notification failed; systemd will restart the service", "err", err) })
		})
	})
	if o.Reload != nil {
		daemonWG.Go(func() { d.reloadOn(daemonCtx, o.Reload) })
	}

	var runErr error
	for {
		genCtx, stopGen := context.WithCancel(ctx)
		var genWG sync.WaitGroup
		d.startRun(genCtx, &genWG)
		runDone := make(chan error, 1)
		go func() { runDone <- d.run(genCtx, sources, false) }()
		var req *reloadRequest
		select {
		case runErr = <-runDone:
		case req = <-d.reloads:
			stopGen()
			runErr = <-runDone
		}
		stopGen()
		genWG.Wait()
		if req == nil || runErr != nil || ctx.Err() != nil {
			if req != nil {
				d.discard(req.gen)
				close(req.done)
			}
			break
		}
		d.apply(req.gen)
		sources = d.liveSources()
		req.applied = true
		close(req.done)
	}
	close(d.ended)
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
	log.Info("scopewatch stopped; everything read is committed", "lines", d.Committed())
	return nil
}

// startRun starts what one configuration runs beside the engine: the
// GeoIP file watch, Slack delivery, scheduled reports, and the READY=1
// notification once every source is tailing and the engine answers. All
// stop when ctx ends; wg tracks them.
func (d *Daemon) startRun(ctx context.Context, wg *sync.WaitGroup) {
	cfg, log, sd := d.Config(), d.log, d.o.Systemd
	ready := d.Attached()
	wg.Go(func() {
		select {
		case <-ready:
		case <-ctx.Done():
			return
		}
		select {
		case <-d.Probe(ctx): // the engine runs and its commits go through
		case <-ctx.Done():
			return
		}
		status := fmt.Sprintf("READY=1\nSTATUS=tailing %d sources", len(cfg.Sources))
		if err := sd.notify(status); err != nil {
			log.Warn("systemd notification", "err", err)
		}
	})
	if geo := d.gen.Load().geo; geo != nil {
		wg.Go(func() {
			if err := geo.Watch(ctx, time.Duration(cfg.GeoIP.CheckEvery)); err != nil {
				log.Error("geoip watch", "err", err)
			}
		})
	}
	slack := d.newDelivery()
	d.notify.Store(nil)
	if slack != nil {
		changed := slack.notifier.Changed
		d.notify.Store(&changed)
		wg.Go(func() {
			if err := slack.notifier.Run(ctx); err != nil {
				log.Error("slack notifications stopped", "err", err)
			}
		})
		wg.Go(func() {
			if err := slack.sender.Run(ctx); err != nil {
				log.Error("slack delivery stopped; queued messages stay in the outbox", "err", err)
			}
		})
	}
	if rs := d.reportScheduler(d.postReport(slack)); rs != nil {
		wg.Go(func() {
			select { // a report judges what the sources show: not before they are read
			case <-ready:
			case <-ctx.Done():
				return
			}
			d.waitCaughtUp(ctx, log) // nor before their backlog is committed
			if err := rs.Run(ctx); err != nil {
				log.Error("scheduled reports stopped", "err", err)
			}
		})
	}
}
