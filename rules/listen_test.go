package rules

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestListenOffLoopback checks that a listen address off loopback needs
// TLS and basic auth in web_config, or listen_insecure: true.
func TestListenOffLoopback(t *testing.T) {
	dir := t.TempDir()
	users := filepath.Join(dir, "users.yml")
	// Password test-password, as in testdata/webconfig/basic_auth.yml.
	if err := os.WriteFile(users, []byte("basic_auth_users:\n  ops: $2a$04$jJMHG/Zoh78wF32XQ/bJpeSAS/Vudld6quWNWRKv9ehjTVLrZs72q\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	base := "store: " + dir + "/s.db\nsources:\n  - {name: kc, path: " + dir + "/kc.log, format: keycloak}\n"
	for _, tc := range []struct {
		name, extra, err string
	}{
		{"loopback", "listen: 127.0.0.1:9464\n", ""},
		{"localhost", "listen: localhost:9464\n", ""},
		{"ipv6 loopback", "listen: \"[::1]:9464\"\n", ""},
		{"default", "", ""},
		{"every interface", "listen: 0.0.0.0:9464\n", ":4: listen: listen 0.0.0.0:9464 exposes the API without TLS and basic auth: configure web_config, or set listen_insecure: true to accept it"},
		{"empty host", "listen: \":9464\"\n", "listen :9464 exposes the API without TLS and basic auth"},
		{"a name", "listen: scopewatch.example:9464\n", "exposes the API without TLS and basic auth"},
		{"basic auth without TLS", "listen: 10.0.0.5:9464\nweb_config: " + users + "\n", ":4: listen: listen 10.0.0.5:9464 exposes the API without TLS: configure web_config"},
		{"accepted explicitly", "listen: 0.0.0.0:9464\nlisten_insecure: true\n", ""},
		{"control socket too long", "control_socket: /" + strings.Repeat("x", 120) + "\n", ":4: control_socket: path of 121 bytes is too long"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "c.yaml")
			if err := os.WriteFile(path, []byte(base+tc.extra), 0o644); err != nil {
				t.Fatal(err)
			}
			c, err := Load(path, testFormats)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Load = %v, %v; want an error naming %s and %q", c, err, path, tc.err)
			}
		})
	}
}

func TestControlSocketSetting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	base := "store: " + dir + "/s.db\nsources:\n  - {name: kc, path: " + dir + "/kc.log, format: keycloak}\n"
	if err := os.WriteFile(path, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path, testFormats)
	if err != nil {
		t.Fatal(err)
	}
	if c.ControlSocket != DefaultControlSocket {
		t.Errorf("control_socket = %q, want the default %q", c.ControlSocket, DefaultControlSocket)
	}
	if err := os.WriteFile(path, []byte(base+"control_socket: run/ctl.sock\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err = Load(path, testFormats); err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "run", "ctl.sock"); c.ControlSocket != want {
		t.Errorf("control_socket = %q, want %q (relative to the file)", c.ControlSocket, want)
	}
}
