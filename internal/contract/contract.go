package contract

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/contract/fixture"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
)

// Run runs every case of the contract as a subtest of t, each on a fresh
// target from newTarget.
func Run(t *testing.T, newTarget func(t *testing.T) Target) {
	cases := []struct {
		name string
		run  func(t *testing.T, newTarget func(t *testing.T) Target)
	}{
		{"FirstSyncEqualsGitLab", testFirstSyncEqualsGitLab},
		{"SecondSyncMovesOnlyChanges", testSecondSyncMovesOnlyChanges},
		{"StartDateBoundsFirstSync", testStartDateBoundsFirstSync},
		{"TableFlags", testTableFlags},
		{"MaxRecordsStopsEarly", testMaxRecordsStopsEarly},
		{"MaxRecordsWithBulkUpdate", testMaxRecordsWithBulkUpdate},
		{"Errors", testErrors},
		{"Request", testRequest},
		{"IntervalGuard", testIntervalGuard},
		{"CrashBetweenLoadAndCheckpoint", testCrashBetweenLoadAndCheckpoint},
		{"DuplicateProjectRef", testDuplicateProjectRef},
		{"TimeBudget", testTimeBudget},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, newTarget) })
	}
}

// world is one case's target with the projects it was configured with.
type world struct {
	t       testing.TB
	target  Target
	sim     *gitlabtest.Server
	refs    []string
	projIDs []int64
}

func mustWorld(t *testing.T, newTarget func(t *testing.T) Target) *world {
	t.Helper()
	target := newTarget(t)
	w := &world{t: t, target: target, sim: target.Sim()}
	w.refs, w.projIDs = fixture.MustProjects(t, w.sim)
	return w
}

// sync runs one sync and returns its result.
func (w *world) sync(req gitlabsync.Request) Result {
	w.t.Helper()
	return w.target.Sync(w.t, req)
}

// MustSync runs one sync and fails unless it succeeded with a summary.
func (w *world) MustSync(req gitlabsync.Request) *gitlabsync.Summary {
	w.t.Helper()
	r := w.sync(req)
	if r.Outcome != Succeeded || r.Summary == nil {
		w.t.Fatalf("sync %v, want succeeded with a summary:\n%s", r.Outcome, r.Output)
	}
	return r.Summary
}

func (w *world) rows(table string, cols ...string) map[int64]string {
	w.t.Helper()
	return w.target.Rows(w.t, table, cols...)
}

func (w *world) simMergeRequests(since time.Time) map[int64]string {
	w.t.Helper()
	return fixture.MergeRequests(w.t, w.sim, w.projIDs, since)
}

func (w *world) simUsers() map[int64]bool { return fixture.Users(w.sim, w.projIDs) }

// MustEqualGitLab fails unless the destination holds exactly the
// simulator's projects, merge requests (field by field) and users.
func (w *world) MustEqualGitLab() {
	w.t.Helper()
	MustEqualGitLab(w.t, w.target, w.projIDs)
}

func tableNames(sum *gitlabsync.Summary) string {
	var names []string
	for _, ts := range sum.Tables {
		names = append(names, ts.Table)
	}
	return strings.Join(names, ",")
}

func testFirstSyncEqualsGitLab(t *testing.T, newTarget func(t *testing.T) Target) {
	w := mustWorld(t, newTarget)
	sum := w.MustSync(gitlabsync.Request{})
	if sum.Status != gitlabsync.StatusOK || sum.More {
		t.Fatalf("status %q, more %v; want ok, false", sum.Status, sum.More)
	}

	// Projects: every configured one, with its fields.
	projects := w.rows("projects", "path_with_namespace", "web_url")
	for _, id := range w.projIDs {
		if got, want := strings.Split(projects[id], "|")[0], w.sim.ProjectPath(id); got != want {
			t.Errorf("project %d path_with_namespace: got %q, want %q", id, got, want)
		}
	}
	// Projects, merge requests and users: exactly the simulator's.
	w.MustEqualGitLab()
	want := w.simMergeRequests(time.Time{})
	if n := MustTable(t, sum, "merge_requests").RowsWritten; n != int64(len(want)) {
		t.Errorf("summary merge_requests rows_written = %d, want %d", n, len(want))
	}
	// Users come in batches: one GraphQL request per 100 users, no REST per user.
	if got, want := w.sim.Requests("graphql"), (len(w.rows("users"))+99)/100; got != want {
		t.Errorf("graphql requests = %d, want %d", got, want)
	}
	if got := w.sim.Requests("users"); got != 0 {
		t.Errorf("REST /users requests = %d, want 0", got)
	}
}

