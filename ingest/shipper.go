package ingest

import (
	"bytes"
	"time"
)

// Log shippers forward a line inside a JSON event of their own, which is
// what a Kafka topic or a file they write holds:
//
//   - Filebeat and Logstash: {"@timestamp":…,"message":"<line>",
//     "agent":{…},"input":{…},"log":{"file":{…},"offset":…},"ecs":{…},
//     "host":{…}} (Logstash: "@version", "host", "path");
//   - Vector: {"message":"<line>","timestamp":…,"source_type":"file",
//     "host":…,"file":…};
//   - Fluent Bit: {"date":<epoch>,"log":"<line>","stream":…,
//     "kubernetes":{…}} (its tail input's key; "log" first is docker's
//     json-file, read as such).
//
// An event is a shipper's when it has one of their own keys beside the
// line's. Such an envelope is opened only for a line its format's parser
// read as nothing (another logger's record, or malformed), and what the
// inner line yields replaces that outcome only when it holds events: an
// application's own JSON record with a "message" (Keycloak's, in ECS) is
// read as a record first. Only JSON lines read as nothing pay for the
// look, and a run of them that are no envelope pauses it
// (shipMissesBeforePause in wrap.go).
type shipper struct {
	scan jsonScanner
	slot shipperSlots
	buf  []byte
}

// shipperSlots are the capture slots of the shippers' keys: the line's,
// the time's, and those that mark an envelope as a shipper's.
type shipperSlots struct {
	message, log                      int
	atTimestamp, timestamp, date      int
	agent, input, ecs, metadata, host int
	sourceType, kubernetes, version   int
}

func newShipper() *shipper {
	p := newJSONPaths()
	sl := shipperSlots{
		message:     p.add("message"),
		log:         p.add("log"),
		atTimestamp: p.add("@timestamp"),
		timestamp:   p.add("timestamp"),
		date:        p.add("date"),
		agent:       p.add("agent"),
		input:       p.add("input"),
		ecs:         p.add("ecs"),
		metadata:    p.add("@metadata"),
		host:        p.add("host"),
		sourceType:  p.add("source_type"),
		kubernetes:  p.add("kubernetes"),
		version:     p.add("@version"),
	}
	return &shipper{scan: newJSONScanner(p), slot: sl}
}

// open returns the line a shipper's event s carries, with the event's
// time; ok is false when s is no shipper's event.
func (sh *shipper) open(s []byte, loc *time.Location) (line []byte, wt wrapTime, ok bool) {
	// The key of the line first: most records read as nothing (Okta's
	// other event types) have neither, and are not scanned again.
	if !bytes.Contains(s, []byte(`"message"`)) && !bytes.Contains(s, []byte(`"log"`)) {
		return nil, wt, false
	}
	if k, err := sh.scan.scan(s); err != nil || k != jsonObject {
		return nil, wt, false
	}
	v, sl := sh.scan.vals, &sh.slot
	marked := v[sl.agent].kind == jsonObject || v[sl.input].kind == jsonObject || v[sl.ecs].kind == jsonObject ||
		v[sl.metadata].kind == jsonObject || v[sl.host].kind == jsonObject || v[sl.kubernetes].kind == jsonObject ||
		v[sl.log].kind == jsonObject || v[sl.sourceType].kind == jsonString || v[sl.version].present()
	if !marked {
		return nil, wt, false
	}
	sh.buf = sh.buf[:0]
	switch {
	case v[sl.message].kind == jsonString:
		line, _ = idpText(&sh.buf, v[sl.message])
	case v[sl.log].kind == jsonString:
		line, _ = idpText(&sh.buf, v[sl.log])
	default:
		return nil, wt, false
	}
	for _, slot := range [...]int{sl.atTimestamp, sl.timestamp} {
		if tv := v[slot]; tv.kind == jsonString {
			b, _ := idpText(&sh.buf, tv)
			wt.t, wt.ok = parseISOTime(b, loc)
			wt.bad = !wt.ok
			return line, wt, true
		}
	}
	if dv := v[sl.date]; dv.kind == jsonNumber {
		wt.t, wt.ok = parseEpoch(dv.raw, int64(time.Second))
		wt.bad = !wt.ok
	}
	return line, wt, true
}
