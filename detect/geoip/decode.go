package geoip

import (
	"github.com/oschwald/maxminddb-golang/v2/mmdbdata"
)

// countryCode decodes country.iso_code from a City or Country record and
// skips everything else: a full City record costs several times as much
// to decode, most of it names in many languages.
type countryCode string

var _ mmdbdata.CursorUnmarshaler = (*countryCode)(nil)

// UnmarshalMaxMindDBCursor reads country.iso_code from a record.
func (c *countryCode) UnmarshalMaxMindDBCursor(cur mmdbdata.Cursor) (mmdbdata.Cursor, error) {
	return readMap(cur, func(key []byte, v mmdbdata.Cursor) (mmdbdata.Cursor, error) {
		if string(key) != "country" {
			return v.Skip()
		}
		return readMap(v, func(key []byte, v mmdbdata.Cursor) (mmdbdata.Cursor, error) {
			if string(key) != "iso_code" {
				return v.Skip()
			}
			s, next, err := v.ReadStringMaxSize(16)
			if err != nil {
				return next, err
			}
			*c = countryCode(s)
			return next, nil
		})
	})
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
