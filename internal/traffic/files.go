package traffic

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/scopewatch/scopewatch/detect/geoip/geoiptest"
)

// KeycloakLog describes a generated Keycloak log of token events in
// Quarkus JSON logging, the bench's.
type KeycloakLog struct {
	Lines, Clients int
	Scopes         int   // per client; 0 for 5 to 9, every token carrying all
	Nets           []Net // the address plan
}

// ScopesText says how many scopes the clients and tokens hold.
func (t KeycloakLog) ScopesText() string {
	if t.Scopes <= 0 {
		return "5-9 scopes per client and token"
	}
	return fmt.Sprintf("%d scopes per client, 4-8 per token", t.Scopes)
}

// WriteKeycloakLog writes n token events of the given number of clients with
// the bench's default traffic.
func WriteKeycloakLog(path string, n, clients int) (int64, error) {
	return KeycloakLog{Lines: n, Clients: clients, Nets: Networks(1024)}.Write(path)
}

// Write writes t.Lines token events spread over 100 days: every
// line a token event (the heaviest Keycloak line), one in two hundred a
// refusal, each client coming from a few public networks of t.Nets.
func (t KeycloakLog) Write(path string) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	start := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	gen := New(7, ScopedClients(7, t.Clients, t.Scopes), start, start.Add(100*24*time.Hour), t.Lines)
	tr := Traffic{Nets: t.Nets}
	if t.Scopes > 0 {
		tr.TokenScopes = 7
	}
	gen.WithTraffic(7, tr)
	var buf []byte
	var size int64
	for i := range t.Lines {
		ev := gen.Next(i)
		ev.Grant = true
		buf = gen.KeycloakQuarkusJSON(buf[:0], ev)
		size += int64(len(buf))
		bw.Write(buf)
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return size, f.Close()
}

// GeoIP are the paths of generated GeoIP databases; zero for none.
type GeoIP struct{ City, ASN string }

// WriteGeoIP writes a City and an ASN database placing every network
// of the plan.
func WriteGeoIP(dir string, nets []Net) (GeoIP, error) {
	entries := make([]geoiptest.Entry, len(nets))
	for i, n := range nets {
		entries[i] = geoiptest.Entry{Network: n.Prefix.String(), Country: n.Country, ASN: n.ASN, Org: fmt.Sprintf("Example Networks %d", n.ASN)}
	}
	g := GeoIP{City: filepath.Join(dir, "city.mmdb"), ASN: filepath.Join(dir, "asn.mmdb")}
	if err := geoiptest.WriteCity(g.City, entries); err != nil {
		return GeoIP{}, err
	}
	if err := geoiptest.WriteASN(g.ASN, entries); err != nil {
		return GeoIP{}, err
	}
	return g, nil
}

// WriteConfig writes dir/name.yaml: a config with one Keycloak source
// reading logPath, the store dir/name.db, the HTTP API at listen, and the
// GeoIP databases of geo when it has any. It returns the config's path.
func WriteConfig(dir, name, logPath, listen string, geo GeoIP) (string, error) {
	cfg := fmt.Sprintf("store: %s\nlisten: %s\nsources:\n  - {name: keycloak, path: %s, format: keycloak}\n",
		filepath.Join(dir, name+".db"), listen, logPath)
	if geo.City != "" {
		cfg += fmt.Sprintf("geoip: {city: %s, asn: %s}\n", geo.City, geo.ASN)
	}
	p := filepath.Join(dir, name+".yaml")
	return p, os.WriteFile(p, []byte(cfg), 0o644)
}
