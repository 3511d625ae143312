package gitlabtest_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
)

func TestFaultResponses(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	const throttled = `{"message":{"error":"This endpoint has been requested too many times. ` +
		`Try again later."}}`
	tests := []struct {
		name        string
		fault       gitlabtest.Fault
		path        string
		wantStatus  int
		wantBody    string
		wantType    string
		wantHeaders map[string]string // "" means absent
	}{
		{
			name:       "TooManyRequestsWithRetryAfter",
			fault:      gitlabtest.Fault{Path: "/merge_requests", Status: 429, RetryAfter: "7"},
			path:       "/api/v4/projects/12345678/merge_requests",
			wantStatus: 429,
			wantBody:   "Retry later\n",
			wantType:   "text/plain",
			wantHeaders: map[string]string{
				"Retry-After": "7", "RateLimit-Reset": "", "RateLimit-Limit": "",
			},
		},
		{
			name:        "TooManyRequestsBare",
			fault:       gitlabtest.Fault{Path: "/merge_requests", Status: 429},
			path:        "/api/v4/projects/12345678/merge_requests",
			wantStatus:  429,
			wantBody:    "Retry later\n",
			wantType:    "text/plain",
			wantHeaders: map[string]string{"Retry-After": "", "RateLimit-Reset": ""},
		},
		{
			name: "TooManyRequestsWithReset",
			fault: gitlabtest.Fault{
				Path: "/projects/", Status: 429, ResetIn: 30 * time.Second, RetryAfter: "30",
			},
			path:       "/api/v4/projects/12345678",
			wantStatus: 429,
			wantBody:   "Retry later\n",
			wantType:   "text/plain",
			wantHeaders: map[string]string{
				"Retry-After":         "30",
				"RateLimit-Reset":     strconv.FormatInt(now.Add(30*time.Second).Unix(), 10),
				"RateLimit-ResetTime": "Wed, 01 May 2024 12:00:30 GMT",
				"RateLimit-Remaining": "0",
				"RateLimit-Limit":     "2000",
			},
		},
		{
			name:       "JSONThrottleBody",
			fault:      gitlabtest.Fault{Path: "/users/", Status: 429, Body: throttled},
			path:       "/api/v4/users/1",
			wantStatus: 429,
			wantBody:   throttled,
			wantType:   "application/json",
		},
		{
			name:       "InternalServerError",
			fault:      gitlabtest.Fault{Status: 500},
			path:       "/api/v4/version",
			wantStatus: 500,
			wantBody:   `{"message":"500 Internal Server Error"}`,
			wantType:   "application/json",
		},
		{
			name:        "BadGatewayOnGraphQL",
			fault:       gitlabtest.Fault{Path: "/graphql", Status: 502, RetryAfter: "1"},
			path:        "/api/graphql",
			wantStatus:  502,
			wantBody:    `{"message":"502 Bad Gateway"}`,
			wantType:    "application/json",
			wantHeaders: map[string]string{"Retry-After": "1"},
		},
		{
			name:       "OtherPathUntouched",
			fault:      gitlabtest.Fault{Path: "/graphql", Status: 503},
			path:       "/api/v4/version",
			wantStatus: 200,
			wantType:   "application/json",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mustSampleServer(t, gitlabtest.Options{Now: func() time.Time { return now }})
			srv.InjectFault(tt.fault)
			method := http.MethodGet
			if strings.HasSuffix(tt.path, "/graphql") {
				method = http.MethodPost
			}
			query := []byte(`{"query":"{ users { nodes { id } } }"}`)
			resp, body := mustDo(t, method, srv.URL()+tt.path, nil, query)
			if resp.StatusCode != tt.wantStatus {
				t.Errorf("got status %d, want %d", resp.StatusCode, tt.wantStatus)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("got body %q, want %q", body, tt.wantBody)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.wantType {
				t.Errorf("got Content-Type %q, want %q", got, tt.wantType)
			}
			for k, want := range tt.wantHeaders {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("got %s %q, want %q", k, got, want)
				}
			}
		})
	}
}

