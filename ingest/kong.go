package ingest

// kongPreset covers Kong's file-log (and http-log, tcp-log) plugin: one
// serialized request per line. The client is the consumer the request was
// authenticated as; without one, the credential (authenticated_entity.id)
// stands in, and Kong before 1.0 named the consumer authenticated_entity
// .consumer_id. client_ip is already the address Kong resolved through
// its own trusted_ips, so no X-Forwarded-For is read. Kong does not
// serialize token scopes.
var kongPreset = gwPreset{
	time:   []gwTimePath{{"started_at", timeEpochMS}},
	client: []string{"consumer.username", "consumer.id", "authenticated_entity.id", "authenticated_entity.consumer_id"},
	remote: []string{"client_ip"},
	method: []string{"request.method"},
	target: []string{"request.uri", "upstream_uri"},
	status: []string{"response.status"},
}
