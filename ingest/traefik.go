package ingest

// traefikPreset covers Traefik's JSON access log, in the v2/v3 field set
// and in the v1 one (BackendName, FrontendName, RequestLine), which keeps
// the same names for the fields read here. Headers appear only when the
// access log keeps them, as request_<Header-Name>: fields.client can name
// one such as request_X-Client-Id; otherwise the client is the basic-auth
// ClientUsername. ClientHost is the peer, and request_X-Forwarded-For,
// when kept, is resolved against the trusted proxies.
var traefikPreset = gwPreset{
	time:    []gwTimePath{{"StartUTC", timeRFC3339}, {"StartLocal", timeRFC3339}, {"time", timeRFC3339}},
	client:  []string{"ClientUsername"},
	xff:     []string{"request_X-Forwarded-For"},
	remote:  []string{"ClientHost", "ClientAddr"},
	method:  []string{"RequestMethod"},
	target:  []string{"RequestPath"},
	request: []string{"RequestLine"},
	status:  []string{"DownstreamStatus", "OriginStatus"},
}
