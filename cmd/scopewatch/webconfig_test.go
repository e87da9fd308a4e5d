package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startWebDaemon runs the daemon on the demo configuration with web_config
// set to webConfig, and returns its address, the path of a configuration
// that names that address (for CLI commands) and a stop function that
// waits for a clean exit. The configuration for the commands names a
// control socket in a directory that does not exist, so that they go over
// TCP.
func startWebDaemon(t *testing.T, dir, webConfig string) (addr, cfgPath string, stop func()) {
	t.Helper()
	extra := "web_config: " + webConfig + "\n"
	addr, _, stop = startDaemonWith(t, dir, extra)
	cfgPath = filepath.Join(dir, "tcp.yaml")
	cfg := strings.Replace(sprintfConfig(dir), "127.0.0.1:0", addr, 1)
	cfg = strings.Replace(cfg, "control_socket: "+filepath.Join(dir, "ctl.sock"), "control_socket: "+filepath.Join(dir, "none", "ctl.sock"), 1)
	write(t, cfgPath, cfg+extra)
	return addr, cfgPath, stop
}

// status sends a GET to url, with basic auth when user is not empty, and
// returns the answer's status code.
func status(t *testing.T, client *http.Client, url, user, password string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestWebConfigBasicAuth(t *testing.T) {
	webConfig, err := filepath.Abs(filepath.Join("..", "..", "testdata", "webconfig", "basic_auth.yml"))
	if err != nil {
		t.Fatal(err)
	}
	addr, cfgPath, stop := startWebDaemon(t, t.TempDir(), webConfig)
	defer stop()

	client := &http.Client{Transport: &http.Transport{Proxy: nil}}
	cases := []struct {
		name, path, user, password string
		want                       int
	}{
		{"metrics without credentials", "/metrics", "", "", http.StatusUnauthorized},
		{"metrics with a wrong password", "/metrics", "prometheus", "wrong", http.StatusUnauthorized},
		{"metrics with an unknown user", "/metrics", "admin", "test-password", http.StatusUnauthorized},
		{"metrics with the right credentials", "/metrics", "prometheus", "test-password", http.StatusOK},
		{"healthz without credentials", "/healthz", "", "", http.StatusUnauthorized},
		{"healthz with the right credentials", "/healthz", "prometheus", "test-password", http.StatusOK},
		{"api without credentials", "/api/v1/clients", "", "", http.StatusUnauthorized},
		{"api with the right credentials", "/api/v1/clients", "prometheus", "test-password", http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := status(t, client, "http://"+addr+c.path, c.user, c.password); got != c.want {
				t.Errorf("GET %s = %d, want %d", c.path, got, c.want)
			}
		})
	}

	// CLI commands: an actionable error without credentials, the answer
	// with them.
	code, _, errOut := runCmd(t, "clients", "--config", cfgPath)
	if code == exitOK || !strings.Contains(errOut, "SCOPEWATCH_API_USER") {
		t.Errorf("clients without credentials: exit %d, stderr %q; want a failure naming SCOPEWATCH_API_USER", code, errOut)
	}
	t.Setenv("SCOPEWATCH_API_USER", "prometheus")
	t.Setenv("SCOPEWATCH_API_PASSWORD", "wrong")
	code, _, errOut = runCmd(t, "findings", "--config", cfgPath)
	if code == exitOK || !strings.Contains(errOut, "refused") {
		t.Errorf("findings with a wrong password: exit %d, stderr %q; want a refusal", code, errOut)
	}
	t.Setenv("SCOPEWATCH_API_PASSWORD", "test-password")
	if code, _, errOut := runCmd(t, "clients", "--config", cfgPath, "--format", "json"); code != exitOK {
		t.Errorf("clients with credentials: exit %d, stderr %s", code, errOut)
	}
	if code, _, errOut := runCmd(t, "report", "unused", "--config", cfgPath, "--format", "json"); code != exitOK {
		t.Errorf("report unused with credentials: exit %d, stderr %s", code, errOut)
	}
	// Writes and the store copy over TCP with basic auth: the author is the
	// basic auth user, and no other name is taken.
	code, out, errOut := runCmd(t, "silence", "add", "--config", cfgPath, "--kind", "unused_scope", "--for", "1d", "--reason", "r")
	if code != exitOK || strings.TrimSpace(out) != "s1" {
		t.Fatalf("silence add with credentials: exit %d, %q %s", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "silence", "list", "--config", cfgPath, "--format", "json")
	if code != exitOK || !strings.Contains(out, `"author": "prometheus"`) {
		t.Errorf("silence list: exit %d, %s %s; want author prometheus", code, out, errOut)
	}
	code, _, errOut = runCmd(t, "silence", "add", "--config", cfgPath, "--kind", "unused_scope", "--for", "1d", "--reason", "r", "--author", "admin")
	if code == exitOK || !strings.Contains(errOut, `author "admin" refused`) {
		t.Errorf("silence add --author admin: exit %d, %s; want a refusal", code, errOut)
	}
	if code, _, errOut := runCmd(t, "silence", "expire", "s1", "--config", cfgPath); code != exitOK {
		t.Errorf("silence expire with credentials: exit %d, %s", code, errOut)
	}
	if code, out, errOut := runCmd(t, "backup", "--config", cfgPath, "--output", filepath.Join(t.TempDir(), "b.db")); code != exitOK || !strings.Contains(out, "running daemon") {
		t.Errorf("backup with credentials: exit %d, %s %s", code, out, errOut)
	}
	t.Setenv("SCOPEWATCH_API_USER", "")
	if code, _, errOut := runCmd(t, "backup", "--config", cfgPath, "--output", filepath.Join(t.TempDir(), "b.db")); code == exitOK || !strings.Contains(errOut, "SCOPEWATCH_API_USER") {
		t.Errorf("backup without credentials: exit %d, %s; want a failure naming SCOPEWATCH_API_USER", code, errOut)
	}
}

func TestWebConfigTLS(t *testing.T) {
	dir := t.TempDir()
	certPEM := writeSelfSigned(t, dir)
	write(t, filepath.Join(dir, "web.yml"), "tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n")
	addr, cfgPath, stop := startWebDaemon(t, dir, "web.yml")
	defer stop()

	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal("no certificate in the generated PEM")
	}
	httpsClient := &http.Client{Transport: &http.Transport{Proxy: nil, TLSClientConfig: &tls.Config{RootCAs: pool}}}
	for _, path := range []string{"/metrics", "/healthz"} {
		if got := status(t, httpsClient, "https://"+addr+path, "", ""); got != http.StatusOK {
			t.Errorf("GET https %s = %d, want 200", path, got)
		}
	}
	// TLS without basic auth is no identity: the store stays closed.
	for _, path := range []string{"/api/v1/clients", "/api/v1/backup", "/api/v1/silences"} {
		if got := status(t, httpsClient, "https://"+addr+path, "", ""); got != http.StatusForbidden {
			t.Errorf("GET https %s = %d, want 403", path, got)
		}
	}
	plain := &http.Client{Transport: &http.Transport{Proxy: nil}}
	if got := status(t, plain, "http://"+addr+"/metrics", "", ""); got != http.StatusBadRequest {
		t.Errorf("GET http /metrics = %d, want 400 (plain HTTP to a TLS server)", got)
	}
	// A client that does not trust the certificate is refused.
	if _, err := http.Get("https://" + addr + "/metrics"); err == nil {
		t.Error("GET https with the system roots: no error, want an unknown authority")
	}

	code, _, errOut := runCmd(t, "clients", "--config", cfgPath)
	if code == exitOK || !strings.Contains(errOut, "SCOPEWATCH_API_CA") {
		t.Errorf("clients without SCOPEWATCH_API_CA: exit %d, stderr %q; want a failure naming SCOPEWATCH_API_CA", code, errOut)
	}
	t.Setenv("SCOPEWATCH_API_CA", filepath.Join(dir, "cert.pem"))
	if code, _, errOut := runCmd(t, "clients", "--config", cfgPath, "--format", "json"); code == exitOK || !strings.Contains(errOut, "control socket") || !strings.Contains(errOut, "SCOPEWATCH_API_USER") {
		t.Errorf("clients with SCOPEWATCH_API_CA only: exit %d, stderr %s; want a refusal naming the control socket and SCOPEWATCH_API_USER", code, errOut)
	}
	// The control socket serves the same daemon without a password.
	sockCfg := filepath.Join(dir, "scopewatch.yaml")
	if code, _, errOut := runCmd(t, "clients", "--config", sockCfg, "--format", "json"); code != exitOK {
		t.Errorf("clients on the control socket: exit %d, stderr %s", code, errOut)
	}
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key to dir as cert.pem and key.pem, and returns the certificate's PEM.
func writeSelfSigned(t *testing.T, dir string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "scopewatch test"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	write(t, filepath.Join(dir, "cert.pem"), string(certPEM))
	write(t, filepath.Join(dir, "key.pem"), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
	return certPEM
}
