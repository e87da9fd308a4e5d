package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/scopewatch/scopewatch/rules"
)

// Client asks the running daemon of a configuration, on its control
// socket or at its listen address. Each method's ok is false when no
// daemon answers, so that the caller can read the store file instead.
type Client struct {
	socket, listen string
}

// NewClient returns a client for the daemon that runs cfg.
func NewClient(cfg *rules.Config) *Client {
	return &Client{socket: cfg.ControlSocket, listen: cfg.Listen}
}

// NewPeer returns a client for another instance of a fleet, at its
// listen address, asked over TCP with the credentials of the environment
// (see tcpDaemon).
func NewPeer(addr string) *Client { return &Client{listen: addr} }

// ErrNoClient is the daemon's answer for a client id it has not seen.
var ErrNoClient = errors.New("no such client")

// RefusedError is a request the daemon refused as asked (400, 409), or
// one the client's settings forbid sending: the asker must change it.
type RefusedError struct{ Err error }

// Error returns the daemon's refusal.
func (e RefusedError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e RefusedError) Unwrap() error { return e.Err }

// Get asks the running daemon and decodes its JSON answer into into; ok is false when none answers.
func (c *Client) Get(ctx context.Context, path string, into any) (ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, ok, err := c.Call(ctx, http.MethodGet, path, nil)
	if !ok || err != nil {
		return ok, err
	}
	defer resp.Body.Close()
	at := c.At(resp)
	if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/api/v1/clients/") {
		return true, ErrNoClient
	}
	if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/api/v1/reports/scope/") {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return true, fmt.Errorf("%s (answered by the daemon %s)", strings.TrimSpace(string(b)), at)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return true, fmt.Errorf("daemon %s answered %s: %s", at, resp.Status, bytes.TrimSpace(b))
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return true, fmt.Errorf("read answer of daemon %s: %w", at, err)
	}
	return true, nil
}

// socketHost is the Host of the requests sent on the control socket: a
// TCP address always has a port, so daemonAt tells the two apart.
const socketHost = "localhost"

// At names where the daemon that sent resp answered: "on" the
// control socket or "at" the listen address.
func (c *Client) At(resp *http.Response) string {
	if resp.Request != nil && resp.Request.URL.Host == socketHost {
		return "on " + c.socket
	}
	return "at " + c.listen
}

// Call sends a request to the running daemon, with body encoded as
// JSON when it is not nil; ok is false when no daemon answers. The caller
// closes the response body.
//
// It goes through the control socket when its file exists: the daemon
// knows the caller from the kernel (SO_PEERCRED) and needs no password.
// When the socket is missing or no daemon answers on it, the request goes
// to the listen address over TCP, where the API needs basic auth: see
// tcpDaemon.
func (c *Client) Call(ctx context.Context, method, path string, body any) (resp *http.Response, ok bool, err error) {
	var payload []byte
	if body != nil {
		if payload, err = json.Marshal(body); err != nil {
			return nil, false, err
		}
	}
	resp, ok, sockErr := socketDaemon(ctx, c.socket, method, path, payload)
	if ok || (sockErr != nil && os.Getenv("SCOPEWATCH_API_USER") == "") {
		return resp, ok, sockErr
	}
	resp, ok, err = tcpDaemon(ctx, c.listen, method, path, payload)
	if !ok && err == nil && sockErr != nil {
		return nil, true, sockErr
	}
	return resp, ok, err
}

// socketDaemon sends a request on the control socket at path; ok is
// false when the socket does not exist or nobody listens on it. A socket
// this user may not connect to is an error saying what to do.
func socketDaemon(ctx context.Context, sock, method, path string, payload []byte) (*http.Response, bool, error) {
	if sock == "" {
		return nil, false, nil
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Type() != os.ModeSocket {
		if errors.Is(err, os.ErrPermission) {
			return nil, false, fmt.Errorf("control socket %s: %w: join group scopewatch (usermod -aG scopewatch USER, then log in again), or run the command as root", sock, err)
		}
		return nil, false, nil
	}
	var d net.Dialer
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		},
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+socketHost+path, bodyReader(payload))
	if err != nil {
		return nil, false, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
				return nil, false, fmt.Errorf("control socket %s: permission denied: join group scopewatch (usermod -aG scopewatch USER, then log in again), or run the command as root", sock)
			}
			return nil, false, nil // a stale socket: no daemon runs
		}
		return nil, false, fmt.Errorf("ask daemon on %s: %w", sock, err)
	}
	if resp.StatusCode == http.StatusForbidden {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, true, fmt.Errorf("daemon on %s refused: %s", sock, bytes.TrimSpace(b))
	}
	return resp, true, nil
}

