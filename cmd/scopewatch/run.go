package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/scopewatch/scopewatch/daemon"
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
	sd, err := daemon.SystemdFromEnv()
	if err != nil {
		return usageError{err}
	}
	if *logJSON {
		cfg.Log.Format = "json"
	}
	level := new(slog.LevelVar)
	level.Set(daemon.LogLevel(cfg.Log.Level))
	log := newLogger(stderr, cfg.Log.Format, level)
	// Caught from here on (SIGHUP's default action ends the process): one
	// that arrives before the reloader listens, or while a reload runs,
	// waits in the buffer, and more coalesce into it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	d, err := daemon.New(cfg, daemon.Options{
		Logger: log, Level: level, LogJSON: *logJSON, Systemd: sd, Reload: hup, Version: readVersion(),
		SetMemoryLimit: debug.SetMemoryLimit,
		SetGCPercent:   debug.SetGCPercent,
		Collect:        runtime.GC,
	})
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Run(ctx)
}

// newLogger logs to w as text or JSON (format "json"), from level up.
func newLogger(w io.Writer, format string, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
