package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/scopewatch/scopewatch/rules"
)

// peer is who is at the other end of one connection to the API, put in the
// connection's context by the server that accepted it (http.Server's
// ConnContext). A request whose context holds no peer is refused whatever
// it asks for.
type peer struct {
	// socket is true on the control socket, where uid and gid are the
	// kernel's word (SO_PEERCRED) and refused is why the peer check failed.
	socket   bool
	uid, gid uint32
	pid      int32
	refused  error
}

type peerKey struct{}

func withPeer(ctx context.Context, pr *peer) context.Context {
	return context.WithValue(ctx, peerKey{}, pr)
}

func peerOf(ctx context.Context) *peer {
	pr, _ := ctx.Value(peerKey{}).(*peer)
	return pr
}

// TCPConnContext is the http.Server ConnContext of the TCP listener: its
// peers are known only by the basic auth of web_config.
func TCPConnContext(ctx context.Context, _ net.Conn) context.Context {
	return withPeer(ctx, &peer{})
}

// errTCPCredentials is the answer, over TCP, to a request that reads the
// store or changes detection state without basic auth.
var errTCPCredentials = errors.New("this endpoint needs credentials over TCP: use the control socket (scopewatch's commands do) or configure web_config with basic auth")

// caller returns the identity behind r for the endpoints that read the
// store or change detection state: on the control socket the peer's user
// name (its uid when it has none), over TCP the basic auth user that
// exporter-toolkit checked against web_config. It is an error when the
// request has no such identity.
func caller(p *server, r *http.Request) (string, error) {
	pr := peerOf(r.Context())
	switch {
	case pr == nil:
		return "", errors.New("request from an unknown connection refused")
	case pr.socket:
		if pr.refused != nil {
			return "", pr.refused
		}
		return userName(pr.uid), nil
	}
	user, _, ok := r.BasicAuth()
	if !ok || user == "" {
		return "", errTCPCredentials
	}
	// exporter-toolkit answers 401 to every request whose credentials do
	// not match the file when it names users; a request that reaches this
	// handler with a user the file names passed that check.
	ws, err := rules.ReadWebConfig(p.config().WebConfig)
	if p.config().WebConfig == "" || err != nil || !slices.Contains(ws.Users, user) {
		return "", errTCPCredentials
	}
	return user, nil
}

// needsCaller refuses, with 403, a request without an identity (see
// caller).
func needsCaller(p *server, h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := caller(p, r); err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		h(w, r)
	})
}

// userName is the name of the user uid, or the number when it has none.
func userName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil && u.Username != "" {
		return u.Username
	}
	return id
}

// peerCheck says why a peer of the control socket may not use it, or nil
// when it may.
type peerCheck func(pr *peer) error

// socketGroupCheck allows root, the daemon's own user and the members of
// group gid (the socket file's): the peer's primary group, its
// supplementary groups as /proc shows them, or else as the group database
// lists them (ProtectProc=invisible hides other users' processes).
func socketGroupCheck(path string, gid uint32) peerCheck {
	self := uint32(os.Getuid())
	group := strconv.FormatUint(uint64(gid), 10)
	if g, err := user.LookupGroupId(group); err == nil {
		group = g.Name
	}
	return func(pr *peer) error {
		if pr.uid == 0 || pr.uid == self || pr.gid == gid {
			return nil
		}
		if groups, err := procGroups(pr.pid); err == nil && slices.Contains(groups, gid) {
			return nil
		}
		if u, err := user.LookupId(strconv.FormatUint(uint64(pr.uid), 10)); err == nil {
			if ids, err := u.GroupIds(); err == nil && slices.Contains(ids, strconv.FormatUint(uint64(gid), 10)) {
				return nil
			}
		}
		return fmt.Errorf("user %s (uid %d) may not use the control socket %s: join group %s (usermod -aG %s USER, then log in again), or run the command as root",
			userName(pr.uid), pr.uid, path, group, group)
	}
}

// procGroups reads the supplementary groups of process pid.
func procGroups(pid int32) ([]uint32, error) {
	if pid <= 0 {
		return nil, errors.New("no pid")
	}
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(int(pid)), "status"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		var gs []uint32
		for _, g := range strings.Fields(rest) {
			n, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return nil, err
			}
			gs = append(gs, uint32(n))
		}
		return gs, nil
	}
	return nil, errors.New("no Groups line")
}

