package ingest

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scopewatch/scopewatch/rules"
	"github.com/scopewatch/scopewatch/store"
)

// innerRecorder is a format parser that records the line and wrapper time
// it was handed, to check the wrapper layer alone.
type innerRecorder struct {
	line []byte
	wt   wrapTime
}

func (r *innerRecorder) Parse(line []byte, pos Position, dst []Event) ([]Event, error) {
	return r.parseWrapped(line, pos, wrapTime{}, dst)
}

func (r *innerRecorder) parseWrapped(line []byte, pos Position, wt wrapTime, dst []Event) ([]Event, error) {
	r.line, r.wt = append(r.line[:0], line...), wt
	return append(dst, Event{Kind: KindUse, Pos: pos}), nil
}

func newTestUnwrap(t testing.TB, wrapper, zone string) (*unwrapping, *innerRecorder) {
	t.Helper()
	rec := &innerRecorder{}
	p, err := newUnwrapping(rules.Source{Name: "src", Wrapper: wrapper, TimeZone: zone}, rec)
	if err != nil {
		t.Fatal(err)
	}
	u := p.(*unwrapping)
	u.now = func() time.Time { return time.Date(2024, 3, 20, 0, 0, 0, 0, time.UTC) }
	return u, rec
}

const innerText = `2024-03-14 09:15:27,801 INFO  [org.keycloak.events] (executor-thread-7) type="CLIENT_LOGIN", clientId="a"`

