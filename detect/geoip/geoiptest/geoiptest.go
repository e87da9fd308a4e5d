// Package geoiptest writes small MaxMind DB files for tests: Country, City
// and ASN databases with the record shapes of MaxMind's GeoLite2 files, so
// that tests exercise the real reader on real files instead of a fake.
package geoiptest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"

	"github.com/scopewatch/scopewatch/internal/durable"
)

// Entry is one network of a test database. Network is in CIDR notation,
// IPv4 ("203.0.113.0/25") or IPv6 ("2001:db8::/32"). Country is an
// ISO 3166-1 alpha-2 code, or "" for a record without a country. ASN and Org
// are the autonomous system number and organisation written to ASN
// databases; Country, City and ASN writers each use only their own fields.
type Entry struct {
	Network string
	Country string
	ASN     uint32
	Org     string
}

// WriteCountry writes a database of type "GeoLite2-Country" to path. Each
// record has the shape of MaxMind's Country records: continent, country and
// registered_country, each with codes, a geoname_id and English names.
// The file is replaced atomically.
func WriteCountry(path string, entries []Entry) error {
	return write(path, "GeoLite2-Country", entries, countryRecord)
}

// WriteCity writes a database of type "GeoLite2-City" to path. Each record
// has the shape of MaxMind's City records: city, continent, country,
// location and registered_country; city and location are filled for the
// countries geoiptest knows and left out for others. The file is replaced
// atomically.
func WriteCity(path string, entries []Entry) error {
	return write(path, "GeoLite2-City", entries, cityRecord)
}

// WriteASN writes a database of type "GeoLite2-ASN" to path, with records
// {autonomous_system_number, autonomous_system_organization}. An entry with
// ASN 0 gets an empty record. The file is replaced atomically.
func WriteASN(path string, entries []Entry) error {
	return write(path, "GeoLite2-ASN", entries, asnRecord)
}

// country is what geoiptest knows of a country to fill names, continents
// and locations in the shapes MaxMind uses.
type country struct {
	name      string
	geonameID uint32
	continent string
	capital   string
	cityID    uint32
	lat, lon  float64
	timeZone  string
}

var countries = map[string]country{
	"US": {"United States", 6252001, "NA", "Washington", 4140963, 38.8951, -77.0364, "America/New_York"},
	"CA": {"Canada", 6251999, "NA", "Ottawa", 6094817, 45.4112, -75.6981, "America/Toronto"},
	"BR": {"Brazil", 3469034, "SA", "Brasília", 3469058, -15.7797, -47.9297, "America/Sao_Paulo"},
	"DE": {"Germany", 2921044, "EU", "Berlin", 2950159, 52.5244, 13.4105, "Europe/Berlin"},
	"FR": {"France", 3017382, "EU", "Paris", 2988507, 48.8534, 2.3488, "Europe/Paris"},
	"GB": {"United Kingdom", 2635167, "EU", "London", 2643743, 51.5085, -0.1257, "Europe/London"},
	"NL": {"Netherlands", 2750405, "EU", "Amsterdam", 2759794, 52.374, 4.8897, "Europe/Amsterdam"},
	"RU": {"Russia", 2017370, "EU", "Moscow", 524901, 55.7522, 37.6156, "Europe/Moscow"},
	"CN": {"China", 1814991, "AS", "Beijing", 1816670, 39.9075, 116.3972, "Asia/Shanghai"},
	"IN": {"India", 1269750, "AS", "New Delhi", 1261481, 28.6358, 77.2245, "Asia/Kolkata"},
	"JP": {"Japan", 1861060, "AS", "Tokyo", 1850147, 35.6895, 139.6917, "Asia/Tokyo"},
	"AU": {"Australia", 2077456, "OC", "Canberra", 2172517, -35.2835, 149.1281, "Australia/Sydney"},
	"ZA": {"South Africa", 953987, "AF", "Pretoria", 964137, -25.7449, 28.1878, "Africa/Johannesburg"},
}

