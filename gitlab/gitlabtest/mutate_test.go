package gitlabtest_test

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go/v2"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
)

func mergeRequestByIID(tb testing.TB, srv *gitlabtest.Server, pid, iid int64) map[string]any {
	tb.Helper()
	for _, mr := range srv.MergeRequests(pid) {
		if int64(mr["iid"].(float64)) == iid {
			return mr
		}
	}
	tb.Fatalf("no merge request !%d in project %d", iid, pid)
	return nil
}

func TestUpdateMergeRequest(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 123_456_789, time.UTC)
	tests := []struct {
		name        string
		zone        *time.Location
		wantUpdated string
	}{
		{"UTC", nil, "2024-05-01T10:00:00.123Z"},
		{"SelfManagedZone", time.FixedZone("CET", 3600), "2024-05-01T11:00:00.123+01:00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mustSampleServer(t, gitlabtest.Options{Zone: tt.zone, Now: func() time.Time { return now }})
			before := mergeRequestByIID(t, srv, 12345678, 13)
			srv.UpdateMergeRequest(12345678, 13, map[string]any{
				"state": "opened", "closed_by": nil, "closed_at": nil,
			})
			after := mergeRequestByIID(t, srv, 12345678, 13)

			if got := after["updated_at"]; got != tt.wantUpdated {
				t.Errorf("got updated_at %v, want %s", got, tt.wantUpdated)
			}
			if after["state"] != "opened" || after["closed_by"] != nil || after["closed_at"] != nil {
				t.Errorf("got state %v, closed_by %v, closed_at %v; want opened, null, null",
					after["state"], after["closed_by"], after["closed_at"])
			}
			// Every other field is as recorded.
			for k, v := range before {
				switch k {
				case "updated_at", "state", "closed_by", "closed_at":
					continue
				}
				if !reflect.DeepEqual(after[k], v) {
					t.Errorf("field %s: got %v, want the recorded %v", k, after[k], v)
				}
			}
			if !slices.Equal(slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(before))) {
				t.Errorf("got keys %v, want %v", slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(before)))
			}

			// The change is what an incremental sync sees, served in the zone.
			client := mustClient(t, srv, testToken)
			since := now.Truncate(time.Second)
			opts := &gitlab.ListProjectMergeRequestsOptions{
				UpdatedAfter: &since, OrderBy: ptr("updated_at"), Sort: ptr("asc"), State: ptr("opened"),
			}
			mrs, _, err := client.MergeRequests.ListProjectMergeRequests(12345678, opts)
			if err != nil {
				t.Fatalf("ListProjectMergeRequests: %v", err)
			}
			if got := iidsOf(mrs); !slices.Equal(got, []int64{13}) {
				t.Errorf("got iids %v updated since %v, want [13]", got, since)
			}
			_, body := mustGet(t, srv.URL()+"/api/v4/projects/12345678/merge_requests?iids[]=13", nil)
			if !bytes.Contains(body, []byte(`"updated_at":"`+tt.wantUpdated+`"`)) {
				t.Errorf("got %s, want updated_at written as %s", body, tt.wantUpdated)
			}
		})
	}

	t.Run("ExplicitUpdatedAt", func(t *testing.T) {
		srv := mustSampleServer(t, gitlabtest.Options{})
		srv.UpdateMergeRequest(12345678, 1, map[string]any{"updated_at": "2030-01-01T00:00:00.000Z"})
		if got := mergeRequestByIID(t, srv, 12345678, 1)["updated_at"]; got != "2030-01-01T00:00:00.000Z" {
			t.Errorf("got updated_at %v, want 2030-01-01T00:00:00.000Z", got)
		}
	})

	t.Run("NewReviewerBecomesKnown", func(t *testing.T) {
		srv := mustSampleServer(t, gitlabtest.Options{})
		reviewer := map[string]any{
			"id": 777, "username": "user777", "name": "User 777", "state": "active",
			"avatar_url": nil, "web_url": "https://gitlab.com/user777",
		}
		srv.UpdateMergeRequest(12345678, 21, map[string]any{"reviewers": []any{reviewer}})
		if srv.User(777) == nil {
			t.Errorf("got no user 777, want the new reviewer known")
		}
	})
}