func TestFaultsWithClient(t *testing.T) {
	t.Run("RetriedUntilUsedUp", func(t *testing.T) {
		srv := mustSampleServer(t, gitlabtest.Options{})
		srv.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Status: 429, RetryAfter: "1", Times: 2})
		client := mustClient(t, srv, testToken, gitlab.WithCustomBackoff(fastBackoff))
		mrs, _, err := client.MergeRequests.ListProjectMergeRequests(12345678, nil)
		if err != nil || len(mrs) != 18 {
			t.Fatalf("got %d merge requests, error %v; want 18 after retries", len(mrs), err)
		}
		for kind, want := range map[string]int{"merge_requests": 3, "status_429": 2, "status_200": 1} {
			if got := srv.Requests(kind); got != want {
				t.Errorf("got Requests(%q) = %d, want %d", kind, got, want)
			}
		}
	})

	t.Run("DefaultBackoffWithoutReset", func(t *testing.T) {
		// The client's own backoff: without RateLimit-Reset it waits about 200 ms.
		srv := mustSampleServer(t, gitlabtest.Options{})
		srv.InjectFault(gitlabtest.Fault{Path: "/version", Status: 429, Times: 1})
		client := mustClient(t, srv, testToken)
		if _, _, err := client.Version.GetVersion(); err != nil {
			t.Fatalf("GetVersion: %v", err)
		}
		if got := srv.Requests("version"); got != 2 {
			t.Errorf("got %d version requests, want 2", got)
		}
	})

	t.Run("GivesUpAfterRetryMax", func(t *testing.T) {
		srv := mustSampleServer(t, gitlabtest.Options{})
		srv.InjectFault(gitlabtest.Fault{Path: "/projects/", Status: 500, Times: 10})
		client := mustClient(t, srv, testToken,
			gitlab.WithCustomBackoff(fastBackoff), gitlab.WithCustomRetryMax(2))
		_, resp, err := client.Projects.GetProject(12345678, nil)
		if err == nil {
			t.Fatalf("GetProject: got no error, want one after 3 answers of 500")
		}
		if resp != nil && resp.StatusCode != 500 {
			t.Errorf("got status %d, want 500", resp.StatusCode)
		}
		if got := srv.Requests("status_500"); got != 3 {
			t.Errorf("got %d answers of 500, want 3", got)
		}
		// 7 of the 10 remain.
		srv.ResetCounters()
		_, _, _ = client.Projects.GetProject(12345678, nil)
		if got := srv.Requests("status_500"); got != 3 {
			t.Errorf("second call: got %d answers of 500, want 3", got)
		}
		srv.ClearFaults()
		if _, _, err := client.Projects.GetProject(12345678, nil); err != nil {
			t.Errorf("after ClearFaults: %v", err)
		}
	})

	t.Run("DelayTimesOut", func(t *testing.T) {
		srv := mustSampleServer(t, gitlabtest.Options{})
		srv.InjectFault(gitlabtest.Fault{Path: "/version", Delay: 2 * time.Second, Times: 1})
		client := mustClient(t, srv, testToken, gitlab.WithCustomRetryMax(0))
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, _, err := client.Version.GetVersion(gitlab.WithContext(ctx))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("got error %v, want context.DeadlineExceeded", err)
		}
	})

	t.Run("SlowButOK", func(t *testing.T) {
		srv := mustSampleServer(t, gitlabtest.Options{})
		srv.InjectFault(gitlabtest.Fault{Path: "/version", Delay: 100 * time.Millisecond})
		client := mustClient(t, srv, testToken)
		start := time.Now()
		v, _, err := client.Version.GetVersion()
		if err != nil || v.Version != "17.4.0-pre" {
			t.Fatalf("got %v, error %v; want version 17.4.0-pre", v, err)
		}
		if elapsed := time.Since(start); elapsed < 100*time.Millisecond {
			t.Errorf("got an answer in %v, want at least 100ms", elapsed)
		}
	})

	t.Run("Latency", func(t *testing.T) {
		srv := mustSampleServer(t, gitlabtest.Options{Latency: 60 * time.Millisecond})
		client := mustClient(t, srv, testToken)
		start := time.Now()
		if _, _, err := client.Version.GetVersion(); err != nil {
			t.Fatalf("GetVersion: %v", err)
		}
		if elapsed := time.Since(start); elapsed < 60*time.Millisecond {
			t.Errorf("got an answer in %v, want at least 60ms", elapsed)
		}
	})
}

