package main

// The cases of the function's end-to-end tests (function_test.go at the
// root), run in process against the local destination: a DuckDB file and a
// JSON state file. Both destinations are held to one contract.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
)

func TestLocalSync_FirstSyncEqualsGitLab(t *testing.T) {
	h := MustHarness(t)
	r := h.run()
	if r.code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", r.code, r.stderr)
	}
	sum := r.sum
	if sum.Status != gitlabsync.StatusOK || sum.More {
		t.Fatalf("status %q, more %v; want ok, false", sum.Status, sum.More)
	}

	// Projects: every configured one, with its fields.
	projects := h.rows("projects", "path_with_namespace", "web_url")
	for _, id := range h.projIDs {
		if got, want := strings.Split(projects[id], "|")[0], h.sim.ProjectPath(id); got != want {
			t.Errorf("project %d path_with_namespace: got %q, want %q", id, got, want)
		}
	}
	// Merge requests and users: exactly the simulator's.
	h.MustEqualGitLab()
	want := h.simMergeRequests(time.Time{})
	if n := tableSummary(t, sum, "merge_requests").RowsWritten; n != int64(len(want)) {
		t.Errorf("summary merge_requests rows_written = %d, want %d", n, len(want))
	}
	// Users come in batches: one GraphQL request per 100 users, no REST per user.
	if got, want := h.sim.Requests("graphql"), (len(h.simUsers())+99)/100; got != want {
		t.Errorf("graphql requests = %d, want %d", got, want)
	}
	if got := h.sim.Requests("users"); got != 0 {
		t.Errorf("REST /users requests = %d, want 0", got)
	}

	// Progress lines are for people: time, level, message; one per table
	// and project.
	line := regexp.MustCompile(`^\d\d:\d\d:\d\d (INFO |WARN |ERROR) \S`)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	for _, l := range lines {
		if !line.MatchString(l) {
			t.Errorf("progress line not like %q: %s", line, l)
		}
	}
	if n := len(lines); n > 3*len(h.refs)+10 {
		t.Errorf("%d progress lines for %d projects; want about one per table and project", n, len(h.refs))
	}
}