func TestTouchProject(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name          string
		id            int64
		wantUpdatedAt any
	}{
		{"WithUpdatedAt", 61363672, "2024-05-01T10:00:00.000Z"},
		{"RecordedBeforeUpdatedAt", 12345678, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := mustSampleServer(t, gitlabtest.Options{Now: func() time.Time { return now }})
			srv.TouchProject(tt.id)
			p := srv.Project(tt.id)
			if got := p["last_activity_at"]; got != "2024-05-01T10:00:00.000Z" {
				t.Errorf("got last_activity_at %v, want 2024-05-01T10:00:00.000Z", got)
			}
			if got := p["updated_at"]; got != tt.wantUpdatedAt {
				t.Errorf("got updated_at %v, want %v", got, tt.wantUpdatedAt)
			}
		})
	}
}

func TestAddData(t *testing.T) {
	srv := mustEmptyServer(t, gitlabtest.Options{})
	srv.AddProject(map[string]any{
		"id": 5, "path_with_namespace": "acme/tools", "updated_at": "2024-01-01T00:00:00.000Z",
	})
	srv.AddMergeRequest(5, map[string]any{
		"id": 500, "iid": 1, "project_id": 999, "state": "opened", "title": "First",
		"created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-02T00:00:00.000Z",
		"author": map[string]any{"id": 55, "username": "dev"},
	})
	// An unknown project is synthesized from the merge request's web_url.
	srv.AddMergeRequest(6, map[string]any{
		"id": 600, "iid": 3, "state": "merged",
		"created_at": "2024-01-01T00:00:00.000Z", "updated_at": "2024-01-02T00:00:00.000Z",
		"web_url": "https://gitlab.example.com/acme/sub/app/-/merge_requests/3",
	})

	client := mustClient(t, srv, testToken)
	p, _, err := client.Projects.GetProject("acme/tools", nil)
	if err != nil || p.ID != 5 {
		t.Fatalf("GetProject: got %v, error %v; want project 5", p, err)
	}
	mrs, _, err := client.MergeRequests.ListProjectMergeRequests(5, nil)
	if err != nil || len(mrs) != 1 || mrs[0].ProjectID != 5 || mrs[0].Author.ID != 55 {
		t.Fatalf("ListProjectMergeRequests: got %+v, error %v; want merge request 500 by 55", mrs, err)
	}
	if got := srv.ProjectPath(6); got != "acme/sub/app" {
		t.Errorf("got synthesized path %q, want acme/sub/app", got)
	}
	if got := srv.UserIDs(); !slices.Equal(got, []int64{55}) {
		t.Errorf("got users %v, want [55]", got)
	}
}

