// Package slackfake is a fake Slack for tests: an httptest server that speaks
// enough of the Slack Web API (auth.test, chat.postMessage and the three-step
// external file upload) and of incoming webhooks for scopewatch's Slack
// delivery to run against it with the real slack-go client.
//
// The server checks requests the way Slack does (authentication, required
// arguments, message and Block Kit limits) and records what it accepted. Tests
// can script failures with Fail and simulate an outage with Down. Every method
// is safe for concurrent use.
package slackfake

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

const (
	webhookPath = "/services/T000/B000/XXXX"
	uploadPath  = "/api/upload/"
)

var (
	// channelIDPattern is the form files.completeUploadExternal requires of channel_id.
	channelIDPattern = regexp.MustCompile(`^[CGDZ][A-Z0-9]{8,}$`)
	// looksLikeID tells channel ids from names, which Slack keeps lower-case.
	looksLikeID = regexp.MustCompile(`^[CGDZ][A-Z0-9]+$`)
)

// Server is a running fake Slack. Create it with New.
type Server struct {
	srv   *httptest.Server
	token string

	mu         sync.Mutex
	channels   map[string]string // channel name (without '#') or id -> id
	down       bool
	faults     []Fault
	messages   []Message
	files      []File
	uploads    map[string]*upload // by file id, until completed
	nextID     int
	requests   int
	rejections []string
	onRequest  func(method string)
}

type upload struct {
	name     string
	length   int
	content  []byte
	received bool
}

// Fault is a scripted answer given instead of processing a request; see Server.Fail.
type Fault struct {
	Status     int    // HTTP status; 0 means 200
	RetryAfter int    // seconds, sent as Retry-After header when > 0 (use with Status 429)
	Error      string // when Status is 0/200: answer {"ok":false,"error":Error}; otherwise the error in the body, if set
}

// Message is a chat.postMessage call or webhook post the server accepted.
type Message struct {
	Channel string          // as given by the client ("" for webhook)
	Text    string          // the text argument, possibly empty when blocks are sent
	Blocks  json.RawMessage // the blocks array as sent, nil if none
	Webhook bool            // whether the message came through the incoming webhook
}

// File is a completed external upload. Title defaults to Name, as in Slack.
// Channel is the channel_id given to files.completeUploadExternal ("" for a
// private file).
type File struct {
	Name, Title, Channel, InitialComment string
	Content                              []byte
}

