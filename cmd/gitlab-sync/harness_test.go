package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/contract"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/contract/fixture"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/testenv"
	"github.com/gitlab-bigquery-sync/gitlabsync/load/duckdb"
)

// binary is the command built by TestMain, with the test hooks of
// testhooks.go.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gitlab-sync-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create a directory for the binary:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "gitlab-sync")
	build := exec.Command("go", "build", "-tags", "gitlabsync_testhooks", "-o", binary, ".")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build gitlab-sync: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	testenv.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testToken is the GitLab token of the tests; it must never be seen in the
// output.
const testToken = "glpat-TESTTOKEN-do-not-leak-4f9a"

// fastRetries makes GitLab retries quick, as the function's tests do.
var fastRetries = []string{"-retry-max", "4", "-retry-wait-max", "20ms"}

// harness is one local connection's world: the GitLab simulator serving the
// recorded samples and a directory for the DuckDB and state files.
type harness struct {
	t       testing.TB
	sim     *gitlabtest.Server
	dir     string
	mu      sync.Mutex
	env     *fixture.Env // the configuration, as environment variables
	refs    []string     // configured project refs
	projIDs []int64      // their numeric ids
	outputs []string     // everything the command printed

	// cloud points the in-process command at emulators.
	cloud gitlabsync.CloudOptions
}

// result is what one run of the command gave.
type result struct {
	code           int
	sum            *gitlabsync.Summary // nil when stdout holds no summary
	stdout, stderr string
}

// MustHarness sets up a connection to every simulated project that has
// merge requests, the first by numeric id and the others by path.
func MustHarness(tb testing.TB) *harness {
	tb.Helper()
	h := &harness{
		t:   tb,
		sim: gitlabtest.NewSampleServer(gitlabtest.Options{Token: testToken}),
		dir: tb.TempDir(),
	}
	tb.Cleanup(h.sim.Close)
	h.refs, h.projIDs = fixture.MustProjects(tb, h.sim)
	h.env = fixture.NewEnv(map[string]string{
		"GITLAB_BASE_URL":     h.sim.URL(),
		"GITLAB_TOKEN":        testToken,
		"GITLAB_PROJECT_IDS":  strings.Join(h.refs, ","),
		"DUCKDB_PATH":         h.duckDBPath(),
		"STATE_PATH":          h.statePath(),
		"SYNC_INTERVAL_HOURS": "0",
	})
	tb.Cleanup(h.checkNoLeak)
	return h
}

func (h *harness) duckDBPath() string { return filepath.Join(h.dir, "warehouse.duckdb") }
func (h *harness) statePath() string  { return filepath.Join(h.dir, "state.json") }

// set changes one configuration variable; "" removes it.
func (h *harness) set(key, value string) { h.env.Set(key, value) }

func (h *harness) lookup(key string) (string, bool) { return h.env.Lookup(key) }

// checkNoLeak fails the test if the token appears in anything printed.
func (h *harness) checkNoLeak() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, out := range h.outputs {
		if strings.Contains(out, testToken) {
			h.t.Errorf("the token appears in the output:\n%s", out)
		}
	}
}

// newResult records and decodes what a run printed.
func (h *harness) newResult(code int, stdout, stderr string) result {
	h.mu.Lock()
	h.outputs = append(h.outputs, stdout, stderr)
	h.mu.Unlock()
	r := result{code: code, stdout: stdout, stderr: stderr}
	if strings.TrimSpace(stdout) != "" {
		var sum gitlabsync.Summary
		if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
			h.t.Errorf("stdout is not a JSON summary: %v\n%s", err, stdout)
		} else {
			r.sum = &sum
		}
	}
	return r
}

// main returns the command, to run in process with h's configuration and
// args after fastRetries.
func (h *harness) main(args ...string) (*Main, *fixture.SyncBuffer, *fixture.SyncBuffer) {
	stdout, stderr := &fixture.SyncBuffer{}, &fixture.SyncBuffer{}
	m := &Main{
		Args:   append(append([]string(nil), fastRetries...), args...),
		Env:    h.lookup,
		Stdout: stdout,
		Stderr: stderr,
		Cloud:  h.cloud,
	}
	return m, stdout, stderr
}

// run runs the command in process.
func (h *harness) run(args ...string) result {
	h.t.Helper()
	m, stdout, stderr := h.main(args...)
	code := m.Exec(context.Background())
	return h.newResult(code, stdout.String(), stderr.String())
}

// MustSync runs the command in process and fails unless it exits 0.
func (h *harness) MustSync(args ...string) *gitlabsync.Summary {
	h.t.Helper()
	r := h.run(args...)
	if r.code != 0 || r.sum == nil {
		h.t.Fatalf("gitlab-sync exited %d, want 0:\n%s\n%s", r.code, r.stderr, r.stdout)
	}
	return r.sum
}

