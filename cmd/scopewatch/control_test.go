package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// asOperator serves h to requests that come, as far as the API can tell,
// from the daemon's own user on the control socket: the in-process tests
// of handlers (httptest requests carry no connection of their own).
func asOperator(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pr := &peer{socket: true, uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
		h.ServeHTTP(w, r.WithContext(withPeer(r.Context(), pr)))
	})
}

// socketClient is an HTTP client that reaches the daemon on the control
// socket at path, whatever the host of the URL.
func socketClient(path string) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		},
	}}
}

// withControlSocket adds a control_socket beside the configuration file
// at cfg unless it names one, and returns the socket's path.
func withControlSocket(t *testing.T, cfg string) string {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(filepath.Dir(cfg), "ctl.sock")
	if m := regexp.MustCompile(`(?m)^control_socket: (.+)$`).FindSubmatch(b); m != nil {
		return string(m[1])
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	write(t, cfg, string(b)+"control_socket: "+sock+"\n")
	return sock
}
