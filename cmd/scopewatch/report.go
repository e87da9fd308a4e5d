package main

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
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/scopewatch/scopewatch/alert"
	"github.com/scopewatch/scopewatch/detect"
	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

func cmdReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	action, err := groupAction("report", args, stdout)
	if err != nil {
		return err
	}
	if action == "unused" {
		return reportUnused(ctx, args, stdout, stderr)
	}
	return reportScope(ctx, args[1:], stdout, stderr)
}

func reportUnused(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report unused")
	configPath := fs.String("config", "", configUsage)
	client := fs.String("client", "", "only this client")
	format := fs.String("format", "table", "table, json, csv or markdown")
	at := fs.String("at", "", "judge as of this time (RFC 3339 or date) instead of now")
	if err := parseFlags(fs, args[1:], stdout); err != nil {
		return err
	}
	switch *format {
	case alert.FormatTable, alert.FormatJSON, alert.FormatCSV, alert.FormatMarkdown:
	default:
		return usagef("unknown format %q; use table, json, csv or markdown", *format)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	now := time.Now
	if *at != "" {
		t, err := parseAt(*at)
		if err != nil {
			return err
		}
		now = func() time.Time { return t }
	}
	var rep detect.UnusedReport
	q := url.Values{}
	if *client != "" {
		q.Set("client", *client)
	}
	if *at != "" {
		q.Set("at", now().Format(time.RFC3339))
	}
	err = readState(ctx, cfg, "/api/v1/reports/unused?"+q.Encode(), &rep, func(db *store.DB) error {
		var err error
		if rep, err = unusedReport(cfg, db, now); err != nil {
			return err
		}
		if *client != "" {
			rep = filterReport(rep, *client)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if *client != "" && len(rep.Unused) == 0 && len(rep.Pending) == 0 {
		if err := checkClient(ctx, cfg, *client); err != nil {
			return err
		}
	}
	return alert.WriteUnused(stdout, rep, *format)
}

// reportScope prints, for one scope, the clients that hold or use it and
// whether removing it from the catalog would break one of them.
func reportScope(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("report scope")
	configPath := fs.String("config", "", configUsage)
	format := fs.String("format", "table", "table, json, csv or markdown")
	// The name may come before or after the flags.
	var name string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	rest := fs.Args()
	if name == "" && len(rest) > 0 {
		name, rest = rest[0], rest[1:]
	}
	if name == "" {
		return usagef("report scope needs the name of a scope: report scope NAME --config FILE")
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	switch *format {
	case alert.FormatTable, alert.FormatJSON, alert.FormatCSV, alert.FormatMarkdown:
	default:
		return usagef("unknown format %q; use table, json, csv or markdown", *format)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var rep alert.ScopeReport
	err = readState(ctx, cfg, "/api/v1/reports/scope/"+url.PathEscape(name), &rep, func(db *store.DB) error {
		var err error
		rep, err = scopeReport(cfg, db, name, time.Now)
		return err
	})
	if err != nil {
		return err
	}
	return alert.WriteScope(stdout, rep, *format)
}

// scopeReport computes the per-scope report from the stored clients with
// the configured window, registrations and catalog.
func scopeReport(cfg *rules.Config, db *store.DB, name string, now func() time.Time) (alert.ScopeReport, error) {
	cs, err := db.Clients()
	if err != nil {
		return alert.ScopeReport{}, err
	}
	opt := alert.ScopeOptions{Scope: name, Window: time.Duration(cfg.Detect.UnusedScope.Window), Now: now}
	if cfg.Rules != nil {
		opt.Registrations, opt.Catalog = cfg.Rules.Clients, cfg.Rules.Scopes
	}
	return alert.Scope(cs, opt)
}

func cmdClients(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("clients")
	configPath := fs.String("config", "", configUsage)
	client := fs.String("client", "", "only this client")
	format := fs.String("format", "table", "table or json")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *format != alert.FormatTable && *format != alert.FormatJSON {
		return usagef("unknown format %q; use table or json", *format)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	var views []alert.ClientView
	if *client != "" {
		one, err := seenClient(ctx, cfg, *client)
		if err != nil {
			return err
		}
		views = []alert.ClientView{one}
	} else {
		err = readState(ctx, cfg, "/api/v1/clients", &views, func(db *store.DB) error {
			cs, err := db.Clients()
			if err != nil {
				return err
			}
			views = alert.Views(cs)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return alert.WriteClients(stdout, views, *format)
}

var errNoClient = errors.New("no such client")

// seenClient returns what the store holds about client id, from the
// running daemon or the store file. A client no log line has named yet is
// an error saying so, and whether the rules register it.
func seenClient(ctx context.Context, cfg *rules.Config, id string) (alert.ClientView, error) {
	var one alert.ClientView
	err := readState(ctx, cfg, "/api/v1/clients/"+url.PathEscape(id), &one, func(db *store.DB) error {
		c, ok, err := db.Client(id)
		if err != nil {
			return err
		}
		if !ok {
			return errNoClient
		}
		one = alert.Views([]store.Client{c})[0]
		return nil
	})
	if errors.Is(err, errNoClient) {
		if registered(cfg, id) {
			return one, fmt.Errorf("client %q has not been seen: the rules register it, but no log line has named it yet", id)
		}
		return one, fmt.Errorf("unknown client %q: no log line has named it and the rules do not register it; `scopewatch clients` lists the clients seen", id)
	}
	return one, err
}

// checkClient returns an error unless the store has seen client id or the
// rules register it. A command filtered by --client that has nothing to
// show calls it: a misspelled client would otherwise print an empty
// report, which reads as a clean bill.
func checkClient(ctx context.Context, cfg *rules.Config, id string) error {
	if registered(cfg, id) {
		return nil
	}
	_, err := seenClient(ctx, cfg, id)
	return err
}

// registered reports whether the rules register client id.
func registered(cfg *rules.Config, id string) bool {
	if cfg.Rules == nil {
		return false
	}
	_, ok := cfg.Rules.Clients[id]
	return ok
}

// readState gets data from the running daemon's API when it is up,
// because bbolt lets only one process hold the file; otherwise it opens the
// store read-only and calls fromFile.
func readState(ctx context.Context, cfg *rules.Config, path string, into any, fromFile func(*store.DB) error) error {
	ok, err := fromDaemon(ctx, cfg, path, into)
	if ok || err != nil {
		return err
	}
	db, err := store.Open(cfg.Store, store.Options{ReadOnly: true})
	if errors.Is(err, store.ErrLocked) {
		return fmt.Errorf("%w; no scopewatch API answered on %s nor at %s (the control_socket and listen of %s), so the running daemon must use others", err, cfg.ControlSocket, cfg.Listen, cfg.File)
	}
	if err != nil {
		return err
	}
	defer db.Close()
	return fromFile(db)
}

// fromDaemon asks the running daemon; ok is false when none answers.
func fromDaemon(ctx context.Context, cfg *rules.Config, path string, into any) (ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, ok, err := callDaemon(ctx, cfg, http.MethodGet, path, nil)
	if !ok || err != nil {
		return ok, err
	}
	defer resp.Body.Close()
	at := daemonAt(cfg, resp)
	if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(path, "/api/v1/clients/") {
		return true, errNoClient
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

// daemonAt names where the daemon that sent resp answered: "on" the
// control socket or "at" the listen address.
func daemonAt(cfg *rules.Config, resp *http.Response) string {
	if resp.Request != nil && resp.Request.URL.Host == socketHost {
		return "on " + cfg.ControlSocket
	}
	return "at " + cfg.Listen
}

// callDaemon sends a request to the running daemon, with body encoded as
// JSON when it is not nil; ok is false when no daemon answers. The caller
// closes the response body.
//
// It goes through the control socket when its file exists: the daemon
// knows the caller from the kernel (SO_PEERCRED) and needs no password.
// When the socket is missing or no daemon answers on it, the request goes
// to the listen address over TCP, where the API needs basic auth: see
// tcpDaemon.
func callDaemon(ctx context.Context, cfg *rules.Config, method, path string, body any) (resp *http.Response, ok bool, err error) {
	var payload []byte
	if body != nil {
		if payload, err = json.Marshal(body); err != nil {
			return nil, false, err
		}
	}
	resp, ok, sockErr := socketDaemon(ctx, cfg.ControlSocket, method, path, payload)
	if ok || (sockErr != nil && os.Getenv("SCOPEWATCH_API_USER") == "") {
		return resp, ok, sockErr
	}
	resp, ok, err = tcpDaemon(ctx, cfg.Listen, method, path, payload)
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
			return nil, false, usagef("SCOPEWATCH_API_USER is set but the daemon at %s is not on a loopback address: set SCOPEWATCH_API_CA so that the password goes over https", addr)
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