func bodyReader(payload []byte) io.Reader {
	if payload == nil {
		return http.NoBody
	}
	return bytes.NewReader(payload)
}

// tcpDaemon sends a request to the daemon at addr; ok is false when
// nothing listens there.
//
// There the API needs the basic auth of a web_config: the request carries
// the credentials in SCOPEWATCH_API_USER and SCOPEWATCH_API_PASSWORD when
// they are set (over plain http only to a loopback address), and goes over
// https when SCOPEWATCH_API_CA names the CA file the daemon's certificate
// is checked against. A daemon that refuses the request for want of
// either is an error saying which variable to set.
func tcpDaemon(ctx context.Context, addr, method, path string, payload []byte) (resp *http.Response, ok bool, err error) {
	// The daemon is local: never go through an HTTP proxy to reach it.
	transport := &http.Transport{Proxy: nil}
	scheme := "http"
	if ca := os.Getenv("SCOPEWATCH_API_CA"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, false, fmt.Errorf("read SCOPEWATCH_API_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, false, fmt.Errorf("SCOPEWATCH_API_CA: no PEM certificate in %s", ca)
		}
		transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, method, scheme+"://"+addr+path, bodyReader(payload))
	if err != nil {
		return nil, false, err
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	user, password := os.Getenv("SCOPEWATCH_API_USER"), os.Getenv("SCOPEWATCH_API_PASSWORD")
	if user != "" {
		host, _, _ := net.SplitHostPort(addr)
		ip, perr := netip.ParseAddr(host)
		if scheme == "http" && host != "localhost" && (perr != nil || !ip.IsLoopback()) {
			return nil, false, RefusedError{fmt.Errorf("SCOPEWATCH_API_USER is set but the daemon at %s is not on a loopback address: set SCOPEWATCH_API_CA so that the password goes over https", addr)}
		}
		req.SetBasicAuth(user, password)
	}
	client := &http.Client{Transport: transport}
	resp, err = client.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return nil, false, nil // no daemon: use the file
		}
		return nil, false, fmt.Errorf("ask daemon at %s: %w", addr, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") != "":
		resp.Body.Close()
		if user == "" {
			return nil, true, fmt.Errorf("daemon at %s wants basic auth (web_config): set SCOPEWATCH_API_USER and SCOPEWATCH_API_PASSWORD", addr)
		}
		return nil, true, fmt.Errorf("daemon at %s refused the user %q of SCOPEWATCH_API_USER and its SCOPEWATCH_API_PASSWORD", addr, user)
	case resp.StatusCode == http.StatusForbidden && user == "":
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		return nil, true, fmt.Errorf("daemon at %s refused: %s; no control socket answered at its control_socket, and over TCP set SCOPEWATCH_API_USER and SCOPEWATCH_API_PASSWORD to a basic auth user of its web_config", addr, bytes.TrimSpace(b))
	case resp.StatusCode == http.StatusBadRequest && scheme == "http":
		// Go's TLS server answers plain HTTP with this 400 (net/http).
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if bytes.Contains(b, []byte("HTTP request to an HTTPS server")) {
			return nil, true, fmt.Errorf("daemon at %s serves https (web_config): set SCOPEWATCH_API_CA to the PEM file of the CA that signed its certificate", addr)
		}
		resp.Body = io.NopCloser(bytes.NewReader(b))
	}
	return resp, true, nil
}

// Post posts body as JSON to the running daemon and decodes its
// answer into into; ok is false when none answers. An answer 400 or 409
// is a RefusedError: the daemon refused what was asked.
func (c *Client) Post(ctx context.Context, path string, body, into any) (ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if body == nil {
		body = struct{}{}
	}
	resp, ok, err := c.Call(ctx, http.MethodPost, path, body)
	if !ok || err != nil {
		return ok, err
	}
	defer resp.Body.Close()
	at := c.At(resp)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		err := fmt.Errorf("daemon %s answered %s: %s", at, resp.Status, bytes.TrimSpace(b))
		if resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusConflict {
			err = RefusedError{err}
		}
		return true, err
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return true, fmt.Errorf("read answer of daemon %s: %w", at, err)
	}
	return true, nil
}