func TestUnwrap(t *testing.T) {
	tests := []struct {
		name, line, want, time string // time "" when no wrapper gives one
	}{
		{"none", innerText, innerText, ""},
		{"bom", "\xef\xbb\xbf" + innerText, innerText, ""},
		{"two boms", "\xef\xbb\xbf\xef\xbb\xbf" + innerText, innerText, ""},
		{"docker of boms", `{"log":"\ufeff \ufeff` + strings.ReplaceAll(innerText, `"`, `\"`) + `\n","stream":"stdout"}`, innerText, ""},
		{"docker json-file", `{"log":"` + strings.ReplaceAll(innerText, `"`, `\"`) + `\n","stream":"stdout","time":"2024-03-14T09:15:27.80412Z"}`, innerText, "2024-03-14T09:15:27.80412Z"},
		{"docker stderr no time", `{"log":"x y\n","stream":"stderr"}`, "x y", ""},
		{"cri", "2024-03-14T09:15:27.801234567Z stdout F " + innerText, innerText, "2024-03-14T09:15:27.801234567Z"},
		{"cri offset", "2024-03-14T10:15:27.5+01:00 stderr F " + innerText, innerText, "2024-03-14T09:15:27.5Z"},
		{"compose", "keycloak-1  | " + innerText, innerText, ""},
		{"compose coloured", "\x1b[36mkeycloak-1  |\x1b[0m " + innerText, innerText, ""},
		{"compose -t", "clinic-identity-provider-keycloak-primary-1  | 2024-03-14T09:15:27.801234567Z " + innerText, innerText, "2024-03-14T09:15:27.801234567Z"},
		{"compose behind local time", "2024-03-14 10:15:27.801  keycloak-1  | " + innerText, innerText, "2024-03-14T10:15:27.801Z"},
		{"rfc3164", "Mar 14 09:15:27 idp-01 kc.sh[1432]: " + innerText, innerText, "2024-03-14T09:15:27Z"},
		{"rfc3164 padded day", "Mar  4 09:15:27 idp-01 kc.sh: " + innerText, innerText, "2024-03-04T09:15:27Z"},
		{"rfc3164 pri", "<134>Mar 14 09:15:27 idp-01 keycloak: " + innerText, innerText, "2024-03-14T09:15:27Z"},
		{"rfc5424", "<134>1 2024-03-14T09:15:27.801Z idp-01 keycloak 1432 - - " + innerText, innerText, "2024-03-14T09:15:27.801Z"},
		{"rfc5424 sd and bom", `<134>1 2024-03-14T09:15:27Z idp-01 keycloak - - [meta x="a \"]\" b"] ` + "\xef\xbb\xbf" + innerText, innerText, "2024-03-14T09:15:27Z"},
		{"rsyslog iso", "2024-03-14T09:15:27.801+00:00 idp-01 keycloak[1432]: " + innerText, innerText, "2024-03-14T09:15:27.801Z"},
		{"journald short-precise", "Mar 14 09:15:27.801234 idp-01 kc.sh[1432]: " + innerText, innerText, "2024-03-14T09:15:27.801234Z"},
		{"journald short-iso", "2024-03-14T09:15:27+0000 idp-01 kc.sh[1432]: " + innerText, innerText, "2024-03-14T09:15:27Z"},
		{"journald short-full", "Thu 2024-03-14 09:15:27 UTC idp-01 kc.sh[1432]: " + innerText, innerText, "2024-03-14T09:15:27Z"},
		{"journald short-unix", "1710407727.801234 idp-01 kc.sh[1432]: " + innerText, innerText, "2024-03-14T09:15:27.801234Z"},
		{"journald json", `{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1710407727801234","_HOSTNAME":"idp-01","MESSAGE":"` + strings.ReplaceAll(innerText, `"`, `\"`) + `"}`, innerText, "2024-03-14T09:15:27.801234Z"},
		{"docker logs -t", "2022-01-09T20:19:47.081898017+01:00 19:19:47,081 DEBUG [org.keycloak.events] x", "19:19:47,081 DEBUG [org.keycloak.events] x", "2022-01-09T19:19:47.081898017Z"},
		{"docker logs -t of json", `2024-03-14T09:15:27.5Z {"time":1}`, `{"time":1}`, "2024-03-14T09:15:27.5Z"},
		{"docker logs -t of envoy", `2024-03-14T09:15:27.5Z [2024-03-14T09:15:27.499Z] "GET / HTTP/1.1" 200`, `[2024-03-14T09:15:27.499Z] "GET / HTTP/1.1" 200`, "2024-03-14T09:15:27.5Z"},
		{"iso time then thread untouched", "2024-03-14T09:15:27.801Z [http-nio-8080-exec-1] INFO x", "2024-03-14T09:15:27.801Z [http-nio-8080-exec-1] INFO x", ""},
		{"iso time without zone untouched", "2024-03-14T09:15:27.801 19 x", "2024-03-14T09:15:27.801 19 x", ""},
		{"syslog inside docker", `{"log":"Mar 14 09:15:29 idp-01 kc: x\n","stream":"stdout","time":"2024-03-14T09:15:27Z"}`, "x", "2024-03-14T09:15:27Z"},
		{"nginx untouched", `203.0.113.9 - - [25/Oct/2016:14:49:33 +0200] "GET / HTTP/1.1" 200 612 "-" "curl/8.4.0"`, `203.0.113.9 - - [25/Oct/2016:14:49:33 +0200] "GET / HTTP/1.1" 200 612 "-" "curl/8.4.0"`, ""},
		{"envoy untouched", `[2024-03-14T09:15:27.801Z] "GET /fhir/Patient HTTP/1.1" 200 - 0 1 2 1 "-" "curl" "id" "host" "10.0.0.1:80"`, `[2024-03-14T09:15:27.801Z] "GET /fhir/Patient HTTP/1.1" 200 - 0 1 2 1 "-" "curl" "id" "host" "10.0.0.1:80"`, ""},
		{"json event untouched", `{"time":1,"type":"LOGIN","realmId":"r"}`, `{"time":1,"type":"LOGIN","realmId":"r"}`, ""},
		{"iso text untouched", "2024-03-14T09:15:27.801Z INFO [org.keycloak.events] x", "2024-03-14T09:15:27.801Z INFO [org.keycloak.events] x", ""},
		{"host colon untouched", "Mar 14 09:15:27 idp-01: not a tag", "Mar 14 09:15:27 idp-01: not a tag", ""},
		{"nginx nohostname", "<190>Mar 14 09:15:27 nginx: " + innerText, innerText, "2024-03-14T09:15:27Z"},
		{"tag with pid, no host", "<190>Mar 14 09:15:27 nginx[42]: " + innerText, innerText, "2024-03-14T09:15:27Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, rec := newTestUnwrap(t, "", "")
			evs, err := u.Parse([]byte(tt.line), Position{Line: 1}, nil)
			if err != nil || len(evs) != 1 {
				t.Fatalf("Parse = %d events, %v", len(evs), err)
			}
			if string(rec.line) != tt.want {
				t.Errorf("inner line = %q, want %q", rec.line, tt.want)
			}
			got := ""
			if rec.wt.ok {
				got = rec.wt.t.UTC().Format(time.RFC3339Nano)
			}
			if got != tt.time || rec.wt.bad {
				t.Errorf("wrapper time = %q (bad %v), want %q", got, rec.wt.bad, tt.time)
			}
		})
	}
}