func TestLocalSync_SecondSyncMovesOnlyChanges(t *testing.T) {
	h := MustHarness(t)
	h.MustSync()
	before := h.rows("merge_requests", "title")

	// Change two merge requests of the first project and one of the second.
	p1, p2 := h.projIDs[0], h.projIDs[1]
	mr1, mr2 := h.sim.MergeRequests(p1), h.sim.MergeRequests(p2)
	iid := func(mr map[string]any) int64 { return int64(mr["iid"].(float64)) }
	id := func(mr map[string]any) int64 { return int64(mr["id"].(float64)) }
	h.sim.UpdateMergeRequest(p1, iid(mr1[0]), map[string]any{"title": "renamed one"})
	h.sim.UpdateMergeRequest(p1, iid(mr1[len(mr1)-1]), map[string]any{"state": "closed"})
	h.sim.UpdateMergeRequest(p2, iid(mr2[0]), map[string]any{"title": "renamed two"})
	h.sim.ResetCounters()

	sum := h.MustSync()
	if got := tableSummary(t, sum, "merge_requests").RowsWritten; got != 3 {
		t.Errorf("second sync wrote %d merge requests, want 3", got)
	}
	// One list request per project: the changes fit in one page.
	if got, want := h.sim.Requests("merge_requests"), len(h.refs); got != want {
		t.Errorf("merge request list requests = %d, want %d", got, want)
	}
	if got := tableSummary(t, sum, "projects").RowsWritten; got != 0 {
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
	sum = h.MustSync()
	if sum.RowsWritten != 0 {
		t.Errorf("third sync wrote %d rows, want 0", sum.RowsWritten)
	}
	if got, want := h.sim.Requests("total"), 2*len(h.refs); got != want {
		t.Errorf("third sync made %d requests, want %d (a project and a merge request page each)", got, want)
	}
	for _, u := range h.sim.RequestLog() {
		if strings.Contains(u, "/merge_requests") && !strings.Contains(u, "updated_after=") {
			t.Errorf("incremental request without updated_after: %s", u)
		}
	}
}

func TestLocalSync_StartDateBoundsFirstSync(t *testing.T) {
	h := MustHarness(t)
	all := h.simMergeRequests(time.Time{})
	var times []time.Time
	for _, pid := range h.projIDs {
		for _, mr := range h.sim.MergeRequests(pid) {
			times = append(times, mustTime(t, mr["updated_at"]))
		}
	}
	start := median(times)
	h.set("START_DATE", start.UTC().Format(time.RFC3339Nano))
	h.MustSync()

	got := h.rows("merge_requests")
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

func TestLocalSync_TableFlags(t *testing.T) {
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
			sum := h.MustSync()
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

func TestLocalSync_MaxRecordsStopsEarly(t *testing.T) {
	h := MustHarness(t)
	h.set("MAX_RECORDS_PER_SYNC", "7")
	want := h.simMergeRequests(time.Time{})

	runs := 0
	for {
		runs++
		if runs > len(want) {
			t.Fatalf("still more to do after %d runs", runs)
		}
		sum := h.MustSync()
		mrs := tableSummary(t, sum, "merge_requests")
		if mrs.RowsWritten > 7 {
			t.Fatalf("run %d wrote %d merge requests, want at most 7", runs, mrs.RowsWritten)
		}
		if !sum.More {
			break
		}
		if mrs.StopReason != "max_records_per_sync" && tableSummary(t, sum, "users").StopReason != "max_records_per_sync" {
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

func TestLocalSync_Errors(t *testing.T) {
	t.Run("Unauthorized", func(t *testing.T) {
		h := MustHarness(t)
		h.set("GITLAB_TOKEN", "glpat-wrong-token")
		r := h.run()
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		if r.sum == nil || !strings.Contains(r.sum.Error, "rejected the token") {
			t.Errorf("summary does not say the token was rejected:\n%s", r.stdout)
		}
		if !strings.Contains(r.stderr, "gitlab-sync:   get project") || !strings.Contains(r.stderr, "rejected the token") {
			t.Errorf("stderr does not say the token was rejected:\n%s", r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, "glpat-wrong-token") {
			t.Errorf("the wrong token appears in the output")
		}
		if got := h.sim.Requests("total"); got != 1 {
			t.Errorf("made %d requests after a 401, want 1 (fail at once)", got)
		}
	})

	for _, status := range []int{http.StatusForbidden, http.StatusNotFound} {
		t.Run(fmt.Sprint("Project", status), func(t *testing.T) {
			h := MustHarness(t)
			h.sim.SetProjectStatus(h.refs[1], status)
			r := h.run()
			if r.code != 0 {
				t.Fatalf("exit %d, want 0 (the other projects go on):\n%s", r.code, r.stderr)
			}
			for _, tbl := range []string{"projects", "merge_requests"} {
				ps := tableSummary(t, r.sum, tbl).Projects[1]
				if ps.Status != gitlabsync.StatusSkipped || !strings.Contains(ps.Reason, fmt.Sprint(status)) {
					t.Errorf("%s project %s: status %q reason %q, want skipped with %d", tbl, ps.Project, ps.Status, ps.Reason, status)
				}
			}
			if !strings.Contains(r.stderr, "gitlab-sync: project "+h.refs[1]+" skipped: get project") {
				t.Errorf("stderr does not warn of the skipped project:\n%s", r.stderr)
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
		h.MustSync()
		if got := h.sim.Requests("status_429"); got != 3 {
			t.Errorf("429 answers = %d, want 3", got)
		}
		h.MustEqualGitLab()
	})

	t.Run("ServerErrorsRetried", func(t *testing.T) {
		h := MustHarness(t)
		h.sim.InjectFault(gitlabtest.Fault{Path: "/projects/", Status: 502, Times: 2})
		h.sim.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Status: 500, Times: 1})
		h.MustSync()
		h.MustEqualGitLab()
	})

	t.Run("ServerDownFailsTableKeepsCheckpoints", func(t *testing.T) {
		h := MustHarness(t)
		h.sim.InjectFault(gitlabtest.Fault{Path: fmt.Sprintf("/projects/%d/merge_requests", h.projIDs[1]), Status: 503, Times: 1000})
		r := h.run()
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		if got := tableSummary(t, r.sum, "merge_requests").Status; got != gitlabsync.StatusFailed {
			t.Errorf("merge_requests status = %q, want failed", got)
		}
		if got := tableSummary(t, r.sum, "projects").Status; got != gitlabsync.StatusOK {
			t.Errorf("projects status = %q, want ok", got)
		}
		if !strings.Contains(r.stderr, "gitlab-sync: the run failed:") || !strings.Contains(r.stderr, "503") {
			t.Errorf("stderr does not say what failed:\n%s", r.stderr)
		}
		// What was read before the failure is written and checkpointed.
		first := countValue(h.rows("merge_requests", "project_id"), fmt.Sprint(h.projIDs[0]))
		if want := len(h.sim.MergeRequests(h.projIDs[0])); first != want {
			t.Errorf("project %d: %d merge requests written, want %d", h.projIDs[0], first, want)
		}
		// The next run resumes.
		h.sim.ClearFaults()
		h.MustSync()
		h.MustEqualGitLab()
	})

	t.Run("Unreachable", func(t *testing.T) {
		h := MustHarness(t)
		h.set("GITLAB_BASE_URL", "http://127.0.0.1:1")
		start := time.Now()
		r := h.run()
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		if !strings.Contains(r.stderr, "gitlab-sync: cannot reach GitLab at http://127.0.0.1:1") {
			t.Errorf("stderr does not say GitLab cannot be reached:\n%s", r.stderr)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %s to give up, want a few retries' worth", d)
		}
	})

	t.Run("Timeout", func(t *testing.T) {
		h := MustHarness(t)
		h.sim.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Delay: 20 * time.Second, Times: 1})
		start := time.Now()
		r := h.run("-timeout", "500ms")
		if r.code != 1 {
			t.Errorf("exit %d, want 1", r.code)
		}
		if !strings.Contains(r.stderr, "stopped by -timeout 500ms") {
			t.Errorf("stderr does not blame -timeout:\n%s", r.stderr)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("took %s with -timeout 500ms", d)
		}
		if st := h.MustState(); st["lease"] != nil {
			t.Errorf("lease left in the state file after the timeout: %v", st["lease"])
		}
	})
}

func TestLocalSync_ConcurrentRunsOneConflict(t *testing.T) {
	// Two engines on one state file: the lease keeps them apart, as
	// Firestore's does for the function.
	t.Run("Lease", func(t *testing.T) {
		h := MustHarness(t)
		h.sim.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Delay: 700 * time.Millisecond, Times: 100})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i) * 300 * time.Millisecond)
				e, closeEngine := h.plainEngine(t)
				defer closeEngine()
				_, errs[i] = e.Run(context.Background(), gitlabsync.Request{})
			}()
		}
		wg.Wait()
		var held *state.HeldError
		if errs[0] != nil || !errors.As(errs[1], &held) {
			t.Fatalf("errors = %v, want [nil, *state.HeldError]", errs)
		}
		h.sim.ClearFaults()
		h.MustSync()
	})

	// Two commands on one state file: the second says so and exits 1.
	t.Run("Command", func(t *testing.T) {
		h := MustHarness(t)
		h.sim.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Delay: 700 * time.Millisecond, Times: 100})
		results := make([]result, 2)
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(time.Duration(i) * 300 * time.Millisecond)
				results[i] = h.run()
			}()
		}
		wg.Wait()
		if results[0].code != 0 || results[1].code != 1 {
			t.Fatalf("exit codes = %d, %d; want 0, 1:\n%s", results[0].code, results[1].code, results[1].stderr)
		}
		if !strings.Contains(results[1].stderr, "gitlab-sync: another run (") ||
			!strings.Contains(results[1].stderr, "wait for it to end") {
			t.Errorf("stderr of the second run:\n%s\nwant it to name the run in progress", results[1].stderr)
		}
		if results[1].sum != nil {
			t.Errorf("the refused run printed a summary")
		}
		h.sim.ClearFaults()
		h.MustSync()
	})
}

