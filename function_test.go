package gitlabsync

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
)

func TestSyncGitLab_FirstSyncEqualsGitLab(t *testing.T) {
	h := MustHarness(t)
	sum := h.MustSync("")

	if sum.Status != StatusOK || sum.More {
		t.Fatalf("status %q, more %v; want ok, false", sum.Status, sum.More)
	}
	// Projects: every configured one, with its fields.
	projects := h.rows("projects", "path_with_namespace", "web_url")
	if got, want := fmt.Sprint(keys(projects)), fmt.Sprint(sortedIDs(h.projIDs)); got != want {
		t.Errorf("projects: got ids %s, want %s", got, want)
	}
	for _, id := range h.projIDs {
		if got, want := strings.Split(projects[id], "|")[0], h.sim.ProjectPath(id); got != want {
			t.Errorf("project %d path_with_namespace: got %q, want %q", id, got, want)
		}
	}
	// Merge requests: exactly the simulator's, field by field.
	got := h.rows("merge_requests", "title", "state", "updated_at")
	want := h.simMergeRequests(time.Time{})
	if len(got) != len(want) {
		t.Errorf("merge_requests: got %d rows, want %d", len(got), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("merge request %d: got %q, want %q", id, got[id], w)
		}
	}
	if n := sum.table(t, "merge_requests").RowsWritten; n != int64(len(want)) {
		t.Errorf("summary merge_requests rows_written = %d, want %d", n, len(want))
	}
	// Users: everyone the merge requests refer to.
	users := h.rows("users", "username")
	if got, want := fmt.Sprint(keys(users)), fmt.Sprint(keys(h.simUsers())); got != want {
		t.Errorf("users: got ids %s, want %s", got, want)
	}
	// Users come in batches: one GraphQL request per 100 users, no REST per user.
	if got, want := h.sim.Requests("graphql"), (len(users)+99)/100; got != want {
		t.Errorf("graphql requests = %d, want %d", got, want)
	}
	if got := h.sim.Requests("users"); got != 0 {
		t.Errorf("REST /users requests = %d, want 0", got)
	}
	// Log lines are Cloud Logging JSON, one per table and project.
	for _, line := range strings.Split(strings.TrimSpace(h.logs.String()), "\n") {
		if !strings.Contains(line, `"severity":`) || !strings.Contains(line, `"message":`) {
			t.Errorf("log line without severity and message: %s", line)
		}
	}
	if n := strings.Count(h.logs.String(), "\n"); n > 3*len(h.refs)+10 {
		t.Errorf("%d log lines for %d projects; want about one per table and project", n, len(h.refs))
	}
}

func sortedIDs(ids []int64) []int64 {
	m := map[int64]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return keys(m)
}

func TestSyncGitLab_SecondSyncMovesOnlyChanges(t *testing.T) {
	h := MustHarness(t)
	h.MustSync("")
	before := h.rows("merge_requests", "title")

	// Change two merge requests of the first project and one of the second.
	p1, p2 := h.projIDs[0], h.projIDs[1]
	mr1 := h.sim.MergeRequests(p1)
	mr2 := h.sim.MergeRequests(p2)
	iid := func(mr map[string]any) int64 { return int64(mr["iid"].(float64)) }
	id := func(mr map[string]any) int64 { return int64(mr["id"].(float64)) }
	h.sim.UpdateMergeRequest(p1, iid(mr1[0]), map[string]any{"title": "renamed one"})
	h.sim.UpdateMergeRequest(p1, iid(mr1[len(mr1)-1]), map[string]any{"state": "closed"})
	h.sim.UpdateMergeRequest(p2, iid(mr2[0]), map[string]any{"title": "renamed two"})
	h.sim.ResetCounters()

	sum := h.MustSync("")
	mrs := sum.table(t, "merge_requests")
	if mrs.RowsWritten != 3 {
		t.Errorf("second sync wrote %d merge requests, want 3", mrs.RowsWritten)
	}
	// One list request per project: the changes fit in one page.
	if got, want := h.sim.Requests("merge_requests"), len(h.refs); got != want {
		t.Errorf("merge request list requests = %d, want %d", got, want)
	}
	if got := sum.table(t, "projects").RowsWritten; got != 0 {
		t.Errorf("projects rows written = %d, want 0 (none changed)", got)
	}
	after := h.rows("merge_requests", "title")
	if len(after) != len(before) {
		t.Errorf("merge_requests holds %d rows, want %d (no duplicates, nothing lost)", len(after), len(before))
	}
	if got := after[id(mr1[0])]; got != "renamed one" {
		t.Errorf("merge request %d title = %q, want %q", id(mr1[0]), got, "renamed one")
	}
	if got := after[id(mr2[0])]; got != "renamed two" {
		t.Errorf("merge request %d title = %q, want %q", id(mr2[0]), got, "renamed two")
	}
	if got := h.rows("merge_requests", "state")[id(mr1[len(mr1)-1])]; got != "closed" {
		t.Errorf("merge request state = %q, want closed", got)
	}

	// A third sync with no change writes nothing and asks only what it must.
	h.sim.ResetCounters()
	sum = h.MustSync("")
	if sum.RowsWritten != 0 {
		t.Errorf("third sync wrote %d rows, want 0", sum.RowsWritten)
	}
	if got, want := h.sim.Requests("total"), 2*len(h.refs); got != want {
		t.Errorf("third sync made %d requests, want %d (a project and a merge request page each)", got, want)
	}

	// The cursor walked: the second run asked from a little before the first's cursor, in milliseconds.
	for _, u := range h.sim.RequestLog() {
		if strings.Contains(u, "/merge_requests") && !strings.Contains(u, "updated_after=") {
			t.Errorf("incremental request without updated_after: %s", u)
		}
	}
}

