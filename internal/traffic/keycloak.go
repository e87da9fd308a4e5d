package traffic

import (
	"strconv"
	"strings"
	"time"
)

// This file is the one writer of Keycloak lines for the generator and the
// scenario: an event's fields in jboss-logging's quoted style, inside a
// Quarkus JSON console record or after the default text prefix.

// quarkusRecord is one record of Keycloak's Quarkus JSON console logging
// (--log-console-output=json).
type quarkusRecord struct {
	time    time.Time
	seq     int64
	logger  string // loggerName, such as org.keycloak.events
	level   string
	message []byte // as logged; escaped here
	thread  int    // executor-thread-N, thread id 40+N
	host    string
}

// appendQuarkusJSON appends r as one JSON object, its keys in the order
// Quarkus writes them, without a newline.
func appendQuarkusJSON(dst []byte, r quarkusRecord) []byte {
	dst = append(dst, `{"timestamp":"`...)
	dst = r.time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","sequence":`...)
	dst = strconv.AppendInt(dst, r.seq, 10)
	dst = append(dst, `,"loggerClassName":"org.jboss.logging.Logger","loggerName":`...)
	dst = appendJSONString(dst, r.logger)
	dst = append(dst, `,"level":`...)
	dst = appendJSONString(dst, r.level)
	dst = append(dst, `,"message":`...)
	dst = appendJSONString(dst, string(r.message))
	dst = append(dst, `,"threadName":"executor-thread-`...)
	dst = strconv.AppendInt(dst, int64(r.thread), 10)
	dst = append(dst, `","threadId":`...)
	dst = strconv.AppendInt(dst, int64(40+r.thread), 10)
	dst = append(dst, `,"mdc":{},"ndc":"","hostName":`...)
	dst = appendJSONString(dst, r.host)
	return append(dst, `,"processName":"QuarkusEntryPoint","processId":1}`...)
}

// appendKeycloakText appends the default console prefix of a
// jboss-logging text line (date, level padded to five, category, thread)
// and message, without a newline.
func appendKeycloakText(dst []byte, t time.Time, level, logger string, thread int, message []byte) []byte {
	dst = t.UTC().AppendFormat(dst, "2006-01-02 15:04:05,000")
	dst = append(dst, ' ')
	dst = append(dst, level...)
	dst = append(dst, "      "[:max(1, 6-len(level))]...)
	dst = append(dst, '[')
	dst = append(dst, logger...)
	dst = append(dst, "] (executor-thread-"...)
	dst = strconv.AppendInt(dst, int64(thread), 10)
	dst = append(dst, ") "...)
	return append(dst, message...)
}

// appendEventField appends one field of an org.keycloak.events message in
// the quoted style, key="value", after a ", " unless it is the first.
func appendEventField(dst []byte, first bool, key, value string) []byte {
	if !first {
		dst = append(dst, ", "...)
	}
	dst = append(dst, key...)
	dst = append(dst, `="`...)
	dst = append(dst, value...)
	return append(dst, '"')
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	if !strings.ContainsFunc(s, func(r rune) bool { return r == '"' || r == '\\' || r < 0x20 }) {
		return append(append(b, s...), '"')
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, `\u00`...)
			b = append(b, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
