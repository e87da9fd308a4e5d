package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// webhookSecret is the credential part of the test webhook URLs: it must
// never appear in output.
const webhookSecret = "T0000/B0000/Zm9vYmFyc2VjcmV0"

// TestAlertTestNetworkCauses checks that `alert test` shows why Slack
// could not be reached (an untrusted certificate, a refused connection, a
// name that does not resolve) with what to check, and never the webhook
// URL, whose path is the credential.
func TestAlertTestNetworkCauses(t *testing.T) {
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the request went through despite the untrusted certificate: %s", r.URL)
	}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is the point
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	// A port on 127.0.0.1 that nothing listens on any more.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	tests := []struct {
		name, webhook string
		want          []string // all in stderr
	}{
		{"untrusted certificate", tlsSrv.URL + "/services/" + webhookSecret, []string{
			"certificate signed by unknown authority", "not trusted", "trust store"}},
		{"connection refused", "http://" + closed + "/services/" + webhookSecret, []string{
			"dial tcp " + closed, "connection refused", "nothing accepts connections there"}},
		{"name does not resolve", "https://hooks.scopewatch-test.invalid/services/" + webhookSecret, []string{
			"lookup hooks.scopewatch-test.invalid", "the name hooks.scopewatch-test.invalid does not resolve"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, filepath.Join(dir, "webhook"), tt.webhook+"\n")
			cfg := filepath.Join(dir, "scopewatch.yaml")
			write(t, cfg, fmt.Sprintf(`store: %[1]s/scopewatch.db
listen: 127.0.0.1:0
sources:
  - {name: keycloak, path: %[1]s/kc.log, format: keycloak}
alert:
  slack: {webhook_url_file: %[1]s/webhook}
`, dir))
			code, out, errOut := runCmd(t, "alert", "test", "--config", cfg)
			t.Log(errOut)
			if code != exitError {
				t.Errorf("exit %d, want %d; stdout %q", code, exitError, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(errOut+out, webhookSecret) || strings.Contains(errOut+out, "/services/") {
				t.Errorf("output shows the webhook URL:\n%s%s", out, errOut)
			}
			if strings.Contains(errOut, "Slack is unreachable") {
				t.Errorf("a generic hint instead of the cause:\n%s", errOut)
			}
		})
	}
}
