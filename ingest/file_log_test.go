package ingest_test

import (
	"log/slog"
	"os"
	"testing"
)

// testLogger returns a logger writing the sources' state changes to
// stderr when SCOPEWATCH_TEST_LOG is set, and nil (discard) otherwise.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	if os.Getenv("SCOPEWATCH_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
