package main

// End-to-end tests of the built command, run as a process against the
// GitLab simulator.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/contract"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/contract/fixture"
)

func TestCommand_Sync(t *testing.T) {
	h := MustHarness(t)

	// First run: everything GitLab has.
	sum := h.MustExecSync(nil)
	if sum.Status != gitlabsync.StatusOK || sum.More {
		t.Fatalf("first run: status %q, more %v; want ok, false", sum.Status, sum.More)
	}
	want := h.simMergeRequests(time.Time{})
	for _, c := range []struct {
		table string
		want  int
	}{
		{"projects", len(h.refs)},
		{"merge_requests", len(want)},
		{"users", len(h.simUsers())},
	} {
		if got := contract.MustTable(t, sum, c.table).RowsWritten; got != int64(c.want) {
			t.Errorf("first run: %s rows_written = %d, want %d", c.table, got, c.want)
		}
	}
	h.MustEqualGitLab()
	h.MustState()

	// Second run, after changes: only the changed rows, one project request
	// and one merge request page per project.
	p1, p2 := h.projIDs[0], h.projIDs[1]
	mr1, mr2 := h.sim.MergeRequests(p1), h.sim.MergeRequests(p2)
	iid := func(mr map[string]any) int64 { return int64(mr["iid"].(float64)) }
	h.sim.UpdateMergeRequest(p1, iid(mr1[0]), map[string]any{"title": "renamed one"})
	h.sim.UpdateMergeRequest(p1, iid(mr1[len(mr1)-1]), map[string]any{"state": "closed"})
	h.sim.UpdateMergeRequest(p2, iid(mr2[0]), map[string]any{"title": "renamed two"})
	h.sim.ResetCounters()
	sum = h.MustExecSync(nil)
	if got := contract.MustTable(t, sum, "merge_requests").RowsWritten; got != 3 {
		t.Errorf("second run wrote %d merge requests, want 3", got)
	}
	if got := contract.MustTable(t, sum, "projects").RowsWritten; got != 0 {
		t.Errorf("second run wrote %d projects, want 0", got)
	}
	// The users of changed merge requests are fetched again, in one request.
	users := map[int64]bool{}
	for _, mr := range []map[string]any{mr1[0], mr1[len(mr1)-1], mr2[0]} {
		for id := range fixture.MergeRequestUsers(mr) {
			users[id] = true
		}
	}
	if got := contract.MustTable(t, sum, "users").RowsWritten; got != int64(len(users)) {
		t.Errorf("second run wrote %d users, want %d (those of the changed merge requests)", got, len(users))
	}
	for _, kind := range []string{"project", "merge_requests"} {
		if got, want := h.sim.Requests(kind), len(h.refs); got != want {
			t.Errorf("second run: %d %s requests, want %d", got, kind, want)
		}
	}
	h.MustEqualGitLab()
	h.MustState()

	// Third run, no changes: nothing written.
	h.sim.ResetCounters()
	sum = h.MustExecSync(nil)
	if sum.RowsWritten != 0 {
		t.Errorf("third run wrote %d rows, want 0", sum.RowsWritten)
	}
	if got, want := h.sim.Requests("total"), 2*len(h.refs); got != want {
		t.Errorf("third run made %d requests, want %d", got, want)
	}
	if st := h.MustState(); st["lease"] != nil || st["last_success"] == nil {
		t.Errorf("state after a clean run: lease %v, last_success %v; want none, set", st["lease"], st["last_success"])
	}
}

