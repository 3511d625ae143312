package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	timeout := &url.Error{Op: "Get", URL: "https://gitlab.example/api/v4/projects/1", Err: &net.OpError{Op: "dial", Err: errors.New("i/o timeout")}}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	cases := []struct {
		name   string
		status int
		err    error
		want   Decision
	}{
		{"Unauthorized", http.StatusUnauthorized, nil, FailRun},
		{"Forbidden", http.StatusForbidden, nil, SkipProject},
		{"NotFound", http.StatusNotFound, nil, SkipProject},
		{"TooManyRequests", http.StatusTooManyRequests, nil, Retry},
		{"RequestTimeout", http.StatusRequestTimeout, nil, Retry},
		{"InternalServerError", http.StatusInternalServerError, nil, Retry},
		{"BadGateway", http.StatusBadGateway, nil, Retry},
		{"ServiceUnavailable", http.StatusServiceUnavailable, nil, Retry},
		{"GatewayTimeout", http.StatusGatewayTimeout, nil, Retry},
		{"BadRequest", http.StatusBadRequest, nil, FailTable},
		{"MethodNotAllowed", http.StatusMethodNotAllowed, nil, FailTable},
		{"Timeout", 0, timeout, Retry},
		{"ConnectionRefused", 0, refused, Retry},
		{"DeadlineExceeded", 0, context.DeadlineExceeded, Retry},
		{"Canceled", 0, context.Canceled, FailTable},
		{"OtherError", 0, errors.New("decode body"), FailTable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Classify(c.status, c.err); got != c.want {
				t.Errorf("Classify(%d, %v) = %v, want %v", c.status, c.err, got, c.want)
			}
		})
	}
}

func TestCheckRetry(t *testing.T) {
	cases := []struct {
		name   string
		status int
		err    error
		want   bool
	}{
		{"OK", 200, nil, false},
		{"TooManyRequests", 429, nil, true},
		{"ServerError", 503, nil, true},
		{"Unauthorized", 401, nil, false},
		{"NotFound", 404, nil, false},
		{"Transport", 0, &net.OpError{Op: "read", Err: errors.New("connection reset by peer")}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var resp *http.Response
			if c.status != 0 {
				resp = &http.Response{StatusCode: c.status, Header: http.Header{}}
			}
			got, err := CheckRetry(context.Background(), resp, c.err)
			if err != nil || got != c.want {
				t.Errorf("CheckRetry = %v, %v; want %v, nil", got, err, c.want)
			}
		})
	}
	t.Run("ContextDone", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		got, err := CheckRetry(ctx, &http.Response{StatusCode: 503}, nil)
		if got || err == nil {
			t.Errorf("CheckRetry after cancel = %v, %v; want false and an error", got, err)
		}
	})
}

func TestBackoff(t *testing.T) {
	lo, hi := time.Second, 60*time.Second
	resp := func(h map[string]string) *http.Response {
		r := &http.Response{StatusCode: 429, Header: http.Header{}}
		for k, v := range h {
			r.Header.Set(k, v)
		}
		return r
	}
	reset := time.Now().Add(20 * time.Second).Unix()
	cases := []struct {
		name     string
		resp     *http.Response
		attempt  int
		min, max time.Duration
	}{
		{"RetryAfterSeconds", resp(map[string]string{"Retry-After": "7"}), 0, 7 * time.Second, 7 * time.Second},
		{"RetryAfterWinsOverReset", resp(map[string]string{"Retry-After": "3", "RateLimit-Reset": fmt.Sprint(reset)}), 0, 3 * time.Second, 3 * time.Second},
		{"RateLimitReset", resp(map[string]string{"RateLimit-Reset": fmt.Sprint(reset)}), 0, 18 * time.Second, 20 * time.Second},
		{"RetryAfterCapped", resp(map[string]string{"Retry-After": "3600"}), 0, hi, hi},
		{"NoHeaders429", resp(nil), 0, lo, 2 * lo},
		{"ServerErrorFirst", &http.Response{StatusCode: 503}, 0, lo, lo},
		{"ServerErrorThird", &http.Response{StatusCode: 503}, 3, lo, 8 * lo},
		{"ServerErrorCapped", &http.Response{StatusCode: 503}, 30, lo, hi},
		{"NoResponse", nil, 2, lo, 4 * lo},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for range 20 { // jitter: every draw stays in range
				got := Backoff(lo, hi, c.attempt, c.resp)
				if got < c.min || got > c.max {
					t.Fatalf("Backoff = %v, want between %v and %v", got, c.min, c.max)
				}
			}
		})
	}
}

func TestErrorNeverShowsURLOrToken(t *testing.T) {
	e := &Error{Op: "get project", Project: "group/app", Status: 401, Decision: FailRun, Err: errors.New("GET https://x/api/v4/projects/group%2Fapp: 401")}
	if !errors.Is(e, ErrUnauthorized) {
		t.Errorf("errors.Is(401 error, ErrUnauthorized) = false, want true")
	}
	if got := e.Error(); !strings.Contains(got, "rejected the token") {
		t.Errorf("Error() = %q, want it to say the token was rejected", got)
	}
}
