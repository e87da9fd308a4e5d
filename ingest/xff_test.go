package ingest

import (
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	lb := netip.MustParseAddr("10.1.1.1")
	tests := []struct {
		name   string
		xff    string
		remote netip.Addr
		want   string
	}{
		{"no header, untrusted peer", "", netip.MustParseAddr("198.51.100.7"), "198.51.100.7"},
		{"untrusted peer ignores header", "203.0.113.9", netip.MustParseAddr("198.51.100.7"), "198.51.100.7"},
		{"one hop", "203.0.113.9", lb, "203.0.113.9"},
		{"forged entry left of the real client", "1.1.1.1, 203.0.113.9", lb, "203.0.113.9"},
		{"trusted hops skipped from the right", "203.0.113.9, 10.2.2.2, 10.3.3.3", lb, "203.0.113.9"},
		{"all trusted: left-most", "10.9.9.9, 10.2.2.2", lb, "10.9.9.9"},
		{"ports and brackets", "[2001:db8::7]:443, 10.2.2.2:8080", lb, "2001:db8::7"},
		{"ipv6 trusted proxy", "2001:db8::7, 2001:db8:ffff::1", lb, "2001:db8::7"},
		{"junk entries skipped", "unknown, 203.0.113.9, -", lb, "203.0.113.9"},
		{"mapped v4", "::ffff:203.0.113.9", lb, "203.0.113.9"},
		{"nothing usable falls back to peer", "unknown", lb, "10.1.1.1"},
		{"no peer, header only", "203.0.113.9, 10.2.2.2", netip.Addr{}, "203.0.113.9"},
		{"nothing at all", "", netip.Addr{}, "invalid IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ClientIP(tt.xff, tt.remote, trusted).String(); got != tt.want {
				t.Errorf("ClientIP(%q, %v) = %s, want %s", tt.xff, tt.remote, got, tt.want)
			}
		})
	}
}

func TestClientIPDefaultTrust(t *testing.T) {
	// No ranges configured: private, loopback and link-local hops are proxies.
	tests := []struct{ xff, remote, want string }{
		{"198.51.100.23, 10.0.0.2", "10.0.0.1", "198.51.100.23"},
		{"198.51.100.23, 192.168.1.5", "127.0.0.1", "198.51.100.23"},
		{"2001:db8::23, fd00::5", "fe80::1", "2001:db8::23"},
		{"198.51.100.23", "203.0.113.1", "203.0.113.1"}, // a public peer is the client
	}
	for _, tt := range tests {
		if got := ClientIP(tt.xff, netip.MustParseAddr(tt.remote), nil).String(); got != tt.want {
			t.Errorf("ClientIP(%q, %s, nil) = %s, want %s", tt.xff, tt.remote, got, tt.want)
		}
	}
}

func BenchmarkClientIP(b *testing.B) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	lb := netip.MustParseAddr("10.1.1.1")
	b.ReportAllocs()
	for b.Loop() {
		ClientIP("203.0.113.9, 10.2.2.2, 10.3.3.3", lb, trusted)
	}
}
