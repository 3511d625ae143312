package gitlabtest_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
)

func TestAuth(t *testing.T) {
	srv := mustSampleServer(t, gitlabtest.Options{})

	tests := []struct {
		name   string
		client func() (*gitlab.Client, error)
		opts   []gitlab.RequestOptionFunc
		want   int
	}{
		{
			name: "NoToken",
			client: func() (*gitlab.Client, error) {
				return gitlab.NewAuthSourceClient(gitlab.Unauthenticated{}, gitlab.WithBaseURL(srv.URL()))
			},
			want: http.StatusUnauthorized,
		},
		{
			name: "WrongPrivateToken",
			client: func() (*gitlab.Client, error) {
				return gitlab.NewClient("wrong", gitlab.WithBaseURL(srv.URL()))
			},
			want: http.StatusUnauthorized,
		},
		{
			name: "PrivateToken",
			client: func() (*gitlab.Client, error) {
				return gitlab.NewClient(testToken, gitlab.WithBaseURL(srv.URL()))
			},
			want: http.StatusOK,
		},
		{
			name: "BearerToken",
			client: func() (*gitlab.Client, error) {
				return gitlab.NewAuthSourceClient(gitlab.Unauthenticated{}, gitlab.WithBaseURL(srv.URL()))
			},
			opts: []gitlab.RequestOptionFunc{gitlab.WithHeader("Authorization", "Bearer "+testToken)},
			want: http.StatusOK,
		},
		{
			name: "WrongBearerToken",
			client: func() (*gitlab.Client, error) {
				return gitlab.NewAuthSourceClient(gitlab.Unauthenticated{}, gitlab.WithBaseURL(srv.URL()))
			},
			opts: []gitlab.RequestOptionFunc{gitlab.WithHeader("Authorization", "Bearer wrong")},
			want: http.StatusUnauthorized,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, err := tt.client()
			if err != nil {
				t.Fatalf("new client: %v", err)
			}
			for _, call := range []struct {
				name string
				do   func() (*gitlab.Response, error)
			}{
				{"GetVersion", func() (*gitlab.Response, error) {
					_, resp, err := client.Version.GetVersion(tt.opts...)
					return resp, err
				}},
				{"GetProject", func() (*gitlab.Response, error) {
					_, resp, err := client.Projects.GetProject(12345678, nil, tt.opts...)
					return resp, err
				}},
			} {
				resp, err := call.do()
				if resp == nil {
					t.Fatalf("%s: got no response, error %v", call.name, err)
				}
				if resp.StatusCode != tt.want {
					t.Errorf("%s: got status %d, want %d (error %v)", call.name, resp.StatusCode, tt.want, err)
				}
			}
		})
	}

	t.Run("Body", func(t *testing.T) {
		resp, body := mustGet(t, srv.URL()+"/api/v4/version", map[string]string{"Private-Token": ""})
		if resp.StatusCode != http.StatusUnauthorized || string(body) != `{"message":"401 Unauthorized"}` {
			t.Errorf("got %d %s, want 401 {\"message\":\"401 Unauthorized\"}", resp.StatusCode, body)
		}
	})
}