func TestUnwrapFixed(t *testing.T) {
	docker := `{"log":"x\n","stream":"stdout","time":"2024-03-14T09:15:27Z"}`
	cri := "2024-03-14T09:15:27Z stdout F x"
	syslog := "Mar 14 09:15:27 idp-01 kc: x"
	tests := []struct {
		wrapper, line, want, reason string
	}{
		{WrapDocker, docker, "x", ""},
		{WrapDocker, cri, "", ReasonBadWrapper},
		{WrapCRI, cri, "x", ""},
		{WrapCRI, docker, "", ReasonBadWrapper},
		{WrapSyslog, syslog, "x", ""},
		{WrapJournald, syslog, "x", ""},
		{WrapCompose, "kc-1 | x", "x", ""},
		{WrapCompose, syslog, "", ReasonBadWrapper},
		{WrapNone, docker, docker, ""},
		{WrapNone, "\xef\xbb\xbfx", "x", ""},
		{WrapNone, "\xef\xbb\xbf\xef\xbb\xbfx", "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.wrapper+" "+tt.line, func(t *testing.T) {
			u, rec := newTestUnwrap(t, tt.wrapper, "")
			_, err := u.Parse([]byte(tt.line), Position{Source: "src", Line: 3}, nil)
			if tt.reason != "" {
				pe, ok := err.(*ParseError)
				if !ok || pe.Reason != tt.reason || !strings.Contains(pe.Error(), "wrapper: auto") {
					t.Fatalf("Parse error = %v, want %s naming the setting", err, tt.reason)
				}
				return
			}
			if err != nil || string(rec.line) != tt.want {
				t.Errorf("Parse = %q, %v, want %q", rec.line, err, tt.want)
			}
		})
	}
	if _, err := NewParser(rules.Source{Name: "s", Format: "nginx", Wrapper: "dockr"}); err == nil || !strings.Contains(err.Error(), "unknown wrapper") {
		t.Errorf("NewParser(wrapper dockr) error = %v, want unknown wrapper", err)
	}
}

// TestUnwrapCRIPieces checks that P pieces are joined raw up to their F,
// that a piece of another file starts a new line, and that an overlong
// joined line is too_long.
func TestUnwrapCRIPieces(t *testing.T) {
	u, rec := newTestUnwrap(t, "", "")
	a := Position{File: store.FileID{Dev: 1, Ino: 1}}
	b := Position{File: store.FileID{Dev: 1, Ino: 2}}
	parse := func(line string, pos Position) error {
		_, err := u.Parse([]byte(line), pos, nil)
		return err
	}
	if err := parse("2024-03-14T09:15:27Z stdout P type=CLIENT_LOGIN, ", a); err != SkipPartial {
		t.Fatalf("first piece: %v, want SkipPartial", err)
	}
	if err := parse("2024-03-14T09:15:28Z stdout P clientId=a, ", a); err != SkipPartial {
		t.Fatalf("second piece: %v", err)
	}
	if err := parse("2024-03-14T09:15:29Z stdout F scope=s", a); err != nil {
		t.Fatalf("last piece: %v", err)
	}
	if string(rec.line) != "type=CLIENT_LOGIN, clientId=a, scope=s" || !rec.wt.t.Equal(time.Date(2024, 3, 14, 9, 15, 27, 0, time.UTC)) {
		t.Errorf("joined = %q at %v, want the pieces in order at the first piece's time", rec.line, rec.wt.t)
	}
	_ = parse("2024-03-14T09:15:30Z stdout P lost, ", a)
	if err := parse("2024-03-14T09:15:31Z stdout F other", b); err != nil || string(rec.line) != "other" {
		t.Errorf("a line of another file = %q, %v, want it alone", rec.line, err)
	}
	big := strings.Repeat("x", maxPartial/2+1)
	_ = parse("2024-03-14T09:15:32Z stdout P "+big, a)
	_ = parse("2024-03-14T09:15:32Z stdout P "+big, a)
	err := parse("2024-03-14T09:15:32Z stdout F end", a)
	if pe, ok := err.(*ParseError); !ok || pe.Reason != ReasonTooLong {
		t.Errorf("overlong joined line: %v, want too_long", err)
	}
	if err := parse("2024-03-14T09:15:33Z stdout F next", a); err != nil || string(rec.line) != "next" {
		t.Errorf("after an overlong line = %q, %v", rec.line, err)
	}
}