// New starts a server accepting the bot token token; it is closed by t.Cleanup.
// The channel "#general" is known by default; posts to unknown channels fail
// with channel_not_found.
func New(t testing.TB, token string) *Server {
	s := &Server{token: token, channels: map[string]string{}, uploads: map[string]*upload{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	s.AddChannel("#general")
	return s
}

// APIURL is the Web API base URL, with a trailing slash, for slack.OptionAPIURL.
func (s *Server) APIURL() string { return s.srv.URL + "/api/" }

// WebhookURL is the URL of the server's incoming webhook.
func (s *Server) WebhookURL() string { return s.srv.URL + webhookPath }

// AddChannel makes channels known. A channel may be given as "#name", "name"
// (the same channel) or as an id such as "C0123ABCDE"; a name is given a
// generated id, see ChannelID.
func (s *Server) AddChannel(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range names {
		n = strings.TrimPrefix(n, "#")
		if _, ok := s.channels[n]; ok || n == "" {
			continue
		}
		id := n
		if !looksLikeID.MatchString(n) {
			s.nextID++
			id = fmt.Sprintf("C%09d", s.nextID)
		}
		s.channels[n], s.channels[id] = id, id
	}
}

// ChannelID returns the id of a known channel given by name or id, or "".
// Use it where Slack requires an id, as files.completeUploadExternal does.
func (s *Server) ChannelID(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.channels[strings.TrimPrefix(name, "#")]
}

// Down switches a simulated outage on or off. While down, every request (API
// and webhook) gets HTTP 503 with an HTML body, and no scripted fault is used.
func (s *Server) Down(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

// Fail makes the next n requests to chat.postMessage / files.* / webhook (any
// method, in order of arrival) answer with f instead of being processed. The
// POST of the file content to the upload URL counts as a files.* request. For
// the webhook, which reports every error through the status code, a fault with
// Status 0 answers 400 with Error as the body.
func (s *Server) Fail(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// Messages returns the accepted chat.postMessage and webhook posts, in order of acceptance.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Files returns the completed uploads in order.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]File(nil), s.files...)
}

// Requests returns the number of requests received, including failed and scripted ones.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Rejections returns a human-readable reason for every request the server
// rejected because it was malformed: bad blocks, text too long, missing or
// invalid arguments, unknown methods or file ids. Authentication failures,
// unknown channels, scripted faults and outages are not included. Blocks are
// numbered from 0, as in Slack's JSON pointers.
func (s *Server) Rejections() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.rejections...)
}

// OnRequest, if set before use, is called (outside the lock) at the start of
// every request with the method name ("chat.postMessage", "auth.test",
// "files.getUploadURLExternal", "upload", "files.completeUploadExternal",
// "webhook"), after the request is counted and before it is answered.
func (s *Server) OnRequest(fn func(method string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onRequest = fn
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	method := r.URL.Path
	switch {
	case strings.HasPrefix(method, uploadPath):
		method = "upload"
	case strings.HasPrefix(method, "/api/"):
		method = strings.TrimPrefix(method, "/api/")
	case strings.HasPrefix(method, "/services/"):
		method = "webhook"
	}
	s.mu.Lock()
	s.requests++
	fn := s.onRequest
	s.mu.Unlock()
	if fn != nil {
		fn(method)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<20))
	if err != nil {
		http.Error(w, "request body: "+err.Error(), http.StatusBadRequest)
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		writeHTML(w, http.StatusServiceUnavailable, errorPage(http.StatusServiceUnavailable))
		return
	}
	if len(s.faults) > 0 && (method == "chat.postMessage" || method == "upload" ||
		method == "webhook" || strings.HasPrefix(method, "files.")) {
		f := s.faults[0]
		s.faults = s.faults[1:]
		writeFault(w, method, f)
		return
	}
	switch {
	case method == "webhook":
		s.webhook(w, r, body)
	case method == "upload":
		s.upload(w, r, body)
	case strings.HasPrefix(r.URL.Path, "/api/"):
		s.api(w, r, method, body)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) api(w http.ResponseWriter, r *http.Request, method string, body []byte) {
	handler := map[string]func(http.ResponseWriter, map[string]string){
		"auth.test":                    s.authTest,
		"conversations.list":           s.conversationsList,
		"chat.postMessage":             s.postMessage,
		"files.getUploadURLExternal":   s.getUploadURL,
		"files.completeUploadExternal": s.completeUpload,
	}[method]
	if handler == nil {
		s.rejections = append(s.rejections, method+": unknown method")
		writeJSON(w, http.StatusNotFound, map[string]any{"ok": false, "error": "unknown_method"})
		return
	}
	p, err := params(r, body)
	if err != nil {
		s.reject(w, method, "invalid_arguments", err.Error())
		return
	}
	token := p["token"]
	if h, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		token = h
	}
	switch token {
	case "":
		writeError(w, "not_authed")
	case s.token:
		handler(w, p)
	default:
		writeError(w, "invalid_auth")
	}
}

// params collects the arguments of an API call from the query string and a
// form body, or from a JSON body. JSON strings are unquoted; other JSON values
// are kept as JSON text. As in Slack, a token inside a JSON body is ignored.
func params(r *http.Request, body []byte) (map[string]string, error) {
	p := map[string]string{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	r.Body = io.NopCloser(bytes.NewReader(body))
	if ct == "application/json" {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("body is not a JSON object: %v", err)
		}
		for k, v := range m {
			var str string
			if json.Unmarshal(v, &str) == nil {
				p[k] = str
			} else if string(v) != "null" {
				p[k] = string(v)
			}
		}
		delete(p, "token")
		return p, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, fmt.Errorf("cannot parse the body: %v", err)
	}
	for k, v := range r.Form {
		p[k] = v[0]
	}
	return p, nil
}

func (s *Server) authTest(w http.ResponseWriter, _ map[string]string) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "url": "https://example.slack.com/",
		"team": "Example", "user": "scopewatch", "team_id": "T000", "user_id": "U000", "bot_id": "B000"})
}

