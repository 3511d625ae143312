package gitlabtest

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault makes matching requests fail or slow down. Faults apply before authentication, as
// a load balancer or throttle in front of GitLab would.
type Fault struct {
	// Path is a substring matched against the request path, escaped or not, such as
	// "/merge_requests", "/graphql" or "/projects/". Empty matches every request.
	Path string

	// Status is the status to answer with, such as 429, 500, 502 or 503. Zero answers
	// normally after Delay: slow but OK.
	Status int

	// RetryAfter is the Retry-After header value; empty leaves the header out.
	RetryAfter string

	// ResetIn, if positive, makes a 429 carry RateLimit-Reset = now+ResetIn (Unix seconds,
	// rounded up) with the other RateLimit-* headers; otherwise a fault answer carries no
	// RateLimit-* header, as some GitLab endpoints and proxies answer.
	ResetIn time.Duration

	// Body replaces the default body: "Retry later\n" (text/plain) for 429, as Rack::Attack
	// writes it, and {"message":"<code> <reason>"} for other statuses, e.g.
	// {"message":"500 Internal Server Error"}. A Body starting with "{" or "[" is sent as
	// application/json, anything else as text/plain.
	Body string

	// Times is how many matching requests the fault applies to before it is used up. Zero
	// means every matching request until ClearFaults.
	Times int

	// Delay is extra latency for matching requests; with a client timeout shorter than it,
	// it simulates a timeout.
	Delay time.Duration
}

type faultState struct {
	Fault
	left int // requests left; ignored when Times is 0
}

// InjectFault adds a fault. When several match a request, the earliest injected one that
// is not used up applies.
func (s *Server) InjectFault(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &faultState{Fault: f, left: f.Times})
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

// takeFault returns the fault that applies to r, using up one of its Times.
func (s *Server) takeFault(r *http.Request) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Path != "" && !strings.Contains(r.URL.Path, f.Path) &&
			!strings.Contains(r.URL.EscapedPath(), f.Path) {
			continue
		}
		if f.Times > 0 {
			f.left--
			if f.left <= 0 {
				s.faults = append(s.faults[:i:i], s.faults[i+1:]...)
			}
		}
		return f.Fault, true
	}
	return Fault{}, false
}

func (s *Server) writeFault(w http.ResponseWriter, f Fault, observed int) {
	h := w.Header()
	if f.RetryAfter != "" {
		h.Set("Retry-After", f.RetryAfter)
	}
	if f.Status == http.StatusTooManyRequests && f.ResetIn > 0 {
		reset := s.now().Add(f.ResetIn)
		secs := int64(math.Ceil(float64(reset.UnixNano()) / float64(time.Second)))
		limit := s.rateLimit()
		if limit == 0 {
			limit = DefaultRateLimit
		}
		setRateLimitHeaders(h, limit, max(observed, limit), time.Unix(secs, 0))
		h.Set("RateLimit-Name", "throttle_authenticated_api")
	}
	body := f.Body
	if body == "" {
		if f.Status == http.StatusTooManyRequests {
			body = "Retry later\n"
		} else {
			body = messageBody(f.Status)
		}
	}
	if strings.HasPrefix(body, "{") || strings.HasPrefix(body, "[") {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "text/plain")
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(body))
}
