package detect

import (
	"net/netip"
	"testing"
)

// TestNetKey: a packed network key names the network it stands for, and
// addresses of one network share it.
func TestNetKey(t *testing.T) {
	for _, c := range []struct {
		ip, other string
		want      string
	}{
		{"203.0.113.7", "203.0.113.250", "203.0.113.0/24"},
		{"0.0.0.1", "0.0.0.255", "0.0.0.0/24"},
		{"255.255.255.1", "255.255.255.2", "255.255.255.0/24"},
		{"2001:db8:abcd:12::1", "2001:db8:abcd:ffff::9", "2001:db8:abcd::/48"},
		{"ffff:ffff:ffff:1::", "ffff:ffff:ffff::", "ffff:ffff:ffff::/48"},
	} {
		k, o := prefixKey(netip.MustParseAddr(c.ip)), prefixKey(netip.MustParseAddr(c.other))
		if k.String() != c.want || k != o || k.isASN() {
			t.Errorf("%s: key %s (ASN %v), %s: %s; want both %s", c.ip, k, k.isASN(), c.other, o, c.want)
		}
	}
	if v4, v6 := prefixKey(netip.MustParseAddr("0.0.0.1")), prefixKey(netip.MustParseAddr("::1")); v4 == v6 {
		t.Errorf("0.0.0.0/24 and ::/48 share the key %x", uint64(v4))
	}
	if k := asnKey(4294967295); k.String() != "AS4294967295" || !k.isASN() || k == prefixKey(netip.MustParseAddr("255.255.255.255")) {
		t.Errorf("AS 4294967295: key %s (ASN %v)", k, k.isASN())
	}
}
