package main

// The engine cases both destinations share (internal/contract), run in
// process against the local destination: a DuckDB file and a JSON state
// file. What only the command has (exit codes, the wording of stderr, its
// flags, its run lock) is tested here and in command_test.go.

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
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/contract"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
)

func TestLocalSync_Contract(t *testing.T) {
	contract.Run(t, func(t *testing.T) contract.Target { return localTarget{h: MustHarness(t)} })
}

// localTarget is the command as internal/contract drives it: each sync is
// one run in process.
type localTarget struct{ h *harness }

func (lt localTarget) Sim() *gitlabtest.Server { return lt.h.sim }

func (lt localTarget) Configure(key, value string) { lt.h.set(key, value) }

// Sync runs the command with the flags that say req: exit 0 is Succeeded,
// 1 Failed, any other code fails the test. The output is stdout and stderr.
func (lt localTarget) Sync(tb testing.TB, req gitlabsync.Request) contract.Result {
	tb.Helper()
	var args []string
	if req.Tables != nil {
		args = append(args, "-tables", strings.Join(req.Tables, ","))
	}
	if req.FullRefresh != nil {
		args = append(args, "-full-refresh", strings.Join(req.FullRefresh, ","))
	}
	if req.Force {
		args = append(args, "-force")
	}
	r := lt.h.run(args...)
	res := contract.Result{Summary: r.sum, Output: r.stdout + "\n" + r.stderr}
	switch r.code {
	case 0:
		res.Outcome = contract.Succeeded
	case 1:
		res.Outcome = contract.Failed
	default:
		tb.Fatalf("exit %d, want 0 or 1:\n%s", r.code, r.stderr)
	}
	return res
}

func (lt localTarget) Rows(tb testing.TB, table string, cols ...string) map[int64]string {
	tb.Helper()
	return lt.h.rows(table, cols...)
}

// Engine is the engine a run of the command wires, run lock included.
func (lt localTarget) Engine(tb testing.TB, opts contract.EngineOptions) (*gitlabsync.Engine, func()) {
	tb.Helper()
	m, _, _ := lt.h.main()
	if err := m.ParseFlags(); err != nil {
		tb.Fatal(err)
	}
	m.GitLab.PerPage = opts.PerPage
	cfg, err := gitlabsync.LoadConfig(m.configEnv)
	if err != nil {
		tb.Fatal(err)
	}
	if opts.MaxRunTime != 0 {
		cfg.MaxRunTime = opts.MaxRunTime
	}
	engine, closeEngine, err := m.engine(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return engine, closeEngine
}

func TestLocalSync_ProgressLines(t *testing.T) {
	h := MustHarness(t)
	r := h.run()
	if r.code != 0 {
		t.Fatalf("exit %d, want 0:\n%s", r.code, r.stderr)
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

// TestLocalSync_Messages checks what stderr says in the runs of the
// contract whose outcome a person must understand; the contract checks the
// outcome, the summary and the rows.
func TestLocalSync_Messages(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(h *harness) // before the run
		code   int
		stderr func(h *harness) []string // what stderr must hold
	}{
		{
			name:   "Unauthorized",
			setup:  func(h *harness) { h.set("GITLAB_TOKEN", "glpat-wrong-token") },
			code:   1,
			stderr: func(*harness) []string { return []string{"gitlab-sync:   get project", "rejected the token"} },
		},
		{
			name:   "Project403",
			setup:  func(h *harness) { h.sim.SetProjectStatus(h.refs[1], http.StatusForbidden) },
			stderr: skippedProject,
		},
		{
			name:   "Project404",
			setup:  func(h *harness) { h.sim.SetProjectStatus(h.refs[1], http.StatusNotFound) },
			stderr: skippedProject,
		},
		{
			name: "ServerDown",
			setup: func(h *harness) {
				path := fmt.Sprintf("/projects/%d/merge_requests", h.projIDs[1])
				h.sim.InjectFault(gitlabtest.Fault{Path: path, Status: 503, Times: 1000})
			},
			code:   1,
			stderr: func(*harness) []string { return []string{"gitlab-sync: the run failed:", "503"} },
		},
		{
			name: "IntervalGuard",
			setup: func(h *harness) {
				h.set("SYNC_INTERVAL_HOURS", "1")
				h.MustSync()
			},
			stderr: func(*harness) []string { return []string{"-force"} },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := MustHarness(t)
			c.setup(h)
			r := h.run()
			if r.code != c.code {
				t.Errorf("exit %d, want %d", r.code, c.code)
			}
			for _, s := range c.stderr(h) {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr does not hold %q:\n%s", s, r.stderr)
				}
			}
		})
	}
}

func skippedProject(h *harness) []string {
	return []string{"gitlab-sync: project " + h.refs[1] + " skipped: get project"}
}

func TestLocalSync_Errors(t *testing.T) {
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
	for _, s := range contract.BadSettings {
		h.set(s.Key, s.Value)
	}
	r := h.run()
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	for _, s := range contract.BadSettings {
		key := strings.ToLower(s.Key)
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

// TestLocalSync_RequestRejected covers the flags the command refuses with
// exit 2; the requests both sides accept are in internal/contract.
func TestLocalSync_RequestRejected(t *testing.T) {
	h := MustHarness(t)
	cases := []struct {
		name string
		args []string
	}{
		{"UnknownTable", []string{"-tables", "issues"}},
		{"UnknownFullRefresh", []string{"-full-refresh", "issues"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := h.run(c.args...)
			if r.code != 2 {
				t.Fatalf("exit %d, want 2:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "unknown table") {
				t.Errorf("stderr does not name the unknown table:\n%s", r.stderr)
			}
		})
	}
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