func TestSyncGitLab_StartDateBoundsFirstSync(t *testing.T) {
	h := MustHarness(t)
	all := h.simMergeRequests(time.Time{})
	// Pick a start date that splits the merge requests.
	var times []time.Time
	for _, pid := range h.projIDs {
		for _, mr := range h.sim.MergeRequests(pid) {
			times = append(times, mustTime(t, mr["updated_at"]))
		}
	}
	start := median(times)
	h.set("START_DATE", start.UTC().Format(time.RFC3339Nano))
	h.MustSync("")

	got := h.rows("merge_requests", "title", "state", "updated_at")
	want := h.simMergeRequests(start)
	if len(want) == 0 || len(want) == len(all) {
		t.Fatalf("start date %s does not split the data (%d of %d)", start, len(want), len(all))
	}
	if fmt.Sprint(keys(got)) != fmt.Sprint(keys(want)) {
		t.Errorf("got merge requests %v, want those updated since %s: %v", keys(got), start, keys(want))
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

func TestSyncGitLab_TableFlags(t *testing.T) {
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
			h := MustHarness(t)
			for k, v := range c.env {
				h.set(k, v)
			}
			sum := h.MustSync("")
			var got []string
			for _, ts := range sum.Tables {
				got = append(got, ts.Table)
			}
			if strings.Join(got, ",") != c.wantTables {
				t.Errorf("tables synced: got %v, want %s", got, c.wantTables)
			}
			if !strings.Contains(c.wantTables, "users") && h.sim.Requests("graphql") != 0 {
				t.Errorf("users disabled, yet %d GraphQL requests", h.sim.Requests("graphql"))
			}
			if !strings.Contains(c.wantTables, "merge_requests") && h.sim.Requests("merge_requests") != 0 {
				t.Errorf("merge requests disabled, yet %d list requests", h.sim.Requests("merge_requests"))
			}
		})
	}
}

func TestSyncGitLab_MaxRecordsStopsEarly(t *testing.T) {
	h := MustHarness(t)
	h.set("MAX_RECORDS_PER_SYNC", "7")
	want := h.simMergeRequests(time.Time{})

	runs := 0
	for {
		runs++
		if runs > len(want) {
			t.Fatalf("still more to do after %d runs", runs)
		}
		sum := h.MustSync("")
		mrs := sum.table(t, "merge_requests")
		if mrs.RowsWritten > 7 {
			t.Fatalf("run %d wrote %d merge requests, want at most 7", runs, mrs.RowsWritten)
		}
		if !sum.More {
			break
		}
		if mrs.StopReason != "max_records_per_sync" && sum.table(t, "users").StopReason != "max_records_per_sync" {
			t.Errorf("run %d: more without max_records_per_sync as the reason", runs)
		}
	}
	if runs < 2 {
		t.Errorf("finished in %d run, want the cap to have split the sync", runs)
	}
	got := h.rows("merge_requests", "title", "state", "updated_at")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after %d capped runs: got %d merge requests, want %d", runs, len(got), len(want))
	}
	if got, want := len(h.rows("users")), len(h.simUsers()); got != want {
		t.Errorf("users: got %d, want %d", got, want)
	}
}