func testSecondSyncMovesOnlyChanges(t *testing.T, newTarget func(t *testing.T) Target) {
	w := mustWorld(t, newTarget)
	w.MustSync(gitlabsync.Request{})
	before := w.rows("merge_requests", "title")

	// Change two merge requests of the first project and one of the second.
	p1, p2 := w.projIDs[0], w.projIDs[1]
	mr1, mr2 := w.sim.MergeRequests(p1), w.sim.MergeRequests(p2)
	iid := func(mr map[string]any) int64 { return int64(mr["iid"].(float64)) }
	id := func(mr map[string]any) int64 { return int64(mr["id"].(float64)) }
	w.sim.UpdateMergeRequest(p1, iid(mr1[0]), map[string]any{"title": "renamed one"})
	w.sim.UpdateMergeRequest(p1, iid(mr1[len(mr1)-1]), map[string]any{"state": "closed"})
	w.sim.UpdateMergeRequest(p2, iid(mr2[0]), map[string]any{"title": "renamed two"})
	w.sim.ResetCounters()

	sum := w.MustSync(gitlabsync.Request{})
	if got := MustTable(t, sum, "merge_requests").RowsWritten; got != 3 {
		t.Errorf("second sync wrote %d merge requests, want 3", got)
	}
	// One list request per project: the changes fit in one page.
	if got, want := w.sim.Requests("merge_requests"), len(w.refs); got != want {
		t.Errorf("merge request list requests = %d, want %d", got, want)
	}
	if got := MustTable(t, sum, "projects").RowsWritten; got != 0 {
		t.Errorf("projects rows written = %d, want 0 (none changed)", got)
	}
	after := w.rows("merge_requests", "title")
	if len(after) != len(before) {
		t.Errorf("merge_requests holds %d rows, want %d (no duplicates, nothing lost)", len(after), len(before))
	}
	if got := after[id(mr1[0])]; got != "renamed one" {
		t.Errorf("merge request %d title = %q, want %q", id(mr1[0]), got, "renamed one")
	}
	if got := after[id(mr2[0])]; got != "renamed two" {
		t.Errorf("merge request %d title = %q, want %q", id(mr2[0]), got, "renamed two")
	}
	if got := w.rows("merge_requests", "state")[id(mr1[len(mr1)-1])]; got != "closed" {
		t.Errorf("merge request state = %q, want closed", got)
	}

	// A third sync with no change writes nothing and asks only what it must.
	w.sim.ResetCounters()
	sum = w.MustSync(gitlabsync.Request{})
	if sum.RowsWritten != 0 {
		t.Errorf("third sync wrote %d rows, want 0", sum.RowsWritten)
	}
	if got, want := w.sim.Requests("total"), 2*len(w.refs); got != want {
		t.Errorf("third sync made %d requests, want %d (a project and a merge request page each)", got, want)
	}

	// The cursor walked: the later runs asked from their cursors.
	for _, u := range w.sim.RequestLog() {
		if strings.Contains(u, "/merge_requests") && !strings.Contains(u, "updated_after=") {
			t.Errorf("incremental request without updated_after: %s", u)
		}
	}
}