// conversationsList answers with every known channel by name, one page.
func (s *Server) conversationsList(w http.ResponseWriter, _ map[string]string) {
	var chans []map[string]any
	for name, id := range s.channels {
		if name != id {
			chans = append(chans, map[string]any{"id": id, "name": name, "is_channel": true})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channels": chans, "response_metadata": map[string]any{"next_cursor": ""}})
}

func (s *Server) postMessage(w http.ResponseWriter, p map[string]string) {
	const m = "chat.postMessage"
	msg := Message{Channel: p["channel"], Text: p["text"]}
	if b := p["blocks"]; b != "" {
		msg.Blocks = json.RawMessage(b)
	}
	if msg.Channel == "" {
		s.reject(w, m, "channel_not_found", "no channel given")
		return
	}
	if code, why := checkContent(msg.Text, msg.Blocks); code != "" {
		s.reject(w, m, code, why)
		return
	}
	id, ok := s.channels[strings.TrimPrefix(msg.Channel, "#")]
	if !ok {
		writeError(w, "channel_not_found")
		return
	}
	s.messages = append(s.messages, msg)
	micros := 100 * len(s.messages)
	ts := fmt.Sprintf("%d.%06d", 1700000000+micros/1e6, micros%1e6)
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "channel": id, "ts": ts,
		"message": map[string]any{"type": "message", "text": msg.Text, "ts": ts}})
}

func (s *Server) getUploadURL(w http.ResponseWriter, p map[string]string) {
	const m = "files.getUploadURLExternal"
	length, err := strconv.Atoi(p["length"])
	switch {
	case p["filename"] == "":
		s.reject(w, m, "invalid_arguments", "missing required field: filename")
		return
	case err != nil || length <= 0:
		s.reject(w, m, "invalid_arguments", fmt.Sprintf("length %q is not a positive integer", p["length"]))
		return
	}
	s.nextID++
	id := fmt.Sprintf("F%09d", s.nextID)
	s.uploads[id] = &upload{name: p["filename"], length: length}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "file_id": id, "upload_url": s.APIURL() + "upload/" + id})
}

// upload receives the content of a file at the URL files.getUploadURLExternal
// handed out. Like Slack's pre-signed upload URLs it needs no token.
func (s *Server) upload(w http.ResponseWriter, r *http.Request, body []byte) {
	const m = "upload"
	id := strings.TrimPrefix(r.URL.Path, uploadPath)
	u, ok := s.uploads[id]
	if !ok || r.Method != http.MethodPost {
		s.rejections = append(s.rejections, fmt.Sprintf("%s: %s %s is not a POST to a pending upload URL", m, r.Method, r.URL.Path))
		http.NotFound(w, r)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	content := body
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "multipart/form-data" {
		f, _, err := r.FormFile("file")
		if err == nil {
			content, err = io.ReadAll(f)
		}
		if err != nil {
			s.rejections = append(s.rejections, fmt.Sprintf("%s: no file in multipart body: %v", m, err))
			http.Error(w, "no file", http.StatusBadRequest)
			return
		}
	}
	if len(content) != u.length {
		s.rejections = append(s.rejections, fmt.Sprintf("%s: %s is %d bytes, but %d were announced", m, id, len(content), u.length))
		http.Error(w, "length mismatch", http.StatusBadRequest)
		return
	}
	u.content, u.received = content, true
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "OK - %d", len(content))
}