func TestGetProject(t *testing.T) {
	tests := []struct {
		name     string
		prefix   string
		ref      any
		wantID   int64
		wantPath string
	}{
		{"ByID", "", 12345678, 12345678, "gitlab-data/snowflake_spend"},
		{"ByPath", "", "gitlab-data/snowflake_spend", 12345678, "gitlab-data/snowflake_spend"},
		{"ByPathOtherCase", "", "Forgejo/Test_Repo", 61363672, "forgejo/test_repo"},
		{"SynthesizedByPath", "", "gitlab-org/gitlab-ee", 278964, "gitlab-org/gitlab-ee"},
		{"PrefixByID", "/gitlab", 15578026, 15578026, "gitea/test_repo"},
		{"PrefixByPath", "/gitlab/", "user1215848/archbuild", 6590996, "user1215848/archbuild"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mustSampleServer(t, gitlabtest.Options{Prefix: tt.prefix})
			client := mustClient(t, srv, testToken)
			p, _, err := client.Projects.GetProject(tt.ref, nil)
			if err != nil {
				t.Fatalf("GetProject(%v): %v", tt.ref, err)
			}
			if p.ID != tt.wantID || p.PathWithNamespace != tt.wantPath {
				t.Errorf("got %d %q, want %d %q", p.ID, p.PathWithNamespace, tt.wantID, tt.wantPath)
			}
			if tt.prefix != "" && !strings.HasSuffix(srv.URL(), strings.TrimSuffix(tt.prefix, "/")) {
				t.Errorf("got URL %q, want it to end with the prefix %q", srv.URL(), tt.prefix)
			}
		})
	}

	t.Run("RecordedBody", func(t *testing.T) {
		srv := mustSampleServer(t, gitlabtest.Options{})
		for _, tt := range []struct{ ref, file string }{
			{"forgejo%2Ftest_repo", "project_by_path_gitlab_com_2024-09.json"},
			{"12345678", "project_single_gitlab_com_2022-06.json"},
		} {
			_, body := mustGet(t, srv.URL()+"/api/v4/projects/"+tt.ref, nil)
			if want := mustCompactFile(t, tt.file); !bytes.Equal(body, want) {
				t.Errorf("GET /projects/%s: got\n%s\nwant the recording\n%s", tt.ref, body, want)
			}
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		srv := mustSampleServer(t, gitlabtest.Options{})
		for _, ref := range []string{"999999999999", "no%2Fsuch", "gitlab-data/snowflake_spend"} {
			resp, body := mustGet(t, srv.URL()+"/api/v4/projects/"+ref, nil)
			want := mustCompactFile(t, "error_404_project_not_found_gitlab_com_2023-02.json")
			if ref == "gitlab-data/snowflake_spend" {
				// An unencoded path is another route on GitLab.
				want = []byte(`{"error":"404 Not Found"}`)
			}
			if resp.StatusCode != http.StatusNotFound || !bytes.Equal(body, want) {
				t.Errorf("GET /projects/%s: got %d %s, want 404 %s", ref, resp.StatusCode, body, want)
			}
		}
	})
}

