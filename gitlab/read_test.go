package gitlab_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

const token = "glpat-read-test"

// setup starts a simulator and a client for it, with short retry waits.
func setup(tb testing.TB, opts gitlabtest.Options) (*gitlabtest.Server, *gitlab.Client) {
	tb.Helper()
	opts.Token = token
	opts.RateLimit = -1
	sim := gitlabtest.NewServer(opts)
	tb.Cleanup(sim.Close)
	c, err := gitlab.NewClient(gitlab.Options{
		BaseURL: sim.URL(), Token: token,
		RetryWaitMin: time.Millisecond, RetryWaitMax: 10 * time.Millisecond, RetryMax: 3,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return sim, c
}

// MustCollect streams every merge request of a project since a time.
func MustCollect(tb testing.TB, c *gitlab.Client, pid int64, since time.Time, each func(page int)) []table.MergeRequest {
	tb.Helper()
	var out []table.MergeRequest
	pages := 0
	err := c.MergeRequests(context.Background(), pid, since, func(page []table.MergeRequest) error {
		pages++
		out = append(out, page...)
		if each != nil {
			each(pages)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("MergeRequests: %v", err)
	}
	return out
}

func distinct(rows []table.MergeRequest) map[int64]time.Time {
	m := map[int64]time.Time{}
	for _, r := range rows {
		if t := r.Version(); t.After(m[r.MergeRequestID]) {
			m[r.MergeRequestID] = t
		}
	}
	return m
}

func TestClient_MergeRequestsWalksEveryRow(t *testing.T) {
	sim, c := setup(t, gitlabtest.Options{})
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	sim.GenerateMergeRequests(77, 250, start, time.Second)

	rows := MustCollect(t, c, 77, time.Time{}, nil)
	if got := len(distinct(rows)); got != 250 {
		t.Errorf("got %d distinct merge requests, want 250", got)
	}
	for i := 1; i < len(rows); i++ {
		if rows[i].Version().Before(rows[i-1].Version()) {
			t.Fatalf("row %d updated before row %d: want oldest update first", i, i-1)
		}
	}
	// 3 pages of 100, each next one asked from the last row's time.
	if got := sim.Requests("merge_requests"); got > 4 {
		t.Errorf("%d list requests for 250 rows, want at most 4", got)
	}
	ms := regexp.MustCompile(`updated_after=2024-03-01T00%3A0[0-9]%3A[0-9]{2}\.000Z`)
	found := false
	for _, u := range sim.RequestLog() {
		if strings.Contains(u, "updated_after=") {
			found = true
			if !ms.MatchString(u) {
				t.Errorf("updated_after not in UTC with milliseconds: %s", u)
			}
		}
		for _, want := range []string{"order_by=updated_at", "sort=asc", "state=all", "per_page=100"} {
			if strings.Contains(u, "/merge_requests") && !strings.Contains(u, want) {
				t.Errorf("request lacks %s: %s", want, u)
			}
		}
	}
	if !found {
		t.Errorf("no request walked forward with updated_after")
	}
}

func TestClient_MergeRequestsSurvivesUpdatesWhilePaging(t *testing.T) {
	// Offset paging alone skips a row when one on an earlier page is updated
	// while paging (it moves to the end, shifting the rest one place up).
	sim, c := setup(t, gitlabtest.Options{Now: func() time.Time { return time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC) }})
	sim.GenerateMergeRequests(77, 300, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC), time.Second)
	first := sim.MergeRequests(77)
	rows := MustCollect(t, c, 77, time.Time{}, func(page int) {
		if page == 1 {
			iid := int64(first[0]["iid"].(float64))
			sim.UpdateMergeRequest(77, iid, map[string]any{"title": "changed while paging"})
		}
	})
	if got := len(distinct(rows)); got != 300 {
		t.Errorf("got %d distinct merge requests, want all 300", got)
	}
}

func TestClient_MergeRequestsSinceIsInclusive(t *testing.T) {
	sim, c := setup(t, gitlabtest.Options{})
	start := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	sim.GenerateMergeRequests(77, 10, start, time.Minute)
	rows := MustCollect(t, c, 77, start.Add(4*time.Minute), nil)
	if got := len(distinct(rows)); got != 6 {
		t.Errorf("since the 5th update: got %d merge requests, want 6 (inclusive)", got)
	}
}

func TestClient_Zones(t *testing.T) {
	zone := time.FixedZone("CET", 3600)
	sim, c := setup(t, gitlabtest.Options{Zone: zone})
	sim.GenerateMergeRequests(77, 3, time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), time.Minute)
	if raw := sim.MergeRequests(77)[0]["updated_at"].(string); !strings.HasSuffix(raw, "+01:00") {
		t.Fatalf("simulator answered %s, want a +01:00 offset", raw)
	}
	rows := MustCollect(t, c, 77, time.Time{}, nil)
	if got, want := rows[0].Version(), time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC); !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("updated_at = %v, want %v in UTC", got, want)
	}
	if v := rows[0].Values()[8].(time.Time); v.Location() != time.UTC {
		t.Errorf("stored updated_at is in %v, want UTC", v.Location())
	}
}