func (s *Server) completeUpload(w http.ResponseWriter, p map[string]string) {
	const m = "files.completeUploadExternal"
	var files []struct{ ID, Title string }
	if err := json.Unmarshal([]byte(p["files"]), &files); err != nil || len(files) == 0 {
		s.reject(w, m, "invalid_arguments", fmt.Sprintf("files %q is not a non-empty JSON array of {id, title}", p["files"]))
		return
	}
	channels := strings.Split(p["channel_id"], ",")
	if p["channels"] != "" {
		channels = strings.Split(p["channels"], ",")
	}
	for _, ch := range channels {
		if ch != "" && !channelIDPattern.MatchString(ch) {
			s.reject(w, m, "invalid_arguments", fmt.Sprintf("channel %q is not a channel id", ch))
			return
		}
	}
	if p["blocks"] != "" {
		if code, why := checkContent("", json.RawMessage(p["blocks"])); code != "" {
			s.reject(w, m, code, why)
			return
		}
	}
	for _, f := range files {
		if u := s.uploads[f.ID]; u == nil || !u.received {
			s.reject(w, m, "file_not_found", fmt.Sprintf("file %q was not uploaded", f.ID))
			return
		}
	}
	for _, ch := range channels {
		if _, ok := s.channels[ch]; ch != "" && !ok {
			writeError(w, "channel_not_found")
			return
		}
	}
	var out []map[string]string
	for _, f := range files {
		u := s.uploads[f.ID]
		delete(s.uploads, f.ID)
		if f.Title == "" {
			f.Title = u.name
		}
		for _, ch := range channels {
			s.files = append(s.files, File{Name: u.name, Title: f.Title, Channel: ch,
				InitialComment: p["initial_comment"], Content: u.content})
		}
		out = append(out, map[string]string{"id": f.ID, "title": f.Title})
	}
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "files": out})
}

func (s *Server) webhook(w http.ResponseWriter, r *http.Request, body []byte) {
	const m = "webhook"
	if r.URL.Path != webhookPath {
		writeHTML(w, http.StatusNotFound, "no_service")
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" {
		r.Body = io.NopCloser(bytes.NewReader(body))
		if r.ParseForm() == nil {
			body = []byte(r.PostForm.Get("payload"))
		}
	}
	var msg struct {
		Text   string
		Blocks json.RawMessage
	}
	if err := json.Unmarshal(body, &msg); r.Method != http.MethodPost || err != nil {
		s.rejections = append(s.rejections, fmt.Sprintf("%s: %s with a body that is not a JSON object", m, r.Method))
		writeHTML(w, http.StatusBadRequest, "invalid_payload")
		return
	}
	if string(msg.Blocks) == "null" {
		msg.Blocks = nil
	}
	if code, why := checkContent(msg.Text, msg.Blocks); code != "" {
		s.rejections = append(s.rejections, m+": "+why)
		writeHTML(w, http.StatusBadRequest, code)
		return
	}
	s.messages = append(s.messages, Message{Text: msg.Text, Blocks: msg.Blocks, Webhook: true})
	writeHTML(w, http.StatusOK, "ok")
}

// reject answers an API call with an error code and records why.
func (s *Server) reject(w http.ResponseWriter, method, code, why string) {
	s.rejections = append(s.rejections, method+": "+why)
	writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code,
		"response_metadata": map[string]any{"messages": []string{"[ERROR] " + why}}})
}

func writeFault(w http.ResponseWriter, method string, f Fault) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	status := cmp.Or(f.Status, http.StatusOK)
	switch {
	case method == "webhook":
		if status == http.StatusOK {
			status = http.StatusBadRequest
		}
		if status == http.StatusTooManyRequests {
			f.Error = cmp.Or(f.Error, "rate_limited")
		}
		writeHTML(w, status, cmp.Or(f.Error, errorPage(status)))
	case f.Error == "" && status == http.StatusTooManyRequests:
		writeJSON(w, status, map[string]any{"ok": false, "error": "ratelimited"})
	case f.Error == "" && status != http.StatusOK:
		writeHTML(w, status, errorPage(status))
	default:
		writeJSON(w, status, map[string]any{"ok": false, "error": cmp.Or(f.Error, "fatal_error")})
	}
}

// errorPage is an HTML body like the ones Slack's front end serves with 5xx statuses.
func errorPage(status int) string {
	return fmt.Sprintf("<!DOCTYPE html><html><head><title>Slack</title></head><body><h1>%d %s</h1></body></html>\n",
		status, http.StatusText(status))
}