func TestSetProjectStatus(t *testing.T) {
	tests := []struct {
		name     string
		set      string
		status   int
		requests []string
		wantBody string
	}{
		{
			name:   "ForbiddenByPath",
			set:    "gitea/test_repo",
			status: http.StatusForbidden,
			requests: []string{
				"/projects/15578026",
				"/projects/gitea%2Ftest_repo/merge_requests",
				"/projects/15578026/merge_requests/2",
			},
			wantBody: `{"message":"403 Forbidden"}`,
		},
		{
			name:   "NotFoundByID",
			set:    "6590996",
			status: http.StatusNotFound,
			requests: []string{
				"/projects/user1215848%2Farchbuild",
				"/projects/6590996/merge_requests",
				"/projects/6590996/issues",
			},
			wantBody: `{"message":"404 Project Not Found"}`,
		},
		{
			name:     "UnknownProject",
			set:      "secret/project",
			status:   http.StatusForbidden,
			requests: []string{"/projects/secret%2Fproject"},
			wantBody: `{"message":"403 Forbidden"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mustSampleServer(t, gitlabtest.Options{})
			srv.SetProjectStatus(tt.set, tt.status)
			for _, path := range tt.requests {
				resp, body := mustGet(t, srv.URL()+"/api/v4"+path, nil)
				if resp.StatusCode != tt.status || string(body) != tt.wantBody {
					t.Errorf("GET %s: got %d %s, want %d %s", path, resp.StatusCode, body, tt.status, tt.wantBody)
				}
			}
			srv.SetProjectStatus(tt.set, 0)
			resp, _ := mustGet(t, srv.URL()+"/api/v4"+tt.requests[0], nil)
			if tt.name != "UnknownProject" && resp.StatusCode != http.StatusOK {
				t.Errorf("after clearing: GET %s: got %d, want 200", tt.requests[0], resp.StatusCode)
			}
		})
	}
}

func TestListMergeRequestsFilters(t *testing.T) {
	srv := mustSampleServer(t, gitlabtest.Options{})
	client := mustClient(t, srv, testToken)
	at := func(s string) *time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("parse %q: %v", s, err)
		}
		return &v
	}

	tests := []struct {
		name string
		opts gitlab.ListProjectMergeRequestsOptions
		want []int64 // iids, in order
	}{
		{
			name: "DefaultCreatedDesc",
			opts: gitlab.ListProjectMergeRequestsOptions{},
			want: []int64{21, 20, 19, 18, 17, 16, 14, 13, 12, 11, 10, 9, 8, 6, 5, 4, 3, 1},
		},
		{
			name: "UpdatedAtAsc",
			opts: gitlab.ListProjectMergeRequestsOptions{OrderBy: ptr("updated_at"), Sort: ptr("asc")},
			want: []int64{1, 3, 4, 5, 6, 8, 10, 11, 9, 12, 13, 14, 17, 16, 19, 20, 21, 18},
		},
		{
			name: "StateOpened",
			opts: gitlab.ListProjectMergeRequestsOptions{State: ptr("opened")},
			want: []int64{21, 19, 18, 11, 9},
		},
		{
			name: "StateMerged",
			opts: gitlab.ListProjectMergeRequestsOptions{State: ptr("merged")},
			want: []int64{16, 14, 12, 10, 8, 6, 5, 4, 3, 1},
		},
		{
			name: "StateClosedAsc",
			opts: gitlab.ListProjectMergeRequestsOptions{State: ptr("closed"), Sort: ptr("asc")},
			want: []int64{13, 17, 20},
		},
		{
			name: "StateAll",
			opts: gitlab.ListProjectMergeRequestsOptions{
				State: ptr("all"), ListOptions: gitlab.ListOptions{PerPage: 5},
			},
			want: []int64{21, 20, 19, 18, 17},
		},
		{
			// The client writes whole seconds; this is iid 19's updated_at without its .663.
			name: "UpdatedAfterSecondBefore",
			opts: gitlab.ListProjectMergeRequestsOptions{
				UpdatedAfter: at("2022-02-10T14:13:47Z"), OrderBy: ptr("updated_at"), Sort: ptr("asc"),
			},
			want: []int64{19, 20, 21, 18},
		},
		{
			name: "UpdatedAfterSecondAfter",
			opts: gitlab.ListProjectMergeRequestsOptions{
				UpdatedAfter: at("2022-02-10T14:13:48Z"), OrderBy: ptr("updated_at"), Sort: ptr("asc"),
			},
			want: []int64{20, 21, 18},
		},
		{
			name: "UpdatedAfterWithOffset",
			opts: gitlab.ListProjectMergeRequestsOptions{
				UpdatedAfter: at("2022-02-10T15:13:47+01:00"), OrderBy: ptr("updated_at"), Sort: ptr("asc"),
			},
			want: []int64{19, 20, 21, 18},
		},
		{
			name: "CreatedWindow",
			opts: gitlab.ListProjectMergeRequestsOptions{
				CreatedAfter: at("2020-03-24T00:00:00Z"), CreatedBefore: at("2020-04-08T20:09:09Z"),
			},
			want: []int64{9, 8, 6, 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mrs, _, err := client.MergeRequests.ListProjectMergeRequests(12345678, &tt.opts)
			if err != nil {
				t.Fatalf("ListProjectMergeRequests: %v", err)
			}
			if got := iidsOf(mrs); !slices.Equal(got, tt.want) {
				t.Errorf("got iids %v, want %v", got, tt.want)
			}
		})
	}

	// The client drops milliseconds; a caller sending them must get the same inclusive
	// comparison on the exact instant.
	rawTests := []struct {
		name  string
		query string
		want  []int64
	}{
		{"UpdatedAfterExactMillis", "updated_after=2022-02-10T14:13:47.663Z", []int64{19, 20, 21, 18}},
		{"UpdatedAfterOneMilliLater", "updated_after=2022-02-10T14:13:47.664Z", []int64{20, 21, 18}},
		{"UpdatedAfterExactOffset", "updated_after=2022-02-10T15:13:47.663%2B01:00", []int64{19, 20, 21, 18}},
		{"UpdatedBeforeExactMillis", "updated_before=2019-08-26T15:37:49.575Z", []int64{1, 3, 4}},
		{"UpdatedBeforeOneMilliEarlier", "updated_before=2019-08-26T15:37:49.574Z", []int64{1, 3}},
		{"IIDs", "iids[]=3&iids[]=21&iids[]=99", []int64{3, 21}},
		{"AuthorID", "author_id=2295562", []int64{1, 4, 10}},
	}
	for _, tt := range rawTests {
		t.Run(tt.name, func(t *testing.T) {
			url := srv.URL() + "/api/v4/projects/12345678/merge_requests?order_by=updated_at&sort=asc&" +
				tt.query
			resp, body := mustGet(t, url, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got status %d %s, want 200", resp.StatusCode, body)
			}
			var got []struct {
				IID int64 `json:"iid"`
			}
			mustUnmarshal(t, body, &got)
			var iids []int64
			for _, mr := range got {
				iids = append(iids, mr.IID)
			}
			if !slices.Equal(iids, tt.want) {
				t.Errorf("got iids %v, want %v", iids, tt.want)
			}
		})
	}

	badTests := []struct {
		name, query, want string
	}{
		{"UnencodedPlus", "updated_after=2022-02-10T15:13:47.663+01:00",
			`{"error":"updated_after is invalid"}`},
		{"BadState", "state=merged_or_not", `{"error":"state does not have a valid value"}`},
		{"BadOrderBy", "order_by=id", `{"error":"order_by does not have a valid value"}`},
		{"BadPage", "page=x", `{"error":"page is invalid"}`},
	}
	for _, tt := range badTests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := mustGet(t, srv.URL()+"/api/v4/projects/12345678/merge_requests?"+tt.query, nil)
			if resp.StatusCode != http.StatusBadRequest || string(body) != tt.want {
				t.Errorf("got %d %s, want 400 %s", resp.StatusCode, body, tt.want)
			}
		})
	}
}

func TestPagination(t *testing.T) {
	srv := mustEmptyServer(t, gitlabtest.Options{})
	start := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	srv.GenerateMergeRequests(42, 250, start, time.Minute)
	client := mustClient(t, srv, testToken)

	opts := &gitlab.ListProjectMergeRequestsOptions{
		ListOptions: gitlab.ListOptions{PerPage: 100},
		State:       ptr("all"),
		OrderBy:     ptr("updated_at"),
		Sort:        ptr("asc"),
	}
	var (
		pages int
		seen  = map[int64]bool{}
		last  time.Time
	)
	for page := int64(1); page != 0; {
		opts.Page = page
		mrs, resp, err := client.MergeRequests.ListProjectMergeRequests(42, opts)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		pages++
		if resp.TotalItems != 250 || resp.TotalPages != 3 {
			t.Errorf("page %d: got totals %d/%d, want 250/3", page, resp.TotalItems, resp.TotalPages)
		}
		for _, mr := range mrs {
			if seen[mr.ID] {
				t.Errorf("page %d: merge request %d seen twice", page, mr.ID)
			}
			seen[mr.ID] = true
			if mr.UpdatedAt.Before(last) {
				t.Errorf("page %d: updated_at %v before %v", page, mr.UpdatedAt, last)
			}
			last = *mr.UpdatedAt
		}
		if v, ok := resp.Header["X-Next-Page"]; !ok {
			t.Errorf("page %d: X-Next-Page missing, want it present", page)
		} else if resp.NextPage == 0 && v[0] != "" {
			t.Errorf("page %d: got X-Next-Page %q, want empty", page, v[0])
		}
		page = resp.NextPage
	}
	if pages != 3 || len(seen) != 250 {
		t.Errorf("got %d pages and %d merge requests, want 3 and 250", pages, len(seen))
	}
	if want := start.Add(249 * time.Minute); !last.Equal(want) {
		t.Errorf("got last updated_at %v, want %v", last, want)
	}

	t.Run("Links", func(t *testing.T) {
		resp, _ := mustGet(t, srv.URL()+"/api/v4/projects/42/merge_requests?per_page=100&page=2", nil)
		base := srv.URL() + "/api/v4/projects/42/merge_requests?id=42&order_by=created_at&page=%d" +
			"&per_page=100&sort=desc&state=all&with_labels_details=false&with_merge_status_recheck=false"
		want := fmt.Sprintf(`<`+base+`>; rel="prev", <`+base+`>; rel="next", `+
			`<`+base+`>; rel="first", <`+base+`>; rel="last"`, 1, 3, 1, 3)
		if got := resp.Header.Get("Link"); got != want {
			t.Errorf("got Link\n%s\nwant\n%s", got, want)
		}
		for k, want := range map[string]string{
			"X-Page": "2", "X-Prev-Page": "1", "X-Next-Page": "3", "X-Per-Page": "100",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("got %s %q, want %q", k, got, want)
			}
		}
	})

	t.Run("PastLastPage", func(t *testing.T) {
		resp, body := mustGet(t, srv.URL()+"/api/v4/projects/42/merge_requests?per_page=100&page=4", nil)
		next, prev := resp.Header.Get("X-Next-Page"), resp.Header.Get("X-Prev-Page")
		if string(body) != "[]" || next != "" || prev != "" {
			t.Errorf("got %s, next %q, prev %q; want [], empty, empty", body, next, prev)
		}
	})

	t.Run("PerPageCapped", func(t *testing.T) {
		opts := &gitlab.ListProjectMergeRequestsOptions{ListOptions: gitlab.ListOptions{PerPage: 500}}
		mrs, resp, err := client.MergeRequests.ListProjectMergeRequests(42, opts)
		if err != nil {
			t.Fatalf("ListProjectMergeRequests: %v", err)
		}
		if len(mrs) != 100 || resp.ItemsPerPage != 100 {
			t.Errorf("got %d items, X-Per-Page %d; want 100, 100", len(mrs), resp.ItemsPerPage)
		}
	})

	t.Run("DefaultPerPage", func(t *testing.T) {
		mrs, resp, err := client.MergeRequests.ListProjectMergeRequests(42, nil)
		if err != nil {
			t.Fatalf("ListProjectMergeRequests: %v", err)
		}
		if len(mrs) != 20 || resp.ItemsPerPage != 20 || resp.TotalPages != 13 {
			t.Errorf("got %d items, X-Per-Page %d, %d pages; want 20, 20, 13",
				len(mrs), resp.ItemsPerPage, resp.TotalPages)
		}
	})
}

func TestTotalsPast10000(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		wantTotals bool
	}{
		{"Exactly10000", 10000, true},
		{"Past10000", 10001, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mustEmptyServer(t, gitlabtest.Options{RateLimit: -1})
			srv.GenerateMergeRequests(7, tt.n, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Second)
			client := mustClient(t, srv, testToken)

			opts := &gitlab.ListProjectMergeRequestsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}}
			first, resp, err := client.MergeRequests.ListProjectMergeRequests(7, opts)
			if err != nil {
				t.Fatalf("page 1: %v", err)
			}
			_, hasTotal := resp.Header["X-Total"]
			_, hasPages := resp.Header["X-Total-Pages"]
			hasLast := strings.Contains(resp.Header.Get("Link"), `rel="last"`)
			if hasTotal != tt.wantTotals || hasPages != tt.wantTotals || hasLast != tt.wantTotals {
				t.Errorf("got X-Total %v, X-Total-Pages %v, last link %v; want all %v",
					hasTotal, hasPages, hasLast, tt.wantTotals)
			}
			if len(first) != 100 || resp.NextPage != 2 {
				t.Errorf("got %d items, next page %d; want 100, 2", len(first), resp.NextPage)
			}

			lastPage := int64((tt.n + 99) / 100)
			opts.Page = lastPage
			mrs, resp, err := client.MergeRequests.ListProjectMergeRequests(7, opts)
			if err != nil {
				t.Fatalf("page %d: %v", lastPage, err)
			}
			wantItems := tt.n - int(lastPage-1)*100
			if len(mrs) != wantItems || resp.NextPage != 0 || resp.Header.Get("X-Next-Page") != "" {
				t.Errorf("page %d: got %d items, X-Next-Page %q; want %d, empty",
					lastPage, len(mrs), resp.Header.Get("X-Next-Page"), wantItems)
			}
		})
	}
}

// TestRecordedLists asks what the recordings asked and compares with what GitLab answered.
func TestRecordedLists(t *testing.T) {
	srv := mustSampleServer(t, gitlabtest.Options{})
	pageHeaders := []string{
		"Content-Type", "X-Page", "X-Per-Page", "X-Next-Page", "X-Prev-Page", "X-Total", "X-Total-Pages",
		"Link",
	}
	tests := []struct {
		name    string
		path    string
		body    string
		headers string
		compare []string
	}{
		{
			name:    "ViewSimple2024",
			path:    "/api/v4/projects/61363672/merge_requests?page=1&per_page=1&view=simple",
			body:    "merge_requests_list_view_simple_gitlab_com_2024-09.json",
			headers: "merge_requests_list_view_simple_gitlab_com_2024-09.headers.json",
			compare: pageHeaders,
		},
		{
			name:    "ViewSimple2023",
			path:    "/api/v4/projects/6590996/merge_requests?page=1&per_page=10&view=simple",
			body:    "merge_requests_list_view_simple_with_ratelimit_headers_gitlab_com_2023-11.json",
			headers: "merge_requests_list_view_simple_with_ratelimit_headers_gitlab_com_2023-11.headers.json",
			compare: append(slices.Clip(pageHeaders), "Ratelimit-Limit"),
		},
		{
			// The recording saw two merge requests; only the first was recorded.
			name:    "Page1Of2023",
			path:    "/api/v4/projects/15578026/merge_requests?page=1&per_page=1",
			body:    "merge_requests_list_page1_gitlab_com_2023-11.json",
			headers: "merge_requests_list_page1_gitlab_com_2023-11.headers.json",
			compare: []string{"Content-Type", "X-Page", "X-Per-Page", "X-Prev-Page"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := mustGet(t, srv.URL()+tt.path, nil)
			if want := mustCompactFile(t, tt.body); !bytes.Equal(body, want) {
				t.Errorf("got body\n%s\nwant the recording\n%s", body, want)
			}
			recorded := mustRecordedHeaders(t, tt.headers)
			for _, k := range tt.compare {
				want := strings.ReplaceAll(fmt.Sprint(recorded[k]), "https://gitlab.com", srv.URL())
				if got := resp.Header.Get(k); got != want {
					t.Errorf("got %s %q, want %q", k, got, want)
				}
			}
		})
	}

	t.Run("SingleMergeRequests", func(t *testing.T) {
		for _, tt := range []struct{ path, file string }{
			{"/api/v4/projects/61363672/merge_requests/1", "merge_request_single_gitlab_com_2024-09.json"},
			{
				"/api/v4/projects/user1215848%2Farchbuild/merge_requests/1",
				"merge_request_single_imported_with_ratelimit_headers_gitlab_com_2023-11.json",
			},
		} {
			_, body := mustGet(t, srv.URL()+tt.path, nil)
			if want := mustCompactFile(t, tt.file); !bytes.Equal(body, want) {
				t.Errorf("GET %s: got\n%s\nwant the recording\n%s", tt.path, body, want)
			}
		}
	})

	t.Run("ListLeavesOutDetailFields", func(t *testing.T) {
		_, body := mustGet(t, srv.URL()+"/api/v4/projects/61363672/merge_requests", nil)
		for _, key := range []string{`"diff_refs"`, `"changes_count"`, `"user"`, `"subscribed"`} {
			if bytes.Contains(body, []byte(key)) {
				t.Errorf("got %s in the list, want it only on the single merge request", key)
			}
		}
		if !bytes.Contains(body, []byte(`"imported_from":"none"`)) {
			t.Errorf("got %s, want the recorded imported_from", body)
		}
	})
}

func TestUsersREST(t *testing.T) {
	srv := mustSampleServer(t, gitlabtest.Options{})
	client := mustClient(t, srv, testToken)

	tests := []struct {
		name         string
		id           int64
		wantStatus   int
		wantUsername string
	}{
		{"AdminShape", 2994198, http.StatusOK, "abc1"},
		{"NestedOnly", 1942272, http.StatusOK, "user1942272"},
		{"Unknown", 404404, http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u, resp, err := client.Users.GetUser(tt.id, nil)
			if resp == nil {
				t.Fatalf("GetUser: no response, error %v", err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d, want %d (error %v)", resp.StatusCode, tt.wantStatus, err)
			}
			if tt.wantStatus != http.StatusOK {
				if !errors.Is(err, gitlab.ErrNotFound) {
					t.Errorf("got error %v, want gitlab.ErrNotFound", err)
				}
				_, body := mustGet(t, fmt.Sprintf("%s/api/v4/users/%d", srv.URL(), tt.id), nil)
				if want := `{"message":"404 User Not Found"}`; string(body) != want {
					t.Errorf("got body %s, want %s", body, want)
				}
				return
			}
			if u.Username != tt.wantUsername {
				t.Errorf("got username %q, want %q", u.Username, tt.wantUsername)
			}
		})
	}
}

func TestRoutes(t *testing.T) {
	srv := mustSampleServer(t, gitlabtest.Options{Prefix: "/gitlab"})
	version := string(mustCompactFile(t, "version_gitlab_com_2024-09.json"))
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantBody           string
	}{
		{"UnknownRoute", "GET", "/gitlab/api/v4/groups", 404, `{"error":"404 Not Found"}`},
		{"OutsidePrefix", "GET", "/api/v4/version", 404, `{"error":"404 Not Found"}`},
		{"Version", "GET", "/gitlab/api/v4/version", 200, version},
		{"WrongMethod", "DELETE", "/gitlab/api/v4/projects/12345678", 405, `{"error":"405 Not Allowed"}`},
		{"UnknownMergeRequest", "GET", "/gitlab/api/v4/projects/12345678/merge_requests/2", 404,
			`{"message":"404 Merge Request Not Found"}`},
	}
	t.Run("UnknownRouteWithoutToken", func(t *testing.T) {
		resp, body := mustGet(t, srv.URL()+"/api/v4/groups", map[string]string{"Private-Token": ""})
		if resp.StatusCode != 404 || string(body) != `{"error":"404 Not Found"}` {
			t.Errorf("got %d %s, want 404 {\"error\":\"404 Not Found\"}", resp.StatusCode, body)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := mustDo(t, tt.method, srv.URL()[:len(srv.URL())-len("/gitlab")]+tt.path, nil, nil)
			if resp.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("got Content-Type %q, want application/json", ct)
			}
		})
	}
}