func TestClient_Project(t *testing.T) {
	for _, prefix := range []string{"", "/gitlab"} {
		t.Run(fmt.Sprintf("Prefix%q", prefix), func(t *testing.T) {
			sim, c := setup(t, gitlabtest.Options{Prefix: prefix})
			if err := sim.LoadSamples(); err != nil {
				t.Fatal(err)
			}
			for _, id := range sim.ProjectIDs() {
				for _, ref := range []string{fmt.Sprint(id), sim.ProjectPath(id)} {
					p, err := c.Project(context.Background(), ref)
					if err != nil {
						t.Fatalf("Project(%q): %v", ref, err)
					}
					if p.ProjectID != id || p.PathWithNamespace != sim.ProjectPath(id) {
						t.Errorf("Project(%q) = %d %q, want %d %q", ref, p.ProjectID, p.PathWithNamespace, id, sim.ProjectPath(id))
					}
					if p.UpdatedAt == nil {
						t.Errorf("Project(%q) has no updated_at (nor last_activity_at)", ref)
					}
				}
			}
		})
	}
}

func TestClient_Errors(t *testing.T) {
	sim, c := setup(t, gitlabtest.Options{})
	if err := sim.LoadSamples(); err != nil {
		t.Fatal(err)
	}
	id := sim.ProjectIDs()[0]
	sim.SetProjectStatus(fmt.Sprint(id), 403)

	_, err := c.Project(context.Background(), fmt.Sprint(id))
	if got := gitlab.ClassifyError(err); got != gitlab.SkipProject {
		t.Errorf("403 project: %v, want SkipProject (%v)", got, err)
	}
	_, err = c.Project(context.Background(), "no/such/project")
	if got := gitlab.ClassifyError(err); got != gitlab.SkipProject || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown project: %v, want SkipProject with 404 (%v)", got, err)
	}

	bad, _ := gitlab.NewClient(gitlab.Options{BaseURL: sim.URL(), Token: "glpat-wrong"})
	_, err = bad.Project(context.Background(), sim.ProjectPath(sim.ProjectIDs()[1]))
	if !errors.Is(err, gitlab.ErrUnauthorized) || strings.Contains(err.Error(), "glpat-wrong") {
		t.Errorf("wrong token: %v; want ErrUnauthorized without the token", err)
	}

	// 5xx past the retries: Retry, after RetryMax+1 attempts.
	sim.ResetCounters()
	sim.InjectFault(gitlabtest.Fault{Path: "/projects/", Status: 503})
	_, err = c.Project(context.Background(), sim.ProjectPath(sim.ProjectIDs()[1]))
	if got := gitlab.ClassifyError(err); got != gitlab.Retry {
		t.Errorf("persistent 503: %v, want Retry (%v)", got, err)
	}
	if got := sim.Requests("total"); got != 4 {
		t.Errorf("persistent 503: %d attempts, want 4 (1 + RetryMax 3)", got)
	}
}

func TestClient_RetryAfterIsObeyed(t *testing.T) {
	sim, _ := setup(t, gitlabtest.Options{})
	if err := sim.LoadSamples(); err != nil {
		t.Fatal(err)
	}
	// A wait ceiling above the Retry-After, so the header decides.
	c, err := gitlab.NewClient(gitlab.Options{BaseURL: sim.URL(), Token: token, RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sim.InjectFault(gitlabtest.Fault{Path: "/projects/", Status: 429, RetryAfter: "1", Times: 1})
	start := time.Now()
	if _, err := c.Project(context.Background(), fmt.Sprint(sim.ProjectIDs()[0])); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < time.Second {
		t.Errorf("retried a 429 with Retry-After: 1 after %v, want at least 1s", waited)
	}
	if got := sim.Requests("status_429"); got != 1 {
		t.Errorf("429 answers = %d, want 1", got)
	}
}

func TestClient_UsersInBatches(t *testing.T) {
	sim, c := setup(t, gitlabtest.Options{})
	if err := sim.LoadSamples(); err != nil {
		t.Fatal(err)
	}
	known := sim.UserIDs()
	ids := append([]int64{999999991, 999999992}, known...) // two unknown ids
	users, err := c.Users(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != len(known) {
		t.Errorf("got %d users, want %d (unknown ids left out)", len(users), len(known))
	}
	if got, want := sim.Requests("graphql"), (len(ids)+99)/100; got != want {
		t.Errorf("%d GraphQL requests for %d ids, want %d", got, len(ids), want)
	}
	for _, u := range users {
		if u.Username == "" || u.State == "" {
			t.Errorf("user %d: username %q state %q, want both", u.UserID, u.Username, u.State)
		}
	}
}