func writeError(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeHTML(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// checkContent validates message text and blocks as Slack does and returns
// the error code and reason, or "" if the message is acceptable.
func checkContent(text string, blocks json.RawMessage) (code, why string) {
	if n := utf8.RuneCountInString(text); n > 40000 {
		return "msg_too_long", fmt.Sprintf("text is %d characters, over 40000", n)
	}
	n := 0
	if blocks != nil {
		var list []json.RawMessage
		if err := json.Unmarshal(blocks, &list); err != nil {
			return "invalid_blocks", "blocks is not a JSON array"
		}
		if len(list) > 50 {
			return "invalid_blocks", fmt.Sprintf("%d blocks, over 50", len(list))
		}
		ids := map[string]bool{}
		for i, b := range list {
			if why := checkBlock(i, b, ids); why != "" {
				return "invalid_blocks", why
			}
		}
		n = len(list)
	}
	if text == "" && n == 0 {
		return "no_text", "neither text nor blocks given"
	}
	return "", ""
}

// checkBlock validates block i of a message against Slack's Block Kit limits.
// ids collects the block_ids seen so far.
func checkBlock(i int, raw json.RawMessage, ids map[string]bool) string {
	var b struct {
		Type      string
		BlockID   string `json:"block_id"`
		Text      json.RawMessage
		Fields    []json.RawMessage
		Elements  []json.RawMessage
		AltText   string          `json:"alt_text"`
		ImageURL  string          `json:"image_url"`
		SlackFile json.RawMessage `json:"slack_file"`
	}
	if err := json.Unmarshal(raw, &b); err != nil {
		return fmt.Sprintf("block %d is malformed: %v", i, err)
	}
	name := fmt.Sprintf("%s block %d", b.Type, i)
	if n := utf8.RuneCountInString(b.BlockID); n > 255 {
		return fmt.Sprintf("%s block_id is %d characters, over 255", name, n)
	}
	if b.BlockID != "" && ids[b.BlockID] {
		return fmt.Sprintf("%s block_id %q is used twice", name, b.BlockID)
	}
	ids[b.BlockID] = true
	switch b.Type {
	case "section":
		if b.Text == nil && b.Fields == nil {
			return name + " has neither text nor fields"
		}
		if b.Text != nil {
			if why := checkText(name+" text", b.Text, 3000, false); why != "" {
				return why
			}
		}
		if len(b.Fields) > 10 {
			return fmt.Sprintf("%s has %d fields, over 10", name, len(b.Fields))
		}
		for j, f := range b.Fields {
			if why := checkText(fmt.Sprintf("%s field %d", name, j), f, 2000, false); why != "" {
				return why
			}
		}
	case "header":
		return checkText(name+" text", b.Text, 150, true)
	case "context", "actions":
		limit := map[string]int{"context": 10, "actions": 25}[b.Type]
		if len(b.Elements) == 0 || len(b.Elements) > limit {
			return fmt.Sprintf("%s has %d elements, want 1 to %d", name, len(b.Elements), limit)
		}
	case "rich_text":
		if len(b.Elements) == 0 {
			return name + " has no elements"
		}
	case "markdown":
		var s string
		if json.Unmarshal(b.Text, &s) != nil || s == "" {
			return name + " text is not a non-empty string"
		}
		if n := utf8.RuneCountInString(s); n > 12000 {
			return fmt.Sprintf("%s text is %d characters, over 12000", name, n)
		}
	case "image":
		if b.ImageURL == "" && b.SlackFile == nil {
			return name + " has neither image_url nor slack_file"
		}
		if b.AltText == "" {
			return name + " has no alt_text"
		}
	case "divider":
	default:
		return fmt.Sprintf("block %d has unknown type %q", i, b.Type)
	}
	return ""
}

// checkText validates a text object of 1 to limit characters whose type is
// plain_text, or, unless plainOnly, mrkdwn.
func checkText(name string, raw json.RawMessage, limit int, plainOnly bool) string {
	var t struct{ Type, Text string }
	if raw == nil || json.Unmarshal(raw, &t) != nil {
		return name + " is not a text object"
	}
	if t.Type != "plain_text" && (plainOnly || t.Type != "mrkdwn") {
		return fmt.Sprintf("%s has type %q", name, t.Type)
	}
	switch n := utf8.RuneCountInString(t.Text); {
	case n == 0:
		return name + " is empty"
	case n > limit:
		return fmt.Sprintf("%s is %d characters, over %d", name, n, limit)
	}
	return ""
}
