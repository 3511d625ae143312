package gitlabtest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
)

const testToken = "glpat-simulated-token"

// mustSampleServer starts a simulator loaded with the samples, closed at the end of the test.
func mustSampleServer(tb testing.TB, opts gitlabtest.Options) *gitlabtest.Server {
	tb.Helper()
	if opts.Token == "" {
		opts.Token = testToken
	}
	srv := gitlabtest.NewSampleServer(opts)
	tb.Cleanup(srv.Close)
	return srv
}

// mustEmptyServer starts a simulator without data, closed at the end of the test.
func mustEmptyServer(tb testing.TB, opts gitlabtest.Options) *gitlabtest.Server {
	tb.Helper()
	if opts.Token == "" {
		opts.Token = testToken
	}
	srv := gitlabtest.NewServer(opts)
	tb.Cleanup(srv.Close)
	return srv
}

// fastBackoff keeps client retries quick in tests.
func fastBackoff(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
	return time.Millisecond
}

// mustClient returns the real client aimed at srv with token.
func mustClient(
	tb testing.TB, srv *gitlabtest.Server, token string, opts ...gitlab.ClientOptionFunc,
) *gitlab.Client {
	tb.Helper()
	opts = append([]gitlab.ClientOptionFunc{gitlab.WithBaseURL(srv.URL())}, opts...)
	c, err := gitlab.NewClient(token, opts...)
	if err != nil {
		tb.Fatalf("gitlab.NewClient: %v", err)
	}
	return c
}

// mustGet sends a GET with the test token (unless header overrides it) and returns the
// response and its body.
func mustGet(tb testing.TB, url string, header map[string]string) (*http.Response, []byte) {
	tb.Helper()
	return mustDo(tb, http.MethodGet, url, header, nil)
}

func mustDo(
	tb testing.TB, method, url string, header map[string]string, body []byte,
) (*http.Response, []byte) {
	tb.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		tb.Fatalf("http.NewRequest: %v", err)
	}
	req.Header.Set("Private-Token", testToken)
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("read body of %s: %v", url, err)
	}
	return resp, b
}

// mustCompactFile returns a testdata file, compacted.
func mustCompactFile(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatalf("read testdata: %v", err)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		tb.Fatalf("compact %s: %v", name, err)
	}
	return buf.Bytes()
}

// mustRecordedHeaders returns the headers recorded with a sample.
func mustRecordedHeaders(tb testing.TB, name string) map[string]any {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatalf("read testdata: %v", err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		tb.Fatalf("decode %s: %v", name, err)
	}
	return h
}

func iidsOf(mrs []*gitlab.BasicMergeRequest) []int64 {
	out := make([]int64, 0, len(mrs))
	for _, mr := range mrs {
		out = append(out, mr.IID)
	}
	return out
}

func ptr[T any](v T) *T { return &v }

func mustUnmarshal(tb testing.TB, b []byte, v any) {
	tb.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
}