func TestSyncGitLab_Errors(t *testing.T) {
	t.Run("Unauthorized", func(t *testing.T) {
		h := MustHarness(t)
		h.set("GITLAB_TOKEN_SECRET", "")
		h.set("GITLAB_TOKEN", "glpat-wrong-token")
		code, sum, raw := h.call("")
		if code != http.StatusInternalServerError {
			t.Errorf("status = %d, want 500", code)
		}
		if !strings.Contains(sum.Error, "rejected the token") {
			t.Errorf("error = %q, want it to say the token was rejected", sum.Error)
		}
		if strings.Contains(raw, "glpat-wrong-token") || strings.Contains(h.logs.String(), "glpat-wrong-token") {
			t.Errorf("the wrong token appears in the response or logs")
		}
		if got := h.sim.Requests("total"); got != 1 {
			t.Errorf("made %d requests after a 401, want 1 (fail at once)", got)
		}
	})

	for _, status := range []int{http.StatusForbidden, http.StatusNotFound} {
		t.Run(fmt.Sprint("Project", status), func(t *testing.T) {
			h := MustHarness(t)
			h.sim.SetProjectStatus(h.refs[1], status)
			code, sum, raw := h.call("")
			if code != http.StatusOK {
				t.Fatalf("status = %d, want 200 (the other projects go on):\n%s", code, raw)
			}
			for _, tbl := range []string{"projects", "merge_requests"} {
				ps := sum.table(t, tbl).Projects[1]
				if ps.Status != StatusSkipped || !strings.Contains(ps.Reason, fmt.Sprint(status)) {
					t.Errorf("%s project %s: status %q reason %q, want skipped with %d", tbl, ps.Project, ps.Status, ps.Reason, status)
				}
			}
			mrs := h.rows("merge_requests", "project_id")
			n := len(h.sim.MergeRequests(h.projIDs[0]))
			if got := countValue(mrs, fmt.Sprint(h.projIDs[0])); got != n {
				t.Errorf("project %d: %d merge requests written, want %d", h.projIDs[0], got, n)
			}
			if got := countValue(mrs, fmt.Sprint(h.projIDs[1])); got != 0 {
				t.Errorf("skipped project: %d merge requests written, want 0", got)
			}
		})
	}

	t.Run("RateLimited", func(t *testing.T) {
		h := MustHarness(t)
		h.sim.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Status: 429, RetryAfter: "0", Times: 2})
		h.sim.InjectFault(gitlabtest.Fault{Path: "/graphql", Status: 429, Times: 1})
		h.MustSync("")
		if got := h.sim.Requests("status_429"); got != 3 {
			t.Errorf("429 answers = %d, want 3", got)
		}
		if got, want := len(h.rows("merge_requests")), len(h.simMergeRequests(time.Time{})); got != want {
			t.Errorf("merge requests = %d, want %d", got, want)
		}
	})

	t.Run("ServerErrorsRetried", func(t *testing.T) {
		h := MustHarness(t)
		h.sim.InjectFault(gitlabtest.Fault{Path: "/projects/", Status: 502, Times: 2})
		h.sim.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Status: 500, Times: 1})
		h.MustSync("")
		if got, want := len(h.rows("merge_requests")), len(h.simMergeRequests(time.Time{})); got != want {
			t.Errorf("merge requests = %d, want %d", got, want)
		}
	})

	t.Run("ServerDownFailsTableKeepsCheckpoints", func(t *testing.T) {
		h := MustHarness(t)
		h.sim.InjectFault(gitlabtest.Fault{Path: fmt.Sprintf("/projects/%d/merge_requests", h.projIDs[1]), Status: 503, Times: 1000})
		code, sum, _ := h.call("")
		if code != http.StatusInternalServerError {
			t.Errorf("status = %d, want 500", code)
		}
		if got := sum.table(t, "merge_requests").Status; got != StatusFailed {
			t.Errorf("merge_requests status = %q, want failed", got)
		}
		if got := sum.table(t, "projects").Status; got != StatusOK {
			t.Errorf("projects status = %q, want ok", got)
		}
		// What was read before the failure is written and checkpointed.
		first := countValue(h.rows("merge_requests", "project_id"), fmt.Sprint(h.projIDs[0]))
		if want := len(h.sim.MergeRequests(h.projIDs[0])); first != want {
			t.Errorf("project %d: %d merge requests written, want %d", h.projIDs[0], first, want)
		}
		// The next run resumes: the first project costs one request.
		h.sim.ClearFaults()
		h.sim.ResetCounters()
		h.MustSync("")
		if got, want := len(h.rows("merge_requests")), len(h.simMergeRequests(time.Time{})); got != want {
			t.Errorf("after recovery: %d merge requests, want %d", got, want)
		}
	})
}