// MustWriteConfig writes h's configuration as a -config file: keys in lower
// case, as in configuration_example.json.
func (h *harness) MustWriteConfig() string {
	h.t.Helper()
	cfg := map[string]string{}
	for k, v := range h.env.Vars() {
		cfg[strings.ToLower(k)] = v
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		h.t.Fatal(err)
	}
	path := filepath.Join(h.dir, "configuration.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		h.t.Fatal(err)
	}
	return path
}

// command returns the built binary, configured by a -config file written
// from h's configuration, with env as its only environment variables
// besides PATH and HOME, and args after fastRetries.
func (h *harness) command(
	ctx context.Context, env []string, args ...string,
) (*exec.Cmd, *fixture.SyncBuffer, *fixture.SyncBuffer) {
	h.t.Helper()
	all := append([]string{"-config", h.MustWriteConfig()}, fastRetries...)
	cmd := exec.CommandContext(ctx, binary, append(all, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + h.dir}, env...)
	cmd.Dir = h.dir
	stdout, stderr := &fixture.SyncBuffer{}, &fixture.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd, stdout, stderr
}

// exec runs the built binary to its end, within a minute.
func (h *harness) exec(env []string, args ...string) result {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd, stdout, stderr := h.command(ctx, env, args...)
	return h.wait(cmd, stdout, stderr)
}

// wait waits for a started command and returns its result.
func (h *harness) wait(cmd *exec.Cmd, stdout, stderr *fixture.SyncBuffer) result {
	h.t.Helper()
	var err error
	if cmd.Process == nil {
		err = cmd.Run()
	} else {
		err = cmd.Wait()
	}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		h.t.Fatalf("run gitlab-sync: %v\n%s", err, stderr.String())
	}
	return h.newResult(cmd.ProcessState.ExitCode(), stdout.String(), stderr.String())
}

// MustExecSync runs the binary and fails unless it exits 0.
func (h *harness) MustExecSync(env []string, args ...string) *gitlabsync.Summary {
	h.t.Helper()
	r := h.exec(env, args...)
	if r.code != 0 || r.sum == nil {
		h.t.Fatalf("gitlab-sync exited %d, want 0:\n%s\n%s", r.code, r.stderr, r.stdout)
	}
	return r.sum
}

// rows reads a table of the DuckDB file as id → the given columns joined by
// "|", and fails on a duplicate id. The file must not be open elsewhere.
func (h *harness) rows(tbl string, cols ...string) map[int64]string {
	h.t.Helper()
	db, err := duckdb.Open(h.duckDBPath())
	if err != nil {
		h.t.Fatal(err)
	}
	defer db.Close()
	sel := "id"
	if len(cols) > 0 {
		sel += ", " + strings.Join(cols, ", ")
	}
	q := fmt.Sprintf("SELECT %s FROM %s", sel, tbl)
	rs, err := db.SQL().QueryContext(context.Background(), q)
	if err != nil {
		h.t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	out := map[int64]string{}
	for rs.Next() {
		vals := make([]any, 1+len(cols))
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			h.t.Fatalf("%s: %v", q, err)
		}
		id := vals[0].(int64)
		if _, dup := out[id]; dup {
			h.t.Fatalf("table %s holds id %d twice", tbl, id)
		}
		out[id] = fixture.Row(vals[1:])
	}
	if err := rs.Err(); err != nil {
		h.t.Fatalf("%s: %v", q, err)
	}
	return out
}

// MustState reads the state file, failing unless it is a JSON object.
func (h *harness) MustState() map[string]any {
	h.t.Helper()
	data, err := os.ReadFile(h.statePath())
	if err != nil {
		h.t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(data, &st); err != nil {
		h.t.Fatalf("state file is not valid JSON: %v\n%s", err, data)
	}
	return st
}

// cursorKeys returns the cursor keys of the state file, sorted.
func (h *harness) cursorKeys() []string {
	h.t.Helper()
	cursors, _ := h.MustState()["cursors"].(map[string]any)
	var out []string
	for k := range cursors {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// simMergeRequests returns the simulator's merge requests of the configured
// projects as id → "title|state|updated_at(UTC)".
func (h *harness) simMergeRequests(since time.Time) map[int64]string {
	h.t.Helper()
	return fixture.MergeRequests(h.t, h.sim, h.projIDs, since)
}

// simUsers returns the ids of every user the configured projects' merge
// requests refer to.
func (h *harness) simUsers() map[int64]bool { return fixture.Users(h.sim, h.projIDs) }

// MustEqualGitLab fails unless the DuckDB file holds exactly the
// simulator's projects, merge requests and users.
func (h *harness) MustEqualGitLab() {
	h.t.Helper()
	contract.MustEqualGitLab(h.t, localTarget{h: h}, h.projIDs)
}

// waitFor polls cond every 20 ms until it holds, failing after d.
func waitFor(tb testing.TB, d time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("waited %s for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