func testStartDateBoundsFirstSync(t *testing.T, newTarget func(t *testing.T) Target) {
	w := mustWorld(t, newTarget)
	all := w.simMergeRequests(time.Time{})
	// Pick a start date that splits the merge requests.
	var times []time.Time
	for _, pid := range w.projIDs {
		for _, mr := range w.sim.MergeRequests(pid) {
			times = append(times, fixture.MustTime(t, mr["updated_at"]))
		}
	}
	start := median(times)
	w.target.Configure("START_DATE", start.UTC().Format(time.RFC3339Nano))
	w.MustSync(gitlabsync.Request{})

	got := w.rows("merge_requests", "title", "state", "updated_at")
	want := w.simMergeRequests(start)
	if len(want) == 0 || len(want) == len(all) {
		t.Fatalf("start date %s does not split the data (%d of %d)", start, len(want), len(all))
	}
	if got, want := fixture.Keys(got), fixture.Keys(want); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got merge requests %v, want those updated since %s: %v", got, start, want)
	}
}

func median(ts []time.Time) time.Time {
	s := append([]time.Time(nil), ts...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j].Before(s[i]) {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func testTableFlags(t *testing.T, newTarget func(t *testing.T) Target) {
	cases := []struct {
		name       string
		env        map[string]string
		wantTables string
	}{
		{"NoUsers", map[string]string{"SYNC_USERS_TABLE": "false"}, "projects,merge_requests"},
		{"NoProjects", map[string]string{"SYNC_PROJECTS_TABLE": "false"}, "merge_requests,users"},
		{"OnlyProjects", map[string]string{"SYNC_MERGE_REQUESTS_TABLE": "false", "SYNC_USERS_TABLE": "false"}, "projects"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := mustWorld(t, newTarget)
			for k, v := range c.env {
				w.target.Configure(k, v)
			}
			sum := w.MustSync(gitlabsync.Request{})
			if got := tableNames(sum); got != c.wantTables {
				t.Errorf("tables synced: got %s, want %s", got, c.wantTables)
			}
			if !strings.Contains(c.wantTables, "users") && w.sim.Requests("graphql") != 0 {
				t.Errorf("users disabled, yet %d GraphQL requests", w.sim.Requests("graphql"))
			}
			if !strings.Contains(c.wantTables, "merge_requests") && w.sim.Requests("merge_requests") != 0 {
				t.Errorf("merge requests disabled, yet %d list requests", w.sim.Requests("merge_requests"))
			}
		})
	}
}

func testMaxRecordsStopsEarly(t *testing.T, newTarget func(t *testing.T) Target) {
	w := mustWorld(t, newTarget)
	w.target.Configure("MAX_RECORDS_PER_SYNC", "7")
	want := w.simMergeRequests(time.Time{})

	runs := 0
	for {
		runs++
		if runs > len(want) {
			t.Fatalf("still more to do after %d runs", runs)
		}
		sum := w.MustSync(gitlabsync.Request{})
		mrs := MustTable(t, sum, "merge_requests")
		if mrs.RowsWritten > 7 {
			t.Fatalf("run %d wrote %d merge requests, want at most 7", runs, mrs.RowsWritten)
		}
		if !sum.More {
			break
		}
		if mrs.StopReason != "max_records_per_sync" && MustTable(t, sum, "users").StopReason != "max_records_per_sync" {
			t.Errorf("run %d: more without max_records_per_sync as the reason", runs)
		}
	}
	if runs < 2 {
		t.Errorf("finished in %d run, want the cap to have split the sync", runs)
	}
	got := w.rows("merge_requests", "title", "state", "updated_at")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after %d capped runs: got %d merge requests, want %d", runs, len(got), len(want))
	}
	if got, want := len(w.rows("users")), len(w.simUsers()); got != want {
		t.Errorf("users: got %d, want %d", got, want)
	}
}