func countValue(m map[int64]string, v string) int {
	n := 0
	for _, x := range m {
		if x == v {
			n++
		}
	}
	return n
}

func TestSyncGitLab_ConcurrentCallsOneConflict(t *testing.T) {
	h := MustHarness(t)
	h.sim.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Delay: 700 * time.Millisecond, Times: 100})

	codes := make([]int, 2)
	bodies := make([]string, 2)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 300 * time.Millisecond)
			codes[i], _, bodies[i] = h.call("")
		}()
	}
	wg.Wait()
	if !(codes[0] == 200 && codes[1] == 409) {
		t.Fatalf("statuses = %v, want [200 409]", codes)
	}
	if !strings.Contains(bodies[1], `"held_since"`) {
		t.Errorf("409 body does not say since when the lease is held:\n%s", bodies[1])
	}
	// Once the first run ends, the lease is free again.
	h.sim.ClearFaults()
	h.MustSync("")
}

func TestSyncGitLab_BadConfiguration(t *testing.T) {
	h := MustHarness(t)
	h.set("GITLAB_BASE_URL", "ftp://gitlab.example")
	h.set("GITLAB_PROJECT_IDS", "12,not a project")
	h.set("START_DATE", "yesterday")
	h.set("SYNC_USERS_TABLE", "maybe")
	h.set("MAX_RECORDS_PER_SYNC", "-5")
	h.set("GITLAB_TOKEN_SECRET", "my-secret")
	code, _, raw := h.call("")
	if code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", code)
	}
	for _, key := range []string{"gitlab_base_url", "gitlab_project_ids", "start_date", "sync_users_table", "max_records_per_sync", "gitlab_token_secret"} {
		if !strings.Contains(raw, key) {
			t.Errorf("response does not name %s:\n%s", key, raw)
		}
	}
	if got := h.sim.Requests("total"); got != 0 {
		t.Errorf("bad configuration made %d GitLab requests, want 0", got)
	}
}

func TestSyncGitLab_Request(t *testing.T) {
	h := MustHarness(t)
	cases := []struct {
		name, body string
		code       int
		tables     string
	}{
		{"OnlyProjects", `{"tables":["projects"]}`, 200, "projects"},
		{"CannotChangeSource", `{"gitlab_base_url":"https://evil.example"}`, 400, ""},
		{"CannotChangeDataset", `{"bigquery_dataset":"other"}`, 400, ""},
		{"UnknownTable", `{"tables":["issues"]}`, 400, ""},
		{"FullRefresh", `{"tables":["merge_requests"],"full_refresh":["merge_requests"]}`, 200, "merge_requests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, sum, raw := h.call(c.body)
			if code != c.code {
				t.Fatalf("status = %d, want %d:\n%s", code, c.code, raw)
			}
			if c.code != 200 {
				return
			}
			var got []string
			for _, ts := range sum.Tables {
				got = append(got, ts.Table)
			}
			if strings.Join(got, ",") != c.tables {
				t.Errorf("tables = %v, want %s", got, c.tables)
			}
		})
	}
	// A full refresh re-reads every merge request and duplicates none.
	_, sum, _ := h.call(`{"tables":["merge_requests"],"full_refresh":["merge_requests"]}`)
	want := len(h.simMergeRequests(time.Time{}))
	if got := sum.table(t, "merge_requests").RowsWritten; got != int64(want) {
		t.Errorf("full refresh wrote %d, want %d", got, want)
	}
	if got := len(h.rows("merge_requests")); got != want {
		t.Errorf("after full refresh: %d rows, want %d", got, want)
	}
}

func TestSyncGitLab_IntervalGuard(t *testing.T) {
	h := MustHarness(t)
	h.set("SYNC_INTERVAL_HOURS", "1")
	h.MustSync("")
	sum := h.MustSync("")
	if sum.Status != StatusSkipped || sum.SkipReason == "" {
		t.Errorf("second run within the hour: status %q reason %q, want skipped with a reason", sum.Status, sum.SkipReason)
	}
	sum = h.MustSync(`{"force":true}`)
	if sum.Status != StatusOK {
		t.Errorf("forced run: status %q, want ok", sum.Status)
	}
}

