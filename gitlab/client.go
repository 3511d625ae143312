// Package gitlab reads GitLab for the sync: it resolves configured projects,
// streams a project's merge requests changed since a cursor, fetches users
// in batches, and decides what each failure means (Classify).
//
// It wraps the official client, gitlab.com/gitlab-org/api/client-go/v2,
// and plugs its own retry policy into that client's loop: the client's own
// backoff ignores Retry-After. It knows nothing of BigQuery or Firestore;
// it hands typed rows (package table) to its caller.
package gitlab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// Defaults for Options.
const (
	DefaultRetryMax       = 6
	DefaultRetryWaitMin   = 1 * time.Second
	DefaultRetryWaitMax   = 60 * time.Second
	DefaultRequestTimeout = 60 * time.Second
	DefaultPerPage        = 100
)

// Options configures a Client. The zero value of each field means its default.
type Options struct {
	// BaseURL is the GitLab instance, e.g. https://gitlab.com or
	// https://example.com/gitlab. The client adds /api/v4 itself.
	BaseURL string

	// Token is sent in the PRIVATE-TOKEN header and nowhere else.
	Token string

	// RetryMax is how many times a transient failure is retried
	// (default DefaultRetryMax).
	RetryMax int

	// RetryWaitMin and RetryWaitMax bound the exponential backoff between
	// retries of a 5xx or a broken connection (defaults 1 s and 60 s).
	// A 429's Retry-After or RateLimit-Reset is obeyed up to RetryWaitMax.
	RetryWaitMin, RetryWaitMax time.Duration

	// RequestTimeout bounds each HTTP request (default 60 s), so an
	// unreachable instance fails instead of hanging.
	RequestTimeout time.Duration

	// PerPage is the page size of merge request lists (default and maximum 100).
	PerPage int

	// Transport, when set, replaces the default HTTP transport.
	Transport http.RoundTripper
}

// Client reads GitLab. It is safe for concurrent use.
type Client struct {
	api      *gl.Client
	perPage  int
	requests atomic.Int64
}

// NewClient returns a client for the instance at opts.BaseURL.
func NewClient(opts Options) (*Client, error) {
	if opts.RetryMax == 0 {
		opts.RetryMax = DefaultRetryMax
	}
	if opts.RetryWaitMin == 0 {
		opts.RetryWaitMin = DefaultRetryWaitMin
	}
	if opts.RetryWaitMax == 0 {
		opts.RetryWaitMax = DefaultRetryWaitMax
	}
	opts.RetryWaitMin = min(opts.RetryWaitMin, opts.RetryWaitMax)
	if opts.RequestTimeout == 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.PerPage <= 0 || opts.PerPage > 100 {
		opts.PerPage = DefaultPerPage
	}
	transport := opts.Transport
	if transport == nil {
		transport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: opts.RequestTimeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		}
	}

	c := &Client{perPage: opts.PerPage}
	httpClient := &http.Client{
		Transport:     countingTransport{next: transport, n: &c.requests},
		Timeout:       opts.RequestTimeout,
		CheckRedirect: sameOrigin,
	}
	api, err := gl.NewClient(opts.Token,
		gl.WithBaseURL(opts.BaseURL),
		gl.WithHTTPClient(httpClient),
		gl.WithCustomRetry(CheckRetry),
		gl.WithCustomBackoff(Backoff),
		gl.WithCustomRetryMax(opts.RetryMax),
		gl.WithCustomRetryWaitMinMax(opts.RetryWaitMin, opts.RetryWaitMax),
		gl.WithUserAgent("gitlabsync"),
	)
	if err != nil {
		return nil, fmt.Errorf("gitlab.NewClient for %s: %w", opts.BaseURL, err)
	}
	c.api = api
	return c, nil
}

// Requests returns how many HTTP requests the client has sent, retries included.
func (c *Client) Requests() int64 { return c.requests.Load() }

// sameOrigin follows a redirect only to the instance it started at: the
// token header would otherwise travel to another host (Go drops only
// Authorization and cookies on such a redirect, not PRIVATE-TOKEN).
func sameOrigin(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	from := via[0].URL
	if req.URL.Scheme != from.Scheme || req.URL.Host != from.Host {
		return fmt.Errorf("redirect from %s://%s to %s://%s refused: the token goes only to the configured instance; set gitlab_base_url to where GitLab answers",
			from.Scheme, from.Host, req.URL.Scheme, req.URL.Host)
	}
	return nil
}

// countingTransport counts every request that goes out.
type countingTransport struct {
	next http.RoundTripper
	n    *atomic.Int64
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.next.RoundTrip(r)
}

// CheckRetry is the retry policy plugged into the GitLab client: it retries
// what Classify calls Retry, and nothing once the context is done.
func CheckRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	if status != 0 && status < 400 {
		return false, nil
	}
	return Classify(status, err) == Retry, nil
}

// Backoff is the wait before retry attemptNum (from 0). A 429 waits as long
// as Retry-After says, else until RateLimit-Reset, else backs off like a 5xx;
// anything else backs off exponentially from min with full jitter, up to max.
func Backoff(lo, hi time.Duration, attemptNum int, resp *http.Response) time.Duration {
	hi = max(hi, lo)
	if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
		if d, ok := rateLimitWait(resp.Header, time.Now()); ok {
			// A reset already past (clock skew) still waits the minimum.
			return min(max(d, lo), hi)
		}
	}
	ceiling := lo << min(attemptNum, 20)
	if ceiling <= 0 || ceiling > hi {
		ceiling = hi
	}
	// Full jitter, never below lo so retries cannot storm.
	return lo + time.Duration(rand.Int64N(int64(ceiling-lo)+1))
}

// rateLimitWait reads how long a 429 asks to wait: Retry-After (seconds or
// an HTTP date), else RateLimit-Reset (Unix seconds).
func rateLimitWait(h http.Header, now time.Time) (time.Duration, bool) {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.Atoi(v); err == nil && s >= 0 {
			return time.Duration(s) * time.Second, true
		}
		if t, err := http.ParseTime(v); err == nil {
			return max(t.Sub(now), 0), true
		}
	}
	if v := strings.TrimSpace(h.Get("RateLimit-Reset")); v != "" {
		if s, err := strconv.ParseInt(v, 10, 64); err == nil {
			return max(time.Unix(s, 0).Sub(now), 0), true
		}
	}
	return 0, false
}

var _ retryablehttp.CheckRetry = CheckRetry
var _ retryablehttp.Backoff = Backoff