func testMaxRecordsWithBulkUpdate(t *testing.T, newTarget func(t *testing.T) Target) {
	// 30 merge requests updated at the same instant (a bulk edit), with a
	// cap of 7 a run: the runs must still get through them all.
	w := mustWorld(t, newTarget)
	const pid = 5151
	w.sim.GenerateMergeRequests(pid, 30, time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), 0)
	w.projIDs = []int64{pid}
	w.target.Configure("GITLAB_PROJECT_IDS", fmt.Sprint(pid))
	w.target.Configure("MAX_RECORDS_PER_SYNC", "7")
	for run := 1; ; run++ {
		if run > 5 {
			t.Fatalf("still more to do after %d runs", run-1)
		}
		if sum := w.MustSync(gitlabsync.Request{}); !sum.More {
			break
		}
	}
	if got := len(w.rows("merge_requests")); got != 30 {
		t.Errorf("merge requests = %d, want 30", got)
	}
}

func testErrors(t *testing.T, newTarget func(t *testing.T) Target) {
	t.Run("Unauthorized", func(t *testing.T) {
		w := mustWorld(t, newTarget)
		w.target.Configure("GITLAB_TOKEN_SECRET", "")
		w.target.Configure("GITLAB_TOKEN", "glpat-wrong-token")
		r := w.sync(gitlabsync.Request{})
		if r.Outcome != Failed {
			t.Errorf("sync %v, want failed", r.Outcome)
		}
		if r.Summary == nil || !strings.Contains(r.Summary.Error, "rejected the token") {
			t.Errorf("summary does not say the token was rejected:\n%s", r.Output)
		}
		if strings.Contains(r.Output, "glpat-wrong-token") {
			t.Errorf("the wrong token appears in the output")
		}
		if got := w.sim.Requests("total"); got != 1 {
			t.Errorf("made %d requests after a 401, want 1 (fail at once)", got)
		}
	})

	for _, status := range []int{http.StatusForbidden, http.StatusNotFound} {
		t.Run(fmt.Sprint("Project", status), func(t *testing.T) {
			w := mustWorld(t, newTarget)
			w.sim.SetProjectStatus(w.refs[1], status)
			r := w.sync(gitlabsync.Request{})
			if r.Outcome != Succeeded || r.Summary == nil {
				t.Fatalf("sync %v, want succeeded (the other projects go on):\n%s", r.Outcome, r.Output)
			}
			for _, tbl := range []string{"projects", "merge_requests"} {
				ps := MustTable(t, r.Summary, tbl).Projects[1]
				if ps.Status != gitlabsync.StatusSkipped || !strings.Contains(ps.Reason, fmt.Sprint(status)) {
					t.Errorf("%s project %s: status %q reason %q, want skipped with %d",
						tbl, ps.Project, ps.Status, ps.Reason, status)
				}
			}
			mrs := w.rows("merge_requests", "project_id")
			n := len(w.sim.MergeRequests(w.projIDs[0]))
			if got := fixture.CountValue(mrs, fmt.Sprint(w.projIDs[0])); got != n {
				t.Errorf("project %d: %d merge requests written, want %d", w.projIDs[0], got, n)
			}
			if got := fixture.CountValue(mrs, fmt.Sprint(w.projIDs[1])); got != 0 {
				t.Errorf("skipped project: %d merge requests written, want 0", got)
			}
		})
	}

	t.Run("EveryProjectUnreadable", func(t *testing.T) {
		// A wrong subpath or a token without access: every project 404s.
		w := mustWorld(t, newTarget)
		for _, ref := range w.refs {
			w.sim.SetProjectStatus(ref, http.StatusNotFound)
		}
		r := w.sync(gitlabsync.Request{})
		if r.Outcome != Failed {
			t.Errorf("sync %v, want failed", r.Outcome)
		}
		if r.Summary == nil || !strings.Contains(r.Summary.Error, "none of the") || !strings.Contains(r.Summary.Error, "gitlab_base_url") {
			t.Errorf("summary does not point at gitlab_base_url and access:\n%s", r.Output)
		}
		if got := w.sim.Requests("merge_requests"); got != 0 {
			t.Errorf("%d merge request requests, want 0", got)
		}
	})

	t.Run("RateLimited", func(t *testing.T) {
		w := mustWorld(t, newTarget)
		w.sim.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Status: 429, RetryAfter: "0", Times: 2})
		w.sim.InjectFault(gitlabtest.Fault{Path: "/graphql", Status: 429, Times: 1})
		w.MustSync(gitlabsync.Request{})
		if got := w.sim.Requests("status_429"); got != 3 {
			t.Errorf("429 answers = %d, want 3", got)
		}
		w.MustEqualGitLab()
	})

	t.Run("ServerErrorsRetried", func(t *testing.T) {
		w := mustWorld(t, newTarget)
		w.sim.InjectFault(gitlabtest.Fault{Path: "/projects/", Status: 502, Times: 2})
		w.sim.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Status: 500, Times: 1})
		w.MustSync(gitlabsync.Request{})
		w.MustEqualGitLab()
	})

	t.Run("ServerDownFailsTableKeepsCheckpoints", func(t *testing.T) {
		w := mustWorld(t, newTarget)
		w.sim.InjectFault(gitlabtest.Fault{
			Path: fmt.Sprintf("/projects/%d/merge_requests", w.projIDs[1]), Status: 503, Times: 1000,
		})
		r := w.sync(gitlabsync.Request{})
		if r.Outcome != Failed {
			t.Errorf("sync %v, want failed", r.Outcome)
		}
		if r.Summary == nil {
			t.Fatalf("no summary:\n%s", r.Output)
		}
		if got := MustTable(t, r.Summary, "merge_requests").Status; got != gitlabsync.StatusFailed {
			t.Errorf("merge_requests status = %q, want failed", got)
		}
		if got := MustTable(t, r.Summary, "projects").Status; got != gitlabsync.StatusOK {
			t.Errorf("projects status = %q, want ok", got)
		}
		// What was read before the failure is written and checkpointed.
		first := fixture.CountValue(w.rows("merge_requests", "project_id"), fmt.Sprint(w.projIDs[0]))
		if want := len(w.sim.MergeRequests(w.projIDs[0])); first != want {
			t.Errorf("project %d: %d merge requests written, want %d", w.projIDs[0], first, want)
		}
		// The next run resumes.
		w.sim.ClearFaults()
		w.sim.ResetCounters()
		w.MustSync(gitlabsync.Request{})
		w.MustEqualGitLab()
	})
}