func TestCommand_CrashAfterRowsBeforeState(t *testing.T) {
	h := MustHarness(t)

	// The test build kills itself right after the first batch of merge
	// requests is written, before its checkpoint.
	r := h.exec([]string{crashAfterUpsertEnv + "=merge_requests"}, "-batch-size", "5")
	if r.code != -1 {
		t.Fatalf("exit %d, want death by signal:\n%s", r.code, r.stderr)
	}
	if got := fixture.CountValue(h.rows("merge_requests", "project_id"), fmt.Sprint(h.projIDs[0])); got == 0 {
		t.Fatalf("no merge request of project %d written before the crash", h.projIDs[0])
	}
	for _, k := range h.cursorKeys() {
		if strings.HasPrefix(k, "merge_requests/") {
			t.Errorf("state file has cursor %s, want none saved before the crash", k)
		}
	}
	if st := h.MustState(); st["lease"] == nil {
		t.Errorf("the killed run left no lease; the test proves nothing")
	}

	// The next run takes the dead run's lease over and fills every gap
	// without a duplicate.
	r = h.exec(nil)
	if r.code != 0 {
		t.Fatalf("rerun: exit %d, want 0:\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "took over the lease of run") {
		t.Errorf("rerun's stderr does not say it took the lease over:\n%s", r.stderr)
	}
	h.MustEqualGitLab()
	h.MustState()
}

func TestCommand_KilledMidRun(t *testing.T) {
	h := MustHarness(t)
	p1, p2 := h.projIDs[0], h.projIDs[1]
	h.sim.InjectFault(gitlabtest.Fault{Path: fmt.Sprintf("/projects/%d/merge_requests", p2), Delay: 30 * time.Second, Times: 1})

	// Kill the run once the first project's merge requests are checkpointed,
	// while it waits for the second's.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, stdout, stderr := h.command(ctx, nil, "-batch-size", "5")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := fmt.Sprintf("merge_requests/%d", p1)
	waitFor(t, 20*time.Second, "the first project's checkpoint", func() bool {
		data, _ := os.ReadFile(h.statePath())
		return strings.Contains(string(data), `"`+first+`"`)
	})
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if r := h.wait(cmd, stdout, stderr); r.code != -1 {
		t.Fatalf("exit %d, want death by signal", r.code)
	}
	if got, want := h.cursorKeys(), first; !slices.Contains(got, want) || slices.Contains(got, fmt.Sprintf("merge_requests/%d", p2)) {
		t.Errorf("cursors after the kill = %v, want %s and not project %d", got, want, p2)
	}

	// The rerun finishes the job: no duplicates, no gaps.
	h.MustExecSync(nil)
	h.MustEqualGitLab()
	h.MustState()
}

func TestCommand_Interrupted(t *testing.T) {
	h := MustHarness(t)
	h.sim.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Delay: 30 * time.Second, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, stdout, stderr := h.command(ctx, nil)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the projects table", func() bool {
		return strings.Contains(stderr.String(), "projects ok")
	})
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	r := h.wait(cmd, stdout, stderr)
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	if r.sum == nil || r.sum.Status != gitlabsync.StatusFailed {
		t.Errorf("want a failed summary on stdout, got:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "gitlab-sync:   interrupted") {
		t.Errorf("stderr does not say the run was interrupted:\n%s", r.stderr)
	}
	// The lease was given back: the next run needs no takeover.
	if st := h.MustState(); st["lease"] != nil {
		t.Errorf("lease left after an interrupt: %v", st["lease"])
	}
	r = h.exec(nil)
	if r.code != 0 || strings.Contains(r.stderr, "took over") {
		t.Errorf("rerun: exit %d, want 0 without a takeover:\n%s", r.code, r.stderr)
	}
	h.MustEqualGitLab()
}

func TestCommand_ConcurrentRuns(t *testing.T) {
	h := MustHarness(t)
	h.sim.InjectFault(gitlabtest.Fault{Path: "/merge_requests", Delay: 2 * time.Second, Times: 1})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, stdout, stderr := h.command(ctx, nil)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the first run's lease", func() bool {
		data, _ := os.ReadFile(h.statePath())
		return strings.Contains(string(data), `"lease"`)
	})

	second := h.exec(nil)
	if second.code != 1 {
		t.Errorf("second run: exit %d, want 1", second.code)
	}
	if !regexp.MustCompile(`gitlab-sync: another run \(\S+\) of this connection has held its lease since`).MatchString(second.stderr) {
		t.Errorf("second run's stderr does not name the run in progress:\n%s", second.stderr)
	}
	if first := h.wait(cmd, stdout, stderr); first.code != 0 {
		t.Errorf("first run: exit %d, want 0:\n%s", first.code, first.stderr)
	}
	h.MustEqualGitLab()
}