// TestUnwrapDockerPieces checks that Docker's json-file entries of a
// line over 16 KiB (the log without its newline) are joined up to the one
// with it, and that a short entry without a newline is a line of its own.
func TestUnwrapDockerPieces(t *testing.T) {
	u, rec := newTestUnwrap(t, "", "")
	pos := Position{File: store.FileID{Dev: 1, Ino: 1}}
	long := strings.Repeat("a", dockerSplit)
	entry := func(log string) string {
		return `{"log":"` + log + `","stream":"stdout","time":"2024-03-14T09:15:27Z"}`
	}
	if _, err := u.Parse([]byte(entry(long)), pos, nil); err != SkipPartial {
		t.Fatalf("a 16 KiB entry without a newline: %v, want SkipPartial", err)
	}
	if _, err := u.Parse([]byte(entry(`tail\n`)), pos, nil); err != nil {
		t.Fatalf("the entry that ends the line: %v", err)
	}
	if string(rec.line) != long+"tail" {
		t.Errorf("joined line of %d bytes, want %d", len(rec.line), len(long)+4)
	}
	if _, err := u.Parse([]byte(entry(`last words`)), pos, nil); err != nil || string(rec.line) != "last words" {
		t.Errorf("a short entry without a newline = %q, %v; want a line of its own", rec.line, err)
	}
}

// TestTimeOfDayDate checks the documented rule for a time-only prefix:
// the date that puts it closest to the wrapper's time, in the source's
// zone, across midnight either way.
func TestTimeOfDayDate(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no tzdata:", err)
	}
	tests := []struct {
		tod     string
		wrapper time.Time
		loc     *time.Location
		want    time.Time
	}{
		{"09:15:27,801", time.Date(2024, 3, 14, 9, 15, 28, 0, time.UTC), time.UTC, time.Date(2024, 3, 14, 9, 15, 27, 801e6, time.UTC)},
		{"23:59:59,990", time.Date(2024, 3, 15, 0, 0, 0, 5e6, time.UTC), time.UTC, time.Date(2024, 3, 14, 23, 59, 59, 990e6, time.UTC)},
		{"00:00:00.010", time.Date(2024, 3, 14, 23, 59, 59, 0, time.UTC), time.UTC, time.Date(2024, 3, 15, 0, 0, 0, 10e6, time.UTC)},
		{"00:30:00", time.Date(2024, 3, 14, 23, 30, 1, 0, time.UTC), berlin, time.Date(2024, 3, 15, 0, 30, 0, 0, berlin)},
		{"02:30:00", time.Date(2024, 12, 31, 23, 0, 0, 0, time.UTC), time.UTC, time.Date(2025, 1, 1, 2, 30, 0, 0, time.UTC)},
	}
	for _, tt := range tests {
		c, ok := parseTimeOfDay([]byte(tt.tod))
		if !ok {
			t.Fatalf("parseTimeOfDay(%q) failed", tt.tod)
		}
		if got := c.date(tt.wrapper, tt.loc); !got.Equal(tt.want) {
			t.Errorf("%s dated by %v in %v = %v, want %v", tt.tod, tt.wrapper, tt.loc, got, tt.want)
		}
	}
	for _, bad := range []string{"9:15:27", "24:00:00", "09:60:00", "09:15:27,", "09:15:27x", "09:15"} {
		if _, ok := parseTimeOfDay([]byte(bad)); ok {
			t.Errorf("parseTimeOfDay(%q) accepted", bad)
		}
	}
}

