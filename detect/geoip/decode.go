package geoip

import (
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// placeRecord decodes country.iso_code and location (latitude,
// longitude, accuracy_radius) from a City or Country record and skips
// everything else: a full City record costs several times as much to
// decode, most of it names in many languages.
type placeRecord struct {
	country  string
	lat, lon float64
	radius   uint16 // km, MaxMind's accuracy_radius
	located  bool   // the record has a latitude and a longitude
}

var _ mmdbdata.CursorUnmarshaler = (*placeRecord)(nil)

// UnmarshalMaxMindDBCursor reads the record's country and location.
func (r *placeRecord) UnmarshalMaxMindDBCursor(cur mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	var hasLat, hasLon bool
	next, err := readMap(cur, func(key []byte, v mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		switch string(key) {
		case "country":
			return readMap(v, func(key []byte, v mmdbdata.Cursor) (mmdbdata.Cursor, error) {
				if string(key) != "iso_code" {
					return v.Skip()
				}
				s, next, err := v.ReadStringMaxSize(16)
				if err != nil {
					return next, err
				}
				r.country = s
				return next, nil
			})
		case "location":
			return readMap(v, func(key []byte, v mmdbdata.Cursor) (mmdbdata.Cursor, error) {
				switch string(key) {
				case "latitude":
					f, next, err := v.ReadFloat()
					r.lat, hasLat = f, err == nil
					return next, err
				case "longitude":
					f, next, err := v.ReadFloat()
					r.lon, hasLon = f, err == nil
					return next, err
				case "accuracy_radius":
					n, next, err := v.ReadUint()
					r.radius = uint16(min(n, 20000))
					return next, err
				}
				return v.Skip()
			})
		}
		return v.Skip()
	})
	r.located = hasLat && hasLon && r.lat >= -90 && r.lat <= 90 && r.lon >= -180 && r.lon <= 180
	return next, err
}

// readMap calls field for each key of the map at cur, which must return the
// cursor after the key's value.
func readMap(cur mmdbdata.Cursor, field func(key []byte, v mmdbdata.Cursor) (mmdbdata.Cursor, error)) (mmdbdata.Cursor, error) {
	m, err := cur.MapReader()
	if err != nil {
		return mmdbdata.Cursor{}, err
	}
	next := m.First()
	for range m.Len() {
		key, v, err := next.ReadMapKey()
		if err != nil {
			return mmdbdata.Cursor{}, err
		}
		if next, err = field(key, v); err != nil {
			return mmdbdata.Cursor{}, err
		}
	}
	return m.End(next)
}
