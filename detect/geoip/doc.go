// Package geoip tells the country and the autonomous system of a client
// address from MaxMind databases (GeoIP2/GeoLite2 City or Country, and ASN).
//
// It sits in detect, beside the detectors that use it: a detector asks
// Lookup for each event's address, on the hot path, so lookups never fail,
// never do I/O and are cached by network. Internal addresses (loopback,
// private, link-local, CGNAT) are recognised without a lookup. The database
// files are re-read by Reload, or by Watch when they change on disk; a bad
// file keeps the previous databases in service.
package geoip