func testRequest(t *testing.T, newTarget func(t *testing.T) Target) {
	w := mustWorld(t, newTarget)
	cases := []struct {
		name   string
		req    gitlabsync.Request
		tables string
	}{
		{"OnlyProjects", gitlabsync.Request{Tables: []string{"projects"}}, "projects"},
		{
			"FullRefresh",
			gitlabsync.Request{Tables: []string{"merge_requests"}, FullRefresh: []string{"merge_requests"}},
			"merge_requests",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sum := w.MustSync(c.req)
			if got := tableNames(sum); got != c.tables {
				t.Errorf("tables = %s, want %s", got, c.tables)
			}
		})
	}
	// A full refresh re-reads every merge request and duplicates none.
	refresh := gitlabsync.Request{Tables: []string{"merge_requests"}, FullRefresh: []string{"merge_requests"}}
	sum := w.MustSync(refresh)
	want := len(w.simMergeRequests(time.Time{}))
	if got := MustTable(t, sum, "merge_requests").RowsWritten; got != int64(want) {
		t.Errorf("full refresh wrote %d, want %d", got, want)
	}
	if got := len(w.rows("merge_requests")); got != want {
		t.Errorf("after full refresh: %d rows, want %d", got, want)
	}
}

func testIntervalGuard(t *testing.T, newTarget func(t *testing.T) Target) {
	w := mustWorld(t, newTarget)
	w.target.Configure("SYNC_INTERVAL_HOURS", "1")
	w.MustSync(gitlabsync.Request{})
	sum := w.MustSync(gitlabsync.Request{})
	if sum.Status != gitlabsync.StatusSkipped || sum.SkipReason == "" {
		t.Errorf("second run within the hour: status %q reason %q, want skipped with a reason",
			sum.Status, sum.SkipReason)
	}
	if sum := w.MustSync(gitlabsync.Request{Force: true}); sum.Status != gitlabsync.StatusOK {
		t.Errorf("forced run: status %q, want ok", sum.Status)
	}
}