// TestWrappedFormats runs real parsers behind wrappers they meet in
// deployments: each line must give the same event as the bare line.
func TestWrappedFormats(t *testing.T) {
	type tc struct {
		src  rules.Source
		bare string
	}
	nginx := `198.51.100.23 - - [14/Mar/2024:09:15:27 +0100] "GET /fhir/Observation?patient=123 HTTP/1.1" 200 18931 "-" "curl/8.4.0"`
	traefik := `{"ClientHost":"10.0.0.2","DownstreamStatus":200,"RequestMethod":"GET","RequestPath":"/fhir/Patient/123","StartUTC":"2024-03-14T09:15:27.123456789Z","request_X-Client-Id":"fhir-portal","time":"2024-03-14T10:15:27+01:00"}`
	okta := `{"eventType":"app.oauth2.as.token.grant.access_token","published":"2024-03-14T09:15:27.000Z","actor":{"id":"0oa1","type":"PublicClientApp"},"client":{"ipAddress":"198.51.100.23"},"outcome":{"result":"SUCCESS"},"debugContext":{"debugData":{"grantedScopes":"openid, profile"}}}`
	cases := []tc{
		{rules.Source{Name: "nginx", Format: "nginx"}, nginx},
		{rules.Source{Name: "traefik", Format: "traefik"}, traefik},
		{rules.Source{Name: "okta", Format: "okta"}, okta},
	}
	quote := func(s string) string { return strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) }
	for _, c := range cases {
		wrapped := map[string]string{
			"bom":    "\xef\xbb\xbf" + c.bare,
			"docker": `{"log":"` + quote(c.bare) + `\n","stream":"stdout","time":"2024-03-14T09:15:28Z"}`,
			"cri":    "2024-03-14T09:15:28.000000001Z stdout F " + c.bare,
			"syslog": "Mar 14 09:15:28 gw-01 " + c.src.Name + "[77]: " + c.bare,
		}
		bare := newTestParser(t, c.src)
		want, err := bare.Parse([]byte(c.bare), Position{Line: 1}, nil)
		if err != nil || len(want) != 1 {
			t.Fatalf("%s bare line: %d events, %v", c.src.Name, len(want), err)
		}
		for name, line := range wrapped {
			t.Run(c.src.Name+" "+name, func(t *testing.T) {
				p := newTestParser(t, c.src)
				got, err := p.Parse([]byte(line), Position{Line: 1}, nil)
				if err != nil || len(got) != 1 {
					t.Fatalf("Parse = %d events, %v", len(got), err)
				}
				g, w := toGolden(got[0]), toGolden(want[0])
				if g.Client != w.Client || g.Time != w.Time || g.IP != w.IP || g.Path != w.Path || strings.Join(g.Granted, " ") != strings.Join(w.Granted, " ") {
					t.Errorf("wrapped event %+v, want %+v", g, w)
				}
			})
		}
	}
}

