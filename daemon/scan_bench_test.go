package daemon_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/scopewatch/scopewatch/daemon"
	"github.com/scopewatch/scopewatch/ingest"
	"github.com/scopewatch/scopewatch/internal/traffic"
	"github.com/scopewatch/scopewatch/rules"
)

// BenchmarkPipeline measures the whole scan path on a generated file of
// Keycloak token events in Quarkus JSON logging: read, parse, account and
// commit to a fresh bbolt store with fsync on.
func BenchmarkPipeline(b *testing.B) {
	for _, c := range []struct{ clients, scopes int }{{1000, 0}, {10_000, 30}} {
		const n = 100_000
		b.Run(fmt.Sprintf("keycloak_json_%dk_lines_%dk_clients_%d_scopes", n/1000, c.clients/1000, c.scopes), func(b *testing.B) {
			dir := b.TempDir()
			logPath := filepath.Join(dir, "kc.log")
			size, err := traffic.KeycloakLog{Lines: n, Clients: c.clients, Scopes: c.scopes, Nets: traffic.Networks(1024)}.Write(logPath)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(size)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				cfgPath, err := traffic.WriteConfig(dir, fmt.Sprintf("run%d", i), logPath, "127.0.0.1:1", traffic.GeoIP{})
				if err != nil {
					b.Fatal(err)
				}
				cfg, err := rules.Load(cfgPath, ingest.Formats{})
				if err != nil {
					b.Fatal(err)
				}
				p, err := daemon.New(cfg, daemon.Options{})
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Scan(context.Background(), []daemon.ScanFiles{{Source: "keycloak", Paths: []string{logPath}}}); err != nil {
					b.Fatal(err)
				}
				if got := p.Committed(); got != uint64(n) {
					b.Fatalf("committed %d lines, want %d", got, n)
				}
				p.Close()
				os.Remove(cfg.Store)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