func TestGenerateMergeRequests(t *testing.T) {
	srv := mustSampleServer(t, gitlabtest.Options{RateLimit: -1})
	start := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	const n = 20000
	srv.GenerateMergeRequests(12345678, n, start, time.Minute)

	client := mustClient(t, srv, testToken)
	opts := &gitlab.ListProjectMergeRequestsOptions{
		ListOptions: gitlab.ListOptions{PerPage: 100},
		OrderBy:     ptr("updated_at"),
	}
	mrs, resp, err := client.MergeRequests.ListProjectMergeRequests(12345678, opts)
	if err != nil {
		t.Fatalf("ListProjectMergeRequests: %v", err)
	}
	if _, ok := resp.Header["X-Total"]; ok {
		t.Errorf("got X-Total with %d rows, want it left out", n+18)
	}
	newest := mrs[0]
	if want := start.Add((n - 1) * time.Minute); !newest.UpdatedAt.Equal(want) {
		t.Errorf("got newest updated_at %v, want %v", newest.UpdatedAt, want)
	}
	if newest.IID != 21+n {
		t.Errorf("got newest iid %d, want %d", newest.IID, 21+n)
	}
	wantURL := fmt.Sprintf("https://gitlab.com/gitlab-data/snowflake_spend/-/merge_requests/%d", newest.IID)
	if newest.WebURL != wantURL {
		t.Errorf("got web_url %q, want %q", newest.WebURL, wantURL)
	}

	known := srv.UserIDs()
	authors := map[int64]bool{}
	states := map[string]int{}
	for _, mr := range mrs {
		authors[mr.Author.ID] = true
		states[mr.State]++
		if !slices.Contains(known, mr.Author.ID) {
			t.Errorf("merge request %d: author %d is not a known user", mr.IID, mr.Author.ID)
		}
		for _, r := range mr.Reviewers {
			if !slices.Contains(known, r.ID) || r.ID == mr.Author.ID {
				t.Errorf("merge request %d: reviewer %d unknown or the author", mr.IID, r.ID)
			}
		}
		if mr.State == "merged" && (mr.MergedBy == nil || mr.MergedAt == nil) {
			t.Errorf("merge request %d: merged without merged_by or merged_at", mr.IID)
		}
	}
	if len(authors) < 3 {
		t.Errorf("got %d distinct authors on a page, want at least 3", len(authors))
	}
	if states["merged"] != 60 || states["opened"] != 20 || states["closed"] != 20 {
		t.Errorf("got states %v on a page, want 60 merged, 20 opened, 20 closed", states)
	}
	// The recorded merge requests are still there and unchanged.
	_, body := mustGet(t, srv.URL()+"/api/v4/projects/12345678/merge_requests?iids[]=21", nil)
	if !bytes.Contains(body, []byte(`"updated_at":"2022-06-03T18:06:46.331Z"`)) {
		t.Errorf("got recorded !21 %s, want updated_at 2022-06-03T18:06:46.331Z", body)
	}
}

func TestConcurrentUse(t *testing.T) {
	srv := mustSampleServer(t, gitlabtest.Options{RateLimit: -1})
	client := mustClient(t, srv, testToken)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 10 {
				if _, _, err := client.MergeRequests.ListProjectMergeRequests(12345678, nil); err != nil {
					t.Errorf("ListProjectMergeRequests: %v", err)
				}
				srv.UpdateMergeRequest(12345678, int64([]int{1, 3, 4, 5}[i]), map[string]any{"title": "t"})
				srv.TouchProject(12345678)
				_ = srv.Requests("total")
			}
		})
	}
	wg.Go(func() { srv.GenerateMergeRequests(42, 500, time.Now(), time.Second) })
	wg.Wait()
	if got := srv.Requests("merge_requests"); got != 40 {
		t.Errorf("got %d list requests, want 40", got)
	}
}

func BenchmarkGenerateMergeRequests(b *testing.B) {
	start := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	for b.Loop() {
		srv := gitlabtest.NewUnstartedServer(gitlabtest.Options{Token: testToken})
		srv.GenerateMergeRequests(1, 20000, start, time.Minute)
	}
}

func BenchmarkListPage(b *testing.B) {
	srv := mustEmptyServer(b, gitlabtest.Options{RateLimit: -1})
	srv.GenerateMergeRequests(1, 20000, time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), time.Minute)
	client := mustClient(b, srv, testToken)
	since := time.Date(2023, 1, 5, 0, 0, 0, 0, time.UTC)
	opts := &gitlab.ListProjectMergeRequestsOptions{
		ListOptions:  gitlab.ListOptions{PerPage: 100, Page: 3},
		UpdatedAfter: &since, OrderBy: ptr("updated_at"), Sort: ptr("asc"),
	}
	for b.Loop() {
		if _, _, err := client.MergeRequests.ListProjectMergeRequests(1, opts); err != nil {
			b.Fatal(err)
		}
	}
}
