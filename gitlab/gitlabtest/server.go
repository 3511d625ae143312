package gitlabtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultRateLimit is the number of requests per minute advertised in RateLimit-* headers
// when Options.RateLimit is 0: gitlab.com's limit for authenticated API requests.
const DefaultRateLimit = 2000

// Options configures a Server.
type Options struct {
	// Token is the only token the server accepts, sent as a PRIVATE-TOKEN header or as
	// "Authorization: Bearer <token>" (the private_token and access_token query parameters
	// work too, as on GitLab). Other requests get 401 {"message":"401 Unauthorized"}.
	// Required: the constructors panic without it.
	Token string

	// Prefix is the path of a self-managed instance served under a subpath, such as
	// "/gitlab": the REST API is then at /gitlab/api/v4 and GraphQL at /gitlab/api/graphql.
	// Empty means the API is at the root, as on gitlab.com.
	Prefix string

	// Latency is added to every response. Zero adds none.
	Latency time.Duration

	// Zone is the time zone of timestamps the simulator writes (updated_at of a mutation,
	// generated merge requests, GraphQL createdAt). Nil means UTC written as
	// "2006-01-02T15:04:05.000Z" like gitlab.com; otherwise timestamps carry the zone's
	// offset, "…+01:00", like a self-managed instance. Recorded timestamps are served as
	// recorded.
	Zone *time.Location

	// Now is the clock for updated_at on mutations and for rate-limit windows. Nil means
	// time.Now.
	Now func() time.Time

	// RateLimit is the per-minute limit advertised in the RateLimit-Limit, -Observed,
	// -Remaining, -Reset and -ResetTime headers sent with every non-fault response. Zero
	// means DefaultRateLimit; a negative value leaves the headers out, as in the 2024
	// gitlab.com recordings. The server never refuses a request for going past it: inject
	// a Fault for that.
	//
	// NOTE: the real client sizes its own limiter from the first RateLimit-Limit it sees
	// (2000 per minute makes it pace itself to about 22 requests per second after a burst
	// of 11); benchmarks that page through many merge requests may want -1.
	RateLimit int
}

// Server is a running GitLab simulator. All methods are safe for concurrent use.
type Server struct {
	opts   Options
	prefix string
	ts     *httptest.Server

	mu            sync.Mutex
	projects      map[int64]*project
	projectByPath map[string]*project // lower-cased path_with_namespace
	statusByRef   map[string]int      // SetProjectStatus, keyed by id or lower-cased path
	users         map[int64]*user
	mrByID        map[int64]*mergeRequest
	maxMRID       int64
	version       []byte
	faults        []*faultState

	statsMu     sync.Mutex
	counts      map[string]int
	log         []string
	windowEnd   time.Time
	windowCount int
}

// NewServer starts a simulator with no data on a loopback address (127.0.0.1). Close it
// when done. It panics if opts.Token is empty.
func NewServer(opts Options) *Server {
	s := NewUnstartedServer(opts)
	s.ts = httptest.NewServer(s.Handler())
	return s
}

// NewSampleServer is NewServer followed by LoadSamples. It panics if the embedded samples
// cannot be read, which would be a bug in this package.
func NewSampleServer(opts Options) *Server {
	s := NewServer(opts)
	if err := s.LoadSamples(); err != nil {
		s.Close()
		panic("gitlabtest: load samples: " + err.Error())
	}
	return s
}

// NewUnstartedServer returns a simulator with no data that does not listen anywhere: serve
// its Handler on an address of your choice, as the gitlabsim command does. URL returns ""
// and Close does nothing. It panics if opts.Token is empty.
func NewUnstartedServer(opts Options) *Server {
	if opts.Token == "" {
		panic("gitlabtest: Options.Token is required")
	}
	prefix := strings.TrimRight(opts.Prefix, "/")
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	s := &Server{
		opts:          opts,
		prefix:        prefix,
		projects:      make(map[int64]*project),
		projectByPath: make(map[string]*project),
		statusByRef:   make(map[string]int),
		users:         make(map[int64]*user),
		mrByID:        make(map[int64]*mergeRequest),
		counts:        make(map[string]int),
	}
	if b, err := samples.ReadFile(sampleDir + "version_gitlab_com_2024-09.json"); err == nil {
		s.version = mustCompact(b)
	}
	return s
}

// URL returns the base URL to give the client, including Options.Prefix, such as
// http://127.0.0.1:1234/gitlab. The client appends api/v4/ itself.
func (s *Server) URL() string {
	if s.ts == nil {
		return ""
	}
	return s.ts.URL + s.prefix
}

// Close shuts the server down, waiting for requests in flight.
func (s *Server) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
}

// Handler returns the HTTP handler that implements the simulator, for serving it on a
// chosen address.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Server) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now()
}

