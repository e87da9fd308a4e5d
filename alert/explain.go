package alert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"syscall"

	"github.com/scopewatch/scopewatch/rules"
)

// Explain turns a failure of a Slack call (what: "auth.test", "post to
// #c") with the settings s into an error saying what went wrong and what
// to do. A failure to reach Slack shows its underlying error, since
// "network" alone does not tell a DNS failure from a proxy, a firewall or a
// TLS-inspecting middlebox; every secret (see slackSecrets) is cut out of
// the text first, because error texts name URLs and a webhook's URL is its
// credential.
func Explain(what string, err error, s rules.Slack) error {
	secrets := slackSecrets(s)
	var se *SendError
	if !errors.As(err, &se) {
		return fmt.Errorf("slack %s failed: %s", what, redact(err.Error(), secrets))
	}
	if se.Reason != "network" {
		return fmt.Errorf("slack %s failed: %s; %s", what, se.Reason, Hint(se.Reason, se.Retry))
	}
	return fmt.Errorf("slack %s failed: %s; %s", what, redact(se.Err.Error(), secrets), networkHint(se.Err))
}

// networkHint says what to check for an error that kept a request from
// reaching Slack.
func networkHint(err error) string {
	var dns *net.DNSError
	var op *net.OpError
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var badCert x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var ne net.Error
	switch {
	case errors.As(err, &dns):
		return fmt.Sprintf("the name %s does not resolve: check the host of alert.slack's api_url or webhook URL, and this machine's DNS resolver", dns.Name)
	case errors.As(err, &op) && op.Op == "proxyconnect":
		return "the HTTP proxy named by HTTPS_PROXY (or HTTP_PROXY) could not be reached: check it, or unset it if this network needs none"
	case errors.As(err, &unknownCA), errors.As(err, &badHost), errors.As(err, &badCert), errors.As(err, &verify):
		return "the server's TLS certificate is not trusted: a proxy that inspects TLS needs its CA in the system's trust store (or in SSL_CERT_FILE); otherwise check the URL"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing accepts connections there: check the URL, and whether this network needs an HTTP proxy (HTTPS_PROXY)"
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer in time: a firewall may drop the traffic, or this network needs an HTTP proxy (HTTPS_PROXY)"
	}
	return Hint("network", true)
}

// slackSecrets returns what must never appear in output: the token, and
// the webhook URL with its path, which holds the credential.
func slackSecrets(s rules.Slack) []string {
	var out []string
	if t := s.Token(); t != "" {
		out = append(out, t)
	}
	if w := s.Webhook(); w != "" {
		out = append(out, w)
		if u, err := url.Parse(w); err == nil {
			if len(u.EscapedPath()) > 1 {
				out = append(out, u.EscapedPath())
			}
			if len(u.Path) > 1 {
				out = append(out, u.Path)
			}
			if u.RawQuery != "" {
				out = append(out, u.RawQuery)
			}
		}
	}
	return out
}

// redact replaces every secret in msg, longest first so that a URL goes
// as a whole before its path does.
func redact(msg string, secrets []string) string {
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, sec := range secrets {
		if sec != "" {
			msg = strings.ReplaceAll(msg, sec, "[redacted]")
		}
	}
	return msg
}