// socketPeer returns the ConnContext of the control socket: the peer's
// credentials from the kernel, judged by check.
func socketPeer(check peerCheck) func(context.Context, net.Conn) context.Context {
	return func(ctx context.Context, c net.Conn) context.Context {
		pr := &peer{socket: true}
		uc, ok := c.(*net.UnixConn)
		if !ok {
			pr.refused = errors.New("not a unix socket connection")
			return withPeer(ctx, pr)
		}
		cred, err := ucred(uc)
		if err != nil {
			pr.refused = fmt.Errorf("the peer's credentials are unknown: %v", err)
			return withPeer(ctx, pr)
		}
		pr.uid, pr.gid, pr.pid = cred.Uid, cred.Gid, cred.Pid
		pr.refused = check(pr)
		return withPeer(ctx, pr)
	}
}

func ucred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// socketGate refuses every request of a peer the check refused, with a
// 403 that says what to do.
func socketGate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if pr := peerOf(r.Context()); pr == nil || !pr.socket || pr.refused != nil {
			msg := "refused"
			if pr != nil && pr.refused != nil {
				msg = pr.refused.Error()
			}
			http.Error(w, msg, http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// errNoSocketDir is returned by listenControl when the socket's
// directory does not exist: the daemon then runs without the socket.
var errNoSocketDir = errors.New("no directory for the control socket")

// listenControl creates the control socket at path, mode 0660, owned by
// the daemon's user and group. A socket file no daemon answers on is
// stale and removed first; one a daemon answers on, or a file that is no
// socket, is an error.
func listenControl(path string) (*net.UnixListener, error) {
	if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("%w: %s", errNoSocketDir, filepath.Dir(path))
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("control_socket %s exists and is not a socket: remove it or choose another path", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("control_socket %s: another scopewatch daemon answers on it", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale control socket: %w", err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control_socket: %w", err)
	}
	// The directory (RuntimeDirectory=, 0750) keeps others out until the
	// mode is set; the peer check holds whatever the mode.
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("control_socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return ln, nil
}

// socketGID is the group of the file at path.
func socketGID(path string) (uint32, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, fmt.Errorf("no owner for %s", path)
	}
	return st.Gid, nil
}

// ControlServer serves the API on the control socket.
type ControlServer struct {
	path string // "" when the daemon runs without the socket
	srv  *http.Server
	done chan error
}

// StartControl serves h on the control socket at path to the peers
// socketGroupCheck allows; see startControl.
func StartControl(path string, h http.Handler, log interface{ Warn(string, ...any) }) (*ControlServer, error) {
	return startControl(path, h, nil, log)
}

// Path returns the socket's path, or "" when the daemon runs without it.
func (c *ControlServer) Path() string { return c.path }

// startControl serves h on the control socket at path, each peer judged
// by check (socketGroupCheck of the socket's group when nil). A socket
// directory that does not exist (the daemon started outside its systemd
// unit, which creates /run/scopewatch) is a warning: the daemon runs
// without the socket, and the commands must then use basic auth over TCP.
func startControl(path string, h http.Handler, check peerCheck, log interface {
	Warn(string, ...any)
}) (*ControlServer, error) {
	ln, err := listenControl(path)
	if errors.Is(err, errNoSocketDir) {
		log.Warn("no control socket: its directory does not exist; the commands reach the API only over TCP with web_config's basic auth", "control_socket", path)
		return &ControlServer{}, nil
	}
	if err != nil {
		return nil, err
	}
	if check == nil {
		gid, err := socketGID(path)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("control_socket: %w", err)
		}
		check = socketGroupCheck(path, gid)
	}
	c := &ControlServer{path: path, done: make(chan error, 1)}
	c.srv = &http.Server{Handler: socketGate(h), ReadHeaderTimeout: 5 * time.Second, ConnContext: socketPeer(check)}
	go func() { c.done <- c.srv.Serve(ln) }()
	return c, nil
}

// Stop closes the socket, which removes its file, and waits up to 5 s for
// the requests under way.
func (c *ControlServer) Stop(log interface{ Warn(string, ...any) }) {
	if c.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.srv.Shutdown(ctx); err != nil {
		log.Warn("control socket shutdown", "err", err)
	}
	if err := <-c.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("control socket server", "err", err)
	}
	os.Remove(c.path) // Close unlinks it; this is for a server that failed
}