// crashingStore fails the first Save of merge_requests cursors, as a run
// killed after its rows were loaded but before its checkpoint would.
type crashingStore struct {
	Store
	crashed bool
}

func (s *crashingStore) Save(ctx context.Context, runID string, cp state.Checkpoint) error {
	for k := range cp.Cursors {
		if k.Table == "merge_requests" && !s.crashed {
			s.crashed = true
			return fmt.Errorf("killed between load and checkpoint")
		}
	}
	return s.Store.Save(ctx, runID, cp)
}

func TestSyncGitLab_CrashBetweenLoadAndCheckpoint(t *testing.T) {
	h := MustHarness(t)
	engine := h.MustEngine(h.svc.GitLab, nil)
	engine.BatchSize = 5 // several batches, so the crash falls inside the table
	engine.Store = &crashingStore{Store: engine.Store}
	sum, err := engine.Run(context.Background(), Request{})
	if err != nil {
		t.Fatal(err)
	}
	if sum.table(t, "merge_requests").Status != StatusFailed {
		t.Fatalf("the crashed run's merge_requests status = %q, want failed", sum.table(t, "merge_requests").Status)
	}

	// Rerun: no duplicates, no gaps.
	h.MustSync("")
	got := h.rows("merge_requests", "title", "state", "updated_at")
	want := h.simMergeRequests(time.Time{})
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after crash and rerun: got %d rows, want %d", len(got), len(want))
	}
	if got, want := len(h.rows("users")), len(h.simUsers()); got != want {
		t.Errorf("users after crash and rerun: got %d, want %d", got, want)
	}
}

func TestSyncGitLab_MaxRecordsWithBulkUpdate(t *testing.T) {
	// 30 merge requests updated at the same instant (a bulk edit), with a
	// cap of 7 a run: the runs must still get through them all.
	h := MustHarness(t)
	const pid = 5151
	h.sim.GenerateMergeRequests(pid, 30, time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), 0)
	h.projIDs = []int64{pid}
	h.set("GITLAB_PROJECT_IDS", fmt.Sprint(pid))
	h.set("MAX_RECORDS_PER_SYNC", "7")
	for run := 1; ; run++ {
		if run > 5 {
			t.Fatalf("still more to do after %d runs", run-1)
		}
		if sum := h.MustSync(""); !sum.More {
			break
		}
	}
	if got := len(h.rows("merge_requests")); got != 30 {
		t.Errorf("merge requests = %d, want 30", got)
	}
}

func TestSyncGitLab_DuplicateProjectRef(t *testing.T) {
	h := MustHarness(t)
	id := h.projIDs[0]
	h.set("GITLAB_PROJECT_IDS", fmt.Sprintf("%d,%s", id, h.sim.ProjectPath(id)))
	h.projIDs = []int64{id}
	sum := h.MustSync("")
	ps := sum.table(t, "merge_requests").Projects[1]
	if ps.Status != StatusSkipped || !strings.Contains(ps.Reason, "listed twice") {
		t.Errorf("second reference: status %q reason %q, want skipped as listed twice", ps.Status, ps.Reason)
	}
	if got, want := sum.table(t, "merge_requests").RowsWritten, int64(len(h.simMergeRequests(time.Time{}))); got != want {
		t.Errorf("rows written = %d, want %d (once)", got, want)
	}
}

func TestSyncGitLab_TimeBudget(t *testing.T) {
	h := MustHarness(t)
	// A clock that moves a minute with every GitLab request, against a
	// budget of 20 minutes, and pages of 5: the first run cannot read all.
	base := time.Now()
	clock := func() time.Time { return base.Add(time.Minute * time.Duration(h.sim.Requests("total"))) }
	opts := h.svc.GitLab
	opts.PerPage = 5
	for run := 1; ; run++ {
		if run > 10 {
			t.Fatalf("still more to do after %d runs", run-1)
		}
		engine := h.MustEngine(opts, func(c *Config) { c.MaxRunTime = 20 * time.Minute })
		engine.Now, engine.BatchSize = clock, 3
		sum, err := engine.Run(context.Background(), Request{})
		if err != nil {
			t.Fatal(err)
		}
		if sum.Status == StatusFailed {
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
	got := h.rows("merge_requests", "title", "state", "updated_at")
	if want := h.simMergeRequests(time.Time{}); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the budgeted runs: %d merge requests, want %d", len(got), len(want))
	}
}
