package ingest

// apigwPreset covers AWS API Gateway access logs written with the
// console's JSON template, for REST and HTTP APIs: requestTime is in
// nginx's format ($context.requestTime), ip is the caller's address as
// API Gateway saw it. The path is $context.path when the template logs
// it, else the route: resourcePath (REST, "/pets/{id}") or the target of
// routeKey (HTTP API, "GET /pets/{id}"; "$default" has none). Claims are
// logged only when the template names them one by one
// ($context.authorizer.claims.client_id); the template's keys may be
// nested or flattened with dots, and both are read.
var apigwPreset = gwPreset{
	time: []gwTimePath{{"requestTime", timeNginx}, {"requestTimeEpoch", timeEpochMS}},
	client: []string{
		"authorizer.claims.client_id", "authorizer.jwt.claims.client_id",
		"authorizer.claims.azp", "authorizer.jwt.claims.azp",
	},
	subject: []string{"authorizer.claims.sub", "authorizer.jwt.claims.sub"},
	scopes: []string{
		"authorizer.claims.scope", "authorizer.jwt.claims.scope",
		"authorizer.jwt.scopes", "authorizer.claims.scp",
	},
	remote:  []string{"ip", "sourceIp", "identity.sourceIp"},
	method:  []string{"httpMethod", "http.method"},
	target:  []string{"path", "resourcePath", "http.path"},
	request: []string{"routeKey"},
	status:  []string{"status"},
}