var continents = map[string]struct {
	name      string
	geonameID uint32
}{
	"AF": {"Africa", 6255146},
	"AS": {"Asia", 6255147},
	"EU": {"Europe", 6255148},
	"NA": {"North America", 6255149},
	"OC": {"Oceania", 6255151},
	"SA": {"South America", 6255150},
}

func names(en string) mmdbtype.Map {
	return mmdbtype.Map{"en": mmdbtype.String(en)}
}

// countryFields adds continent, country and registered_country to rec.
func countryFields(rec mmdbtype.Map, code string) {
	if code == "" {
		return
	}
	c, known := countries[code]
	cm := mmdbtype.Map{"iso_code": mmdbtype.String(code)}
	if known {
		cm["geoname_id"] = mmdbtype.Uint32(c.geonameID)
		cm["names"] = names(c.name)
		if code == "DE" || code == "FR" || code == "NL" {
			cm["is_in_european_union"] = mmdbtype.Bool(true)
		}
		if ct, ok := continents[c.continent]; ok {
			rec["continent"] = mmdbtype.Map{
				"code":       mmdbtype.String(c.continent),
				"geoname_id": mmdbtype.Uint32(ct.geonameID),
				"names":      names(ct.name),
			}
		}
	} else {
		cm["names"] = names(code)
	}
	rec["country"] = cm
	rec["registered_country"] = cm.Copy()
}

func countryRecord(e Entry) mmdbtype.Map {
	rec := mmdbtype.Map{}
	countryFields(rec, e.Country)
	return rec
}

func cityRecord(e Entry) mmdbtype.Map {
	rec := mmdbtype.Map{}
	countryFields(rec, e.Country)
	if c, ok := countries[e.Country]; ok {
		rec["city"] = mmdbtype.Map{
			"geoname_id": mmdbtype.Uint32(c.cityID),
			"names":      names(c.capital),
		}
		rec["location"] = mmdbtype.Map{
			"accuracy_radius": mmdbtype.Uint16(100),
			"latitude":        mmdbtype.Float64(c.lat),
			"longitude":       mmdbtype.Float64(c.lon),
			"time_zone":       mmdbtype.String(c.timeZone),
		}
	}
	return rec
}

func asnRecord(e Entry) mmdbtype.Map {
	rec := mmdbtype.Map{}
	if e.ASN != 0 {
		rec["autonomous_system_number"] = mmdbtype.Uint32(e.ASN)
	}
	if e.Org != "" {
		rec["autonomous_system_organization"] = mmdbtype.String(e.Org)
	}
	return rec
}

// write builds an IPv6 tree (IPv4 networks are inserted under ::/96 and
// aliased from ::ffff:0:0/96 as in MaxMind's files) and writes it to path
// through a temporary file in the same directory and a rename, so that a
// reader or a watcher never sees half a file.
func write(path, dbType string, entries []Entry, record func(Entry) mmdbtype.Map) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: dbType,
		Description:  map[string]string{"en": dbType + " test database"},
		Languages:    []string{"en"},
		IPVersion:    6,
		RecordSize:   28,
		BuildEpoch:   time.Now().Unix(),
		// Tests may want entries in private or documentation ranges.
		IncludeReservedNetworks: true,
	})
	if err != nil {
		return fmt.Errorf("new %s tree: %w", dbType, err)
	}
	for _, e := range entries {
		_, network, err := net.ParseCIDR(e.Network)
		if err != nil {
			return fmt.Errorf("entry %q: %w", e.Network, err)
		}
		if err := tree.Insert(network, record(e)); err != nil {
			return fmt.Errorf("insert %s: %w", e.Network, err)
		}
	}

	// Renamed into place whole, as a database update does: a reader
	// reloading it sees the old file or the new one.
	return durable.Replace(path, 0o644, func(f io.Writer) error {
		w := bufio.NewWriter(f)
		if _, err := tree.WriteTo(w); err != nil {
			return err
		}
		return w.Flush()
	})
}