func TestCounters(t *testing.T) {
	srv := mustSampleServer(t, gitlabtest.Options{})
	client := mustClient(t, srv, testToken)
	after := time.Date(2022, 2, 10, 14, 13, 47, 0, time.UTC)

	_, _, _ = client.Version.GetVersion()
	_, _, _ = client.Projects.GetProject(12345678, nil)
	_, _, _ = client.Projects.GetProject("gitea/test_repo", nil)
	_, _, _ = client.MergeRequests.ListProjectMergeRequests(12345678,
		&gitlab.ListProjectMergeRequestsOptions{UpdatedAfter: &after})
	_, _, _ = client.Users.GetUser(1, nil)
	_, _, _ = client.Users.GetUser(404404, nil)
	mustUsersQuery(t, client, map[string]any{"ids": gids(1)})
	mustGet(t, srv.URL()+"/api/v4/version", map[string]string{"Private-Token": "wrong"})

	want := map[string]int{
		"version": 2, "project": 2, "merge_requests": 1, "users": 2, "graphql": 1, "other": 0,
		"total": 8, "status_200": 6, "status_401": 1, "status_404": 1,
	}
	for kind, w := range want {
		if got := srv.Requests(kind); got != w {
			t.Errorf("got Requests(%q) = %d, want %d", kind, got, w)
		}
	}
	log := srv.RequestLog()
	if len(log) != 8 {
		t.Errorf("got %d logged requests, want 8: %v", len(log), log)
	}
	for _, want := range []string{
		"/api/v4/projects/gitea%2Ftest_repo",
		"/api/v4/projects/12345678/merge_requests?updated_after=2022-02-10T14%3A13%3A47Z",
	} {
		if !slices.Contains(log, want) {
			t.Errorf("got log %v, want it to contain %q", log, want)
		}
	}

	srv.ResetCounters()
	if got, log := srv.Requests("total"), srv.RequestLog(); got != 0 || len(log) != 0 {
		t.Errorf("after ResetCounters: got total %d and %d logged requests, want 0 and 0", got, len(log))
	}
}

func TestRateLimitHeaders(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 500_000_000, time.UTC)
	tests := []struct {
		name      string
		rateLimit int
		want      map[string]string
	}{
		{"Default", 0, map[string]string{
			"RateLimit-Limit": "2000", "RateLimit-Observed": "2", "RateLimit-Remaining": "1998",
			"RateLimit-Reset": "1714564860", "RateLimit-ResetTime": "Wed, 01 May 2024 12:01:00 GMT",
		}},
		{"Custom", 10, map[string]string{"RateLimit-Limit": "10", "RateLimit-Remaining": "8"}},
		{"Omitted", -1, map[string]string{"RateLimit-Limit": "", "RateLimit-Reset": ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mustSampleServer(t, gitlabtest.Options{
				RateLimit: tt.rateLimit, Now: func() time.Time { return now },
			})
			mustGet(t, srv.URL()+"/api/v4/version", nil)
			resp, _ := mustGet(t, srv.URL()+"/api/v4/projects/12345678", nil)
			for k, want := range tt.want {
				if got := resp.Header.Get(k); got != want {
					t.Errorf("got %s %q, want %q", k, got, want)
				}
			}
		})
	}
}
