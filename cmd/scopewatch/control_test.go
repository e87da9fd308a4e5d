package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/scopewatch/scopewatch/api"
)

// asOperator serves h on a real control socket, as the daemon does, and
// returns a handler that forwards each request to it: the requests reach
// the API from this test's own user, a peer the socket lets in, so that
// in-process tests of handlers go through the same access check.
func asOperator(t *testing.T, h http.Handler) http.Handler {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	sock := filepath.Join(t.TempDir(), "ctl.sock")
	c, err := api.StartControl(sock, h, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(log) })
	client := socketClient(sock)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := r.Clone(r.Context())
		out.RequestURI, out.URL.Scheme, out.URL.Host = "", "http", r.Host
		resp, err := client.Transport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		maps.Copy(w.Header(), resp.Header)
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
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

// socketGet gets path from the daemon on the control socket sock.
func socketGet(t *testing.T, sock, path string) (int, string) {
	t.Helper()
	resp, err := socketClient(sock).Get("http://localhost" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