// plainEngine returns an engine on h's files without the command's run
// lock and lease takeover: what the Store contract alone guarantees. The
// returned function closes the DuckDB file.
func (h *harness) plainEngine(tb testing.TB) (*gitlabsync.Engine, func()) {
	tb.Helper()
	cfg, err := gitlabsync.LoadConfig(h.lookup)
	if err != nil {
		tb.Fatal(err)
	}
	src, err := gitlab.NewClient(gitlab.Options{BaseURL: cfg.BaseURL, Token: cfg.Token})
	if err != nil {
		tb.Fatal(err)
	}
	dest := &duckDest{path: cfg.DuckDBPath}
	e := &gitlabsync.Engine{Config: cfg, Source: src, Dest: dest, Store: state.NewFileStore(cfg.StatePath)}
	return e, func() {
		if err := dest.Close(); err != nil {
			tb.Error(err)
		}
	}
}

func TestLocalSync_BadConfiguration(t *testing.T) {
	h := MustHarness(t)
	h.set("GITLAB_BASE_URL", "ftp://gitlab.example")
	h.set("GITLAB_PROJECT_IDS", "12,not a project")
	h.set("START_DATE", "yesterday")
	h.set("SYNC_USERS_TABLE", "maybe")
	h.set("MAX_RECORDS_PER_SYNC", "-5")
	h.set("GITLAB_TOKEN_SECRET", "my-secret")
	r := h.run()
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	for _, key := range []string{"gitlab_base_url", "gitlab_project_ids", "start_date", "sync_users_table", "max_records_per_sync", "gitlab_token_secret"} {
		if !regexp.MustCompile(`(?m)^gitlab-sync: ` + key + `\b`).MatchString(r.stderr) {
			t.Errorf("no line of stderr starts with gitlab-sync: %s:\n%s", key, r.stderr)
		}
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q, want nothing", r.stdout)
	}
	if got := h.sim.Requests("total"); got != 0 {
		t.Errorf("bad configuration made %d GitLab requests, want 0", got)
	}
}