// formatTime writes t the way GitLab does: milliseconds, "Z" in UTC, else the zone's offset.
func (s *Server) formatTime(t time.Time) string {
	zone := s.opts.Zone
	if zone == nil {
		zone = time.UTC
	}
	return t.In(zone).Format("2006-01-02T15:04:05.000Z07:00")
}

// Endpoint kinds counted by Requests.
const (
	kindVersion       = "version"
	kindProject       = "project"
	kindMergeRequests = "merge_requests"
	kindMergeRequest  = "merge_request"
	kindUsers         = "users"
	kindGraphQL       = "graphql"
	kindOther         = "other"
)

// route is what a request path names.
type route struct {
	kind string
	ref  string // project reference (id or path, unescaped) or user id
	iid  string // merge request iid for kindMergeRequest
}

func (s *Server) parseRoute(r *http.Request) route {
	p := r.URL.EscapedPath()
	rest, ok := strings.CutPrefix(p, s.prefix)
	if !ok {
		return route{kind: kindOther}
	}
	if rest == "/api/graphql" || rest == "/api/graphql/" {
		return route{kind: kindGraphQL}
	}
	rest, ok = strings.CutPrefix(rest, "/api/v4/")
	if !ok {
		return route{kind: kindOther}
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	unescape := func(seg string) string {
		if u, err := url.PathUnescape(seg); err == nil {
			return u
		}
		return seg
	}
	switch {
	case len(segs) == 1 && segs[0] == "version":
		return route{kind: kindVersion}
	case len(segs) == 2 && segs[0] == "users":
		return route{kind: kindUsers, ref: unescape(segs[1])}
	case len(segs) == 2 && segs[0] == "projects":
		return route{kind: kindProject, ref: unescape(segs[1])}
	case len(segs) == 3 && segs[0] == "projects" && segs[2] == "merge_requests":
		return route{kind: kindMergeRequests, ref: unescape(segs[1])}
	case len(segs) == 4 && segs[0] == "projects" && segs[2] == "merge_requests":
		return route{kind: kindMergeRequest, ref: unescape(segs[1]), iid: segs[3]}
	case len(segs) > 2 && segs[0] == "projects":
		// An unsimulated sub-resource: still subject to SetProjectStatus.
		return route{kind: kindOther, ref: unescape(segs[1])}
	}
	return route{kind: kindOther}
}

// statusRecorder counts the status written under status_<code>, before the answer leaves,
// so that a client that got its answer also sees it counted.
type statusRecorder struct {
	http.ResponseWriter
	s      *Server
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
		w.s.countStatus(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	rt := s.parseRoute(r)
	rec := &statusRecorder{ResponseWriter: w, s: s}
	observed, reset := s.record(rt.kind, r.URL.RequestURI())

	// Latency and faults come first, as they would from the network and the load balancer.
	if !sleep(r.Context(), s.opts.Latency) {
		return
	}
	if f, ok := s.takeFault(r); ok {
		if !sleep(r.Context(), f.Delay) {
			return
		}
		if f.Status != 0 {
			s.writeFault(rec, f, observed)
			return
		}
	}

	s.writeCommonHeaders(rec, observed, reset)
	if rt.kind == kindGraphQL {
		s.serveGraphQL(rec, r)
		return
	}
	if rt.kind == kindOther && rt.ref == "" {
		// GitLab's catch-all route answers before authentication.
		writeJSON(rec, http.StatusNotFound, bodyRouteNotFound)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		rec.Header().Set("Allow", "GET, HEAD")
		writeJSON(rec, http.StatusMethodNotAllowed, `{"error":"405 Not Allowed"}`)
		return
	}
	if _, ok := s.authenticate(r); !ok {
		writeJSON(rec, http.StatusUnauthorized, bodyUnauthorized)
		return
	}
	if rt.ref != "" && rt.kind != kindUsers {
		if status := s.projectStatus(rt.ref); status != 0 {
			writeStatus(rec, status)
			return
		}
	}

	switch rt.kind {
	case kindVersion:
		s.serveVersion(rec)
	case kindProject:
		s.serveProject(rec, rt.ref)
	case kindMergeRequests:
		s.serveMergeRequests(rec, r, rt.ref)
	case kindMergeRequest:
		s.serveMergeRequest(rec, rt.ref, rt.iid)
	case kindUsers:
		s.serveUser(rec, rt.ref)
	default:
		writeJSON(rec, http.StatusNotFound, bodyRouteNotFound)
	}
}

// Error bodies as GitLab writes them (see testdata/errors_catalog.json).
const (
	bodyUnauthorized    = `{"message":"401 Unauthorized"}`
	bodyForbidden       = `{"message":"403 Forbidden"}`
	bodyProjectNotFound = `{"message":"404 Project Not Found"}`
	bodyUserNotFound    = `{"message":"404 User Not Found"}`
	bodyMRNotFound      = `{"message":"404 Merge Request Not Found"}`
	bodyRouteNotFound   = `{"error":"404 Not Found"}`
)

// authenticate reports whether r carries a token, and whether it is the right one.
func (s *Server) authenticate(r *http.Request) (sent, ok bool) {
	var tokens []string
	if v := r.Header.Values("Private-Token"); len(v) > 0 {
		tokens = append(tokens, v...)
	}
	if v := r.Header.Get("Authorization"); v != "" {
		scheme, token, _ := strings.Cut(v, " ")
		if strings.EqualFold(scheme, "Bearer") {
			tokens = append(tokens, strings.TrimSpace(token))
		} else {
			tokens = append(tokens, v)
		}
	}
	q := r.URL.Query()
	for _, k := range []string{"private_token", "access_token"} {
		if v := q.Get(k); v != "" {
			tokens = append(tokens, v)
		}
	}
	if len(tokens) == 0 {
		return false, false
	}
	for _, t := range tokens {
		if t != s.opts.Token {
			return true, false
		}
	}
	return true, true
}

// writeCommonHeaders sets what every GitLab API answer carries, rate-limit headers included.
func (s *Server) writeCommonHeaders(w http.ResponseWriter, observed int, reset time.Time) {
	h := w.Header()
	h.Set("Cache-Control", "max-age=0, private, must-revalidate")
	h.Set("Content-Security-Policy", "default-src 'none'")
	h.Set("Referrer-Policy", "strict-origin-when-cross-origin")
	h.Set("Vary", "Origin, Accept-Encoding")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	id := requestID()
	h.Set("X-Request-Id", id)
	h.Set("X-Gitlab-Meta", `{"correlation_id":"`+id+`","version":"1"}`)
	if limit := s.rateLimit(); limit > 0 {
		setRateLimitHeaders(h, limit, observed, reset)
	}
}

func (s *Server) rateLimit() int {
	switch {
	case s.opts.RateLimit < 0:
		return 0
	case s.opts.RateLimit == 0:
		return DefaultRateLimit
	}
	return s.opts.RateLimit
}

func setRateLimitHeaders(h http.Header, limit, observed int, reset time.Time) {
	h.Set("RateLimit-Limit", strconv.Itoa(limit))
	h.Set("RateLimit-Observed", strconv.Itoa(observed))
	h.Set("RateLimit-Remaining", strconv.Itoa(max(0, limit-observed)))
	h.Set("RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	h.Set("RateLimit-ResetTime", reset.UTC().Format(http.TimeFormat))
}

func requestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	writeJSONBytes(w, status, []byte(body))
}

func writeJSONBytes(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if status >= 400 {
		w.Header().Set("Cache-Control", "no-cache")
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeStatus answers with GitLab's body for a project-level status.
func writeStatus(w http.ResponseWriter, status int) {
	switch status {
	case http.StatusForbidden:
		writeJSON(w, status, bodyForbidden)
	case http.StatusNotFound:
		writeJSON(w, status, bodyProjectNotFound)
	default:
		writeJSON(w, status, messageBody(status))
	}
}

// messageBody is GitLab's generic error body, {"message":"<code> <reason>"}.
func messageBody(status int) string {
	return `{"message":"` + strconv.Itoa(status) + " " + http.StatusText(status) + `"}`
}

// sleep waits d unless ctx ends first; it reports whether the full wait happened.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// record counts a request under its kind and "total", logs its URL and counts it in the
// current rate-limit window, whose state it returns.
func (s *Server) record(kind, uri string) (observed int, reset time.Time) {
	now := s.now()
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.counts[kind]++
	s.counts["total"]++
	s.log = append(s.log, uri)
	if !now.Before(s.windowEnd) {
		s.windowEnd = now.Truncate(time.Second).Add(time.Minute)
		s.windowCount = 0
	}
	s.windowCount++
	return s.windowCount, s.windowEnd
}

func (s *Server) countStatus(status int) {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.counts["status_"+strconv.Itoa(status)]++
}

// Requests returns how many requests the server received for an endpoint kind, whatever
// it answered: "version", "project" (GET /projects/:id), "merge_requests" (the list),
// "merge_request" (one by iid), "users" (GET /users/:id), "graphql", "other" (anything
// else) and "total". "status_<code>" counts answers by status, such as "status_401",
// "status_429" or "status_500".
func (s *Server) Requests(kind string) int {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return s.counts[kind]
}

// ResetCounters sets every counter to zero and empties the request log.
func (s *Server) ResetCounters() {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	s.counts = make(map[string]int)
	s.log = nil
}

// RequestLog returns the path and query of every request received, in order, as sent
// (path still escaped), e.g. "/api/v4/projects/42/merge_requests?updated_after=…".
func (s *Server) RequestLog() []string {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	return append([]string(nil), s.log...)
}