func newTestParser(t testing.TB, src rules.Source) Parser {
	t.Helper()
	p, err := NewParser(src)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FuzzUnwrap checks that the wrapper layer never panics, never hands on
// more than the line held, and keeps the parse contract.
func FuzzUnwrap(f *testing.F) {
	for _, s := range []string{
		innerText,
		`{"log":"x\n","stream":"stdout","time":"2024-03-14T09:15:27Z"}`,
		"2024-03-14T09:15:27Z stdout P a",
		"2024-03-14T09:15:27Z stdout F b",
		"keycloak-1  | 2024-03-14T09:15:27Z x",
		"2024-03-14 10:15:27.801  keycloak-1  | x",
		"<134>1 2024-03-14T09:15:27Z h a 1 - [x y=\"]\"] m",
		"<13>Mar 14 09:15:27 h t: m",
		"Mar 14 09:15:27.801234 h t[1]: m",
		"Thu 2024-03-14 09:15:27 CET h t: m",
		"1710407727.801234 h t: m",
		`{"__REALTIME_TIMESTAMP":"1710407727801234","MESSAGE":"m"}`,
		"\xef\xbb\xbf",
	} {
		f.Add([]byte(s))
	}
	u, rec := newTestUnwrap(f, "", "")
	f.Fuzz(func(t *testing.T, line []byte) {
		rec.line = rec.line[:0]
		evs, err := u.Parse(line, Position{Source: "fuzz", Line: 1}, nil)
		if !checkOutcome(t, line, evs, err) {
			return
		}
		if len(rec.line) > len(line)+len(u.partial)+maxPartial {
			t.Fatalf("inner line of %d bytes from a line of %d", len(rec.line), len(line))
		}
		if bytes.HasPrefix(rec.line, utf8BOM) {
			t.Fatalf("BOM handed on: %q", rec.line)
		}
	})
}

// TestShipperEnvelopes: a line inside a log shipper's JSON event
// (Filebeat, Logstash, Vector, Fluent Bit), as a Kafka topic or a
// shipper's file holds it, is read as the line it carries, dated by the
// line's own time; an application's JSON record with a "message" of its
// own, and an envelope whose line yields nothing, keep their outcome.
func TestShipperEnvelopes(t *testing.T) {
	const kcText = `2024-03-14 09:15:27,801 DEBUG [org.keycloak.events] (executor-thread-1) type="CODE_TO_TOKEN", realmId="r1", clientId="lab-app", userId="u1", ipAddress="203.0.113.9", scope="openid patient/Observation.rs"`
	const ngx = `203.0.113.5 - - [14/Mar/2024:09:15:27 +0000] "GET /fhir/Patient/1 HTTP/1.1" 200 612 "-" "curl/8"`
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	kc := newTestParser(t, rules.Source{Name: "kc", Format: "keycloak"})
	gw := newTestParser(t, rules.Source{Name: "gw", Format: "nginx"})
	pos := Position{Source: "s", Line: 1}
	for _, c := range []struct {
		name string
		p    Parser
		line string
	}{
		{"filebeat", kc, `{"@timestamp":"2024-03-14T09:15:28.000Z","@metadata":{"beat":"filebeat"},"log":{"offset":12,"file":{"path":"/var/log/keycloak.log"}},"message":` + q(kcText) + `,"input":{"type":"filestream"},"agent":{"type":"filebeat"},"ecs":{"version":"8.0.0"},"host":{"name":"kc-0"}}`},
		{"logstash", kc, `{"@version":"1","@timestamp":"2024-03-14T09:15:28.000Z","host":"kc-0","path":"/var/log/keycloak.log","message":` + q(kcText) + `}`},
		{"vector", kc, `{"file":"/var/log/keycloak.log","host":"kc-0","message":` + q(kcText) + `,"source_type":"file","timestamp":"2024-03-14T09:15:28.000Z"}`},
		{"fluent bit", kc, `{"date":1710407728.0,"stream":"stdout","log":` + q(kcText) + `,"kubernetes":{"pod_name":"kc-0"}}`},
		{"filebeat nginx", gw, `{"@timestamp":"2024-03-14T09:15:28.000Z","message":` + q(ngx) + `,"agent":{"type":"filebeat"}}`},
		{"filebeat syslog", gw, `{"@timestamp":"2024-03-14T09:15:28.000Z","message":` + q("<190>Mar 14 09:15:27 web-1 nginx: "+ngx) + `,"agent":{"type":"filebeat"}}`},
	} {
		evs, err := c.p.Parse([]byte(c.line), pos, nil)
		if err != nil || len(evs) != 1 {
			t.Errorf("%s: %d events, %v; want the line's event", c.name, len(evs), err)
			continue
		}
		if evs[0].Time.Second() != 27 {
			t.Errorf("%s: time %v, want the line's own (09:15:27)", c.name, evs[0].Time)
		}
	}
	// Keycloak's own JSON (ECS) of another logger stays another logger's,
	// and an envelope of a line that is not the format's stays what the
	// envelope was read as.
	for _, c := range []struct {
		name string
		p    Parser
		line string
		want error
	}{
		{"keycloak ecs, other logger", kc, `{"@timestamp":"2024-03-14T09:15:28.000Z","log.logger":"org.keycloak.services","message":"Keycloak started","ecs":{"version":"1.12.2"}}`, SkipOtherLogger},
		{"filebeat, other logger", kc, `{"@timestamp":"2024-03-14T09:15:28.000Z","message":"2024-03-14 09:15:27,801 INFO  [io.quarkus] (main) started","agent":{"type":"filebeat"}}`, nil},
	} {
		evs, err := c.p.Parse([]byte(c.line), pos, nil)
		if len(evs) != 0 || err == nil || (c.want != nil && err != c.want) {
			t.Errorf("%s: %d events, %v; want no event (%v)", c.name, len(evs), err, c.want)
		}
	}
}

// TestColouredLines: a console's ANSI colours (Keycloak's
// --log-console-color) go wherever they are in the line, and journalctl's
// -o json, which writes such a message as an array of its bytes, is read
// as the text.
func TestColouredLines(t *testing.T) {
	const plain = `2024-03-14 09:15:27,801 DEBUG [org.keycloak.events] (executor-thread-1) type="CODE_TO_TOKEN", realmId="r1", clientId="lab-app", userId="u1", ipAddress="203.0.113.9", scope="openid patient/Observation.rs"`
	coloured := "\x1b[0m2024-03-14 09:15:27,801 \x1b[36mDEBUG\x1b[39m [\x1b[35morg.keycloak.events\x1b[39m] (executor-thread-1) " + plain[strings.Index(plain, "type="):] + "\x1b[0m"
	var arr []string
	for _, b := range []byte(coloured) {
		arr = append(arr, strconv.Itoa(int(b)))
	}
	kc := newTestParser(t, rules.Source{Name: "kc", Format: "keycloak"})
	for name, line := range map[string]string{
		"coloured":         coloured,
		"journald bytes":   `{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1710407728000000","MESSAGE":[` + strings.Join(arr, ",") + `]}`,
		"syslog, coloured": "<134>Mar 14 09:15:27 kc-0 keycloak: " + coloured,
		"tput sgr0":        "\x1b(B\x1b[m" + coloured,
		"filebeat, coloured": `{"@timestamp":"2024-03-14T09:15:28.000Z","agent":{"type":"filebeat"},"message":` +
			jsonText(coloured) + `}`,
	} {
		evs, err := kc.Parse([]byte(line), Position{Source: "kc", Line: 1}, nil)
		if err != nil || len(evs) != 1 || evs[0].Client != "lab-app" || len(evs[0].Granted) != 2 {
			t.Errorf("%s: %+v, %v; want the grant to lab-app", name, evs, err)
		}
	}
	// Bytes out of range, a sequence without its end: no panic, no loop.
	for _, line := range []string{
		`{"__CURSOR":"s=1","MESSAGE":[27,256,48]}`,
		`{"__CURSOR":"s=1","MESSAGE":[27,"a"]}`,
		"\x1b[0m2024-03-14 09:15:27,801 DEBUG \x1b[",
		"\x1b",
	} {
		if evs, err := kc.Parse([]byte(line), Position{Source: "kc", Line: 1}, nil); err == nil || len(evs) != 0 {
			t.Errorf("%q: %+v, %v; want no event", line, evs, err)
		}
	}
}

// TestShipperPause: after shipMissesBeforePause JSON lines in a row that
// read as nothing and carry no envelope (an application's own records),
// the next shipPauseLines such lines are not opened, then envelopes are
// looked for again.
func TestShipperPause(t *testing.T) {
	kc := newTestParser(t, rules.Source{Name: "kc", Format: "keycloak"})
	pos := Position{Source: "kc", Line: 1}
	const own = `{"timestamp":"2024-03-14T09:15:27.801Z","loggerName":"io.quarkus","level":"INFO","message":"started"}`
	env := `{"@timestamp":"2024-03-14T09:15:28.000Z","agent":{"type":"filebeat"},"message":` + jsonText(
		`2024-03-14 09:15:27,801 DEBUG [org.keycloak.events] (executor-thread-1) type="CODE_TO_TOKEN", clientId="lab-app", scope="openid"`) + `}`
	read := func() bool {
		evs, _ := kc.Parse([]byte(env), pos, nil)
		return len(evs) == 1
	}
	if !read() {
		t.Fatal("an envelope is not read")
	}
	for range shipMissesBeforePause {
		kc.Parse([]byte(own), pos, nil)
	}
	if read() {
		t.Error("an envelope right after a run of the application's own records is read: want the pause")
	}
	for range shipPauseLines {
		kc.Parse([]byte(own), pos, nil)
	}
	if !read() {
		t.Error("after the pause an envelope is not read")
	}
}

// jsonText returns s as a JSON string.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
