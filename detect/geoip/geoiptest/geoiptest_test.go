package geoiptest

import (
	"net/netip"
	"path/filepath"
	"testing"

	geoip2 "github.com/oschwald/geoip2-golang/v2"
)

// The files must read like MaxMind's through the full geoip2 models, which
// other packages' tests may rely on.

func open(t *testing.T, write func(string, []Entry) error, entries []Entry) *geoip2.Reader {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.mmdb")
	if err := write(path, entries); err != nil {
		t.Fatal(err)
	}
	r, err := geoip2.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

var entries = []Entry{
	{Network: "198.51.100.0/24", Country: "DE", ASN: 64500, Org: "Example Transit"},
	{Network: "2001:db8::/32", Country: "XX", ASN: 64501, Org: "Example Six"},
	{Network: "10.0.0.0/8", Country: "US"},
}

func TestWriteCity(t *testing.T) {
	r := open(t, WriteCity, entries)
	if got, want := r.Metadata().DatabaseType, "GeoLite2-City"; got != want {
		t.Errorf("database type = %q, want %q", got, want)
	}
	c, err := r.City(netip.MustParseAddr("198.51.100.7"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Country.ISOCode != "DE" || c.Country.Names.English != "Germany" || !c.Country.IsInEuropeanUnion {
		t.Errorf("country = %+v, want DE, Germany, in the EU", c.Country)
	}
	if c.RegisteredCountry.ISOCode != "DE" {
		t.Errorf("registered country = %q, want DE", c.RegisteredCountry.ISOCode)
	}
	if c.Continent.Code != "EU" || c.Continent.Names.English != "Europe" {
		t.Errorf("continent = %+v, want EU, Europe", c.Continent)
	}
	if c.City.Names.English != "Berlin" || c.Location.TimeZone != "Europe/Berlin" || c.Location.Latitude == nil {
		t.Errorf("city = %+v, location = %+v, want Berlin, Europe/Berlin with coordinates", c.City, c.Location)
	}
	if got, want := c.Traits.Network, netip.MustParsePrefix("198.51.100.0/24"); got != want {
		t.Errorf("network = %v, want %v", got, want)
	}

	unknown, err := r.City(netip.MustParseAddr("2001:db8::1"))
	if err != nil {
		t.Fatal(err)
	}
	if unknown.Country.ISOCode != "XX" || unknown.City.HasData() {
		t.Errorf("record of an unknown code = %+v, want country XX and no city", unknown)
	}
	private, err := r.City(netip.MustParseAddr("10.1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	if private.Country.ISOCode != "US" {
		t.Errorf("private range country = %q, want US", private.Country.ISOCode)
	}
}

func TestWriteCountry(t *testing.T) {
	r := open(t, WriteCountry, entries)
	if got, want := r.Metadata().DatabaseType, "GeoLite2-Country"; got != want {
		t.Errorf("database type = %q, want %q", got, want)
	}
	c, err := r.Country(netip.MustParseAddr("::ffff:198.51.100.7"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Country.ISOCode != "DE" || c.RegisteredCountry.ISOCode != "DE" || c.Continent.Code != "EU" {
		t.Errorf("record = %+v, want DE in EU", c)
	}
}

func TestWriteASN(t *testing.T) {
	r := open(t, WriteASN, entries)
	if got, want := r.Metadata().DatabaseType, "GeoLite2-ASN"; got != want {
		t.Errorf("database type = %q, want %q", got, want)
	}
	a, err := r.ASN(netip.MustParseAddr("2001:db8:ff::1"))
	if err != nil {
		t.Fatal(err)
	}
	if a.AutonomousSystemNumber != 64501 || a.AutonomousSystemOrganization != "Example Six" {
		t.Errorf("record = %+v, want 64501 Example Six", a)
	}
	none, err := r.ASN(netip.MustParseAddr("10.1.2.3"))
	if err != nil {
		t.Fatal(err)
	}
	if none.HasData() {
		t.Errorf("entry without ASN = %+v, want no data", none)
	}
}

func TestWriteBadNetwork(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.mmdb")
	if err := WriteASN(path, []Entry{{Network: "198.51.100.0"}}); err == nil {
		t.Error("WriteASN with a network without a length succeeded, want an error")
	}
}