// crashingStore fails the first Save of merge_requests cursors, as a run
// killed after its rows were written but before its checkpoint would.
type crashingStore struct {
	gitlabsync.Store
	crashed bool
}

func (s *crashingStore) Save(ctx context.Context, runID string, cp state.Checkpoint) error {
	for k := range cp.Cursors {
		if k.Table == "merge_requests" && !s.crashed {
			s.crashed = true
			return errors.New("killed between load and checkpoint")
		}
	}
	return s.Store.Save(ctx, runID, cp)
}

func testCrashBetweenLoadAndCheckpoint(t *testing.T, newTarget func(t *testing.T) Target) {
	w := mustWorld(t, newTarget)
	engine, closeEngine := w.target.Engine(t, EngineOptions{})
	engine.BatchSize = 5 // several batches, so the crash falls inside the table
	engine.Store = &crashingStore{Store: engine.Store}
	sum, err := engine.Run(context.Background(), gitlabsync.Request{})
	closeEngine()
	if err != nil {
		t.Fatal(err)
	}
	if got := MustTable(t, sum, "merge_requests").Status; got != gitlabsync.StatusFailed {
		t.Fatalf("the crashed run's merge_requests status = %q, want failed", got)
	}

	// Rerun: no duplicates, no gaps.
	w.MustSync(gitlabsync.Request{})
	w.MustEqualGitLab()
}

func testDuplicateProjectRef(t *testing.T, newTarget func(t *testing.T) Target) {
	w := mustWorld(t, newTarget)
	id := w.projIDs[0]
	w.target.Configure("GITLAB_PROJECT_IDS", fmt.Sprintf("%d,%s", id, w.sim.ProjectPath(id)))
	w.projIDs = []int64{id}
	sum := w.MustSync(gitlabsync.Request{})
	ps := MustTable(t, sum, "merge_requests").Projects[1]
	if ps.Status != gitlabsync.StatusSkipped || !strings.Contains(ps.Reason, "listed twice") {
		t.Errorf("second reference: status %q reason %q, want skipped as listed twice", ps.Status, ps.Reason)
	}
	want := int64(len(w.simMergeRequests(time.Time{})))
	if got := MustTable(t, sum, "merge_requests").RowsWritten; got != want {
		t.Errorf("rows written = %d, want %d (once)", got, want)
	}
}

func testTimeBudget(t *testing.T, newTarget func(t *testing.T) Target) {
	w := mustWorld(t, newTarget)
	// A clock that moves a minute with every GitLab request, against a
	// budget of 20 minutes, and pages of 5: the first run cannot read all.
	base := time.Now()
	clock := func() time.Time { return base.Add(time.Minute * time.Duration(w.sim.Requests("total"))) }
	for run := 1; ; run++ {
		if run > 10 {
			t.Fatalf("still more to do after %d runs", run-1)
		}
		engine, closeEngine := w.target.Engine(t, EngineOptions{PerPage: 5, MaxRunTime: 20 * time.Minute})
		engine.Now, engine.BatchSize = clock, 3
		sum, err := engine.Run(context.Background(), gitlabsync.Request{})
		closeEngine()
		if err != nil {
			t.Fatal(err)
		}
		if sum.Status == gitlabsync.StatusFailed {
			t.Fatalf("run %d failed: %+v", run, sum)
		}
		if !sum.More {
			if run == 1 {
				t.Errorf("the first run finished within its budget; want it stopped early")
			}
			break
		}
		reasons := ""
		for _, ts := range sum.Tables {
			reasons += ts.StopReason
		}
		if !strings.Contains(reasons, "max_run_minutes") {
			t.Errorf("run %d: more without max_run_minutes as the reason (%q)", run, reasons)
		}
	}
	got := w.rows("merge_requests", "title", "state", "updated_at")
	if want := w.simMergeRequests(time.Time{}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the budgeted runs: %d merge requests, want %d", len(got), len(want))
	}
}