func TestLocalSync_Request(t *testing.T) {
	h := MustHarness(t)
	cases := []struct {
		name   string
		args   []string
		code   int
		tables string
	}{
		{"OnlyProjects", []string{"-tables", "projects"}, 0, "projects"},
		{"UnknownTable", []string{"-tables", "issues"}, 2, ""},
		{"UnknownFullRefresh", []string{"-full-refresh", "issues"}, 2, ""},
		{"FullRefresh", []string{"-tables", "merge_requests", "-full-refresh", "merge_requests"}, 0, "merge_requests"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.run(c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d:\n%s", r.code, c.code, r.stderr)
			}
			if c.code != 0 {
				if !strings.Contains(r.stderr, "unknown table") {
					t.Errorf("stderr does not name the unknown table:\n%s", r.stderr)
				}
				return
			}
			var got []string
			for _, ts := range r.sum.Tables {
				got = append(got, ts.Table)
			}
			if strings.Join(got, ",") != c.tables {
				t.Errorf("tables = %v, want %s", got, c.tables)
			}
		})
	}
	// A full refresh re-reads every merge request and duplicates none.
	sum := h.MustSync("-tables", "merge_requests", "-full-refresh", "merge_requests")
	want := len(h.simMergeRequests(time.Time{}))
	if got := tableSummary(t, sum, "merge_requests").RowsWritten; got != int64(want) {
		t.Errorf("full refresh wrote %d, want %d", got, want)
	}
	if got := len(h.rows("merge_requests")); got != want {
		t.Errorf("after full refresh: %d rows, want %d", got, want)
	}
}

func TestLocalSync_IntervalGuard(t *testing.T) {
	h := MustHarness(t)
	h.set("SYNC_INTERVAL_HOURS", "1")
	h.MustSync()
	r := h.run()
	if r.code != 0 || r.sum.Status != gitlabsync.StatusSkipped || r.sum.SkipReason == "" {
		t.Errorf("second run within the hour: exit %d, status %q reason %q; want 0, skipped with a reason",
			r.code, r.sum.Status, r.sum.SkipReason)
	}
	if !strings.Contains(r.stderr, "-force") {
		t.Errorf("stderr of a skipped run does not mention -force:\n%s", r.stderr)
	}
	if sum := h.MustSync("-force"); sum.Status != gitlabsync.StatusOK {
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

func TestLocalSync_CrashBetweenLoadAndCheckpoint(t *testing.T) {
	h := MustHarness(t)
	m, _, _ := h.main()
	if err := m.ParseFlags(); err != nil {
		t.Fatal(err)
	}
	cfg, err := gitlabsync.LoadConfig(m.configEnv)
	if err != nil {
		t.Fatal(err)
	}
	engine, closeEngine, err := m.engine(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	engine.BatchSize = 5 // several batches, so the crash falls inside the table
	engine.Store = &crashingStore{Store: engine.Store}
	sum, err := engine.Run(context.Background(), gitlabsync.Request{})
	closeEngine()
	if err != nil {
		t.Fatal(err)
	}
	if got := tableSummary(t, sum, "merge_requests").Status; got != gitlabsync.StatusFailed {
		t.Fatalf("the crashed run's merge_requests status = %q, want failed", got)
	}

	// Rerun: no duplicates, no gaps.
	h.MustSync()
	h.MustEqualGitLab()
}

func TestLocalSync_TakesOverLeaseOfDeadRun(t *testing.T) {
	h := MustHarness(t)
	// A run that was killed left its lease, valid for another hour.
	if err := state.NewFileStore(h.statePath()).Acquire(context.Background(), "dead-run", time.Now(), time.Hour); err != nil {
		t.Fatal(err)
	}
	r := h.run()
	if r.code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "took over the lease of run dead-run") {
		t.Errorf("stderr does not say the dead run's lease was taken over:\n%s", r.stderr)
	}
	if st := h.MustState(); st["lease"] != nil {
		t.Errorf("lease left in the state file: %v", st["lease"])
	}
	h.MustEqualGitLab()
}