func TestCommand_Errors(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string // configuration changes
		args    []string
		code    int
		stderr  []string // lines stderr must hold
		absent  string   // must appear in neither stdout nor stderr
		summary bool     // a summary on stdout
	}{
		{
			name: "BadConfiguration",
			env:  map[string]string{"GITLAB_BASE_URL": "gitlab.example", "GITLAB_PROJECT_IDS": "", "MAX_RUN_MINUTES": "0", "CONNECTION_ID": "a b"},
			code: 2,
			stderr: []string{
				`gitlab-sync: gitlab_base_url="gitlab.example": want the instance's address`,
				"gitlab-sync: gitlab_project_ids is empty",
				"gitlab-sync: max_run_minutes=0",
				`gitlab-sync: connection_id="a b"`,
			},
		},
		{
			name:   "BadFlag",
			args:   []string{"-log-format", "xml"},
			code:   2,
			stderr: []string{`gitlab-sync: -log-format "xml": want text or json`, "gitlab-sync: run gitlab-sync -h for help"},
		},
		{
			name:   "DisabledTable",
			env:    map[string]string{"SYNC_USERS_TABLE": "false"},
			args:   []string{"-tables", "users"},
			code:   2,
			stderr: []string{`gitlab-sync: table "users" is disabled by its sync_users_table flag`},
		},
		{
			name:    "WrongToken",
			env:     map[string]string{"GITLAB_TOKEN": "glpat-wrong-token-123"},
			code:    1,
			stderr:  []string{"gitlab-sync: the run failed:", "gitlab rejected the token (401 Unauthorized)"},
			absent:  "glpat-wrong-token-123",
			summary: true,
		},
		{
			name:   "Unreachable",
			env:    map[string]string{"GITLAB_BASE_URL": "http://127.0.0.1:1"},
			args:   []string{"-retry-wait-max", "50ms"},
			code:   1,
			stderr: []string{"gitlab-sync: cannot reach GitLab at http://127.0.0.1:1 (gitlab_base_url) after 3 attempts"},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := MustHarness(t)
			for k, v := range c.env {
				h.set(k, v)
			}
			start := time.Now()
			r := h.exec(nil, c.args...)
			if r.code != c.code {
				t.Errorf("exit %d, want %d", r.code, c.code)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s, want a quick answer", d)
			}
			for _, s := range c.stderr {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr does not hold %q:\n%s", s, r.stderr)
				}
			}
			if c.absent != "" && strings.Contains(r.stdout+r.stderr, c.absent) {
				t.Errorf("%q appears in the output", c.absent)
			}
			if got := r.sum != nil; got != c.summary {
				t.Errorf("summary on stdout: got %v, want %v:\n%s", got, c.summary, r.stdout)
			}
		})
	}
}

func TestCommand_Help(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"serve", "-h"}} {
		cmd := exec.Command(binary, args...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("gitlab-sync %v: %v", args, err)
		}
		help := string(out)
		for _, k := range gitlabsync.Keys {
			if !regexp.MustCompile(`(?m)^  ` + k + `( \[.*\])?$`).MatchString(help) {
				t.Errorf("gitlab-sync %v does not list key %s", args, k)
			}
		}
		for _, f := range []string{"-config", "-force", "-tables", "-full-refresh", "-timeout", "-log-format",
			"-retry-max", "-retry-wait-max", "-request-timeout", "-batch-size", "-host", "-port"} {
			if !strings.Contains(help, "  "+f+" ") {
				t.Errorf("gitlab-sync %v does not explain %s", args, f)
			}
		}
	}
}

func TestCommand_Serve(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		h := MustHarness(t)
		h.set("BIGQUERY_DATASET", "gitlab")
		port := freePort(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, "serve", "-config", h.MustWriteConfig(), "-port", port)
		cmd.Env = []string{"HOME=" + h.dir}
		stderr := &fixture.SyncBuffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}()
		url := "http://127.0.0.1:" + port + "/"
		waitFor(t, 20*time.Second, "serve to listen", func() bool {
			c, err := net.Dial("tcp", "127.0.0.1:"+port)
			if err == nil {
				c.Close()
			}
			return err == nil
		})

		// A call the function refuses before touching Google Cloud shows
		// that SyncGitLab answers at /.
		req, _ := http.NewRequest(http.MethodPut, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got struct{ Status, Error string }
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("answer is not JSON: %v\n%s", err, body)
		}
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(got.Error, "use POST") {
			t.Errorf("PUT answered %d %s, want 400 asking for POST", resp.StatusCode, body)
		}
		if !strings.Contains(stderr.String(), "gitlab-sync: serving SyncGitLab on http://127.0.0.1:"+port+"/") {
			t.Errorf("stderr does not say where it serves:\n%s", stderr.String())
		}
		if h.sim.Requests("total") != 0 {
			t.Errorf("serve called GitLab before any sync was asked for")
		}
	})

	t.Run("BadConfiguration", func(t *testing.T) {
		h := MustHarness(t)
		h.set("GITLAB_PROJECT_IDS", "")
		cmd := exec.Command(binary, "serve", "-config", h.MustWriteConfig(), "-port", freePort(t))
		cmd.Env = []string{"HOME=" + h.dir}
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 {
			t.Errorf("exit %d, want 2:\n%s", code, out)
		}
		if !strings.Contains(string(out), "gitlab-sync: gitlab_project_ids is empty") {
			t.Errorf("output does not name gitlab_project_ids:\n%s", out)
		}
	})
}

// freePort returns a TCP port nothing listens on just now.
func freePort(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}
