package main

import (
	"bytes"
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
	env     map[string]string // the configuration, as environment variables
	refs    []string          // configured project refs
	projIDs []int64           // their numeric ids
	outputs []string          // everything the command printed

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
	for _, id := range h.sim.ProjectIDs() {
		if len(h.sim.MergeRequests(id)) == 0 {
			continue
		}
		ref := h.sim.ProjectPath(id)
		if len(h.refs) == 0 {
			ref = fmt.Sprint(id)
		}
		h.refs = append(h.refs, ref)
		h.projIDs = append(h.projIDs, id)
	}
	if len(h.refs) < 2 {
		tb.Fatalf("the simulator serves %d projects with merge requests, want at least 2", len(h.refs))
	}
	h.env = map[string]string{
		"GITLAB_BASE_URL":     h.sim.URL(),
		"GITLAB_TOKEN":        testToken,
		"GITLAB_PROJECT_IDS":  strings.Join(h.refs, ","),
		"DUCKDB_PATH":         h.duckDBPath(),
		"STATE_PATH":          h.statePath(),
		"SYNC_INTERVAL_HOURS": "0",
	}
	tb.Cleanup(h.checkNoLeak)
	return h
}

func (h *harness) duckDBPath() string { return filepath.Join(h.dir, "warehouse.duckdb") }
func (h *harness) statePath() string  { return filepath.Join(h.dir, "state.json") }

// set changes one configuration variable; "" removes it.
func (h *harness) set(key, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if value == "" {
		delete(h.env, key)
		return
	}
	h.env[key] = value
}

func (h *harness) lookup(key string) (string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.env[key]
	return v, ok
}

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
func (h *harness) main(args ...string) (*Main, *syncBuffer, *syncBuffer) {
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
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
	h.mu.Lock()
	cfg := map[string]string{}
	for k, v := range h.env {
		cfg[strings.ToLower(k)] = v
	}
	h.mu.Unlock()
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
func (h *harness) command(ctx context.Context, env []string, args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
	h.t.Helper()
	all := append([]string{"-config", h.MustWriteConfig()}, fastRetries...)
	cmd := exec.CommandContext(ctx, binary, append(all, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + h.dir}, env...)
	cmd.Dir = h.dir
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
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
func (h *harness) wait(cmd *exec.Cmd, stdout, stderr *syncBuffer) result {
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
		var strs []string
		for _, v := range vals[1:] {
			if tm, ok := v.(time.Time); ok {
				v = tm.UTC().Format(time.RFC3339Nano)
			}
			strs = append(strs, fmt.Sprint(v))
		}
		out[id] = strings.Join(strs, "|")
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
	out := map[int64]string{}
	for _, pid := range h.projIDs {
		for _, mr := range h.sim.MergeRequests(pid) {
			updated := mustTime(h.t, mr["updated_at"])
			if updated.Before(since) {
				continue
			}
			out[int64(mr["id"].(float64))] = fmt.Sprintf("%v|%v|%s", mr["title"], mr["state"], updated.UTC().Format(time.RFC3339Nano))
		}
	}
	return out
}

// simUsers returns the ids of every user the configured projects' merge
// requests refer to.
func (h *harness) simUsers() map[int64]bool {
	out := map[int64]bool{}
	for _, pid := range h.projIDs {
		for _, mr := range h.sim.MergeRequests(pid) {
			for id := range mrUsers(mr) {
				out[id] = true
			}
		}
	}
	return out
}

// mrUsers returns the ids of the users a simulated merge request refers to.
func mrUsers(mr map[string]any) map[int64]bool {
	out := map[int64]bool{}
	add := func(v any) {
		if m, ok := v.(map[string]any); ok && m["id"] != nil {
			out[int64(m["id"].(float64))] = true
		}
	}
	for _, k := range []string{"author", "assignee", "merged_by", "merge_user", "closed_by"} {
		add(mr[k])
	}
	for _, k := range []string{"assignees", "reviewers"} {
		if list, ok := mr[k].([]any); ok {
			for _, u := range list {
				add(u)
			}
		}
	}
	return out
}

// MustEqualGitLab fails unless the DuckDB file holds exactly the
// simulator's projects, merge requests and users.
func (h *harness) MustEqualGitLab() {
	h.t.Helper()
	if got, want := fmt.Sprint(keys(h.rows("projects"))), fmt.Sprint(sortedIDs(h.projIDs)); got != want {
		h.t.Errorf("projects: got ids %s, want %s", got, want)
	}
	got := h.rows("merge_requests", "title", "state", "updated_at")
	want := h.simMergeRequests(time.Time{})
	if len(got) != len(want) {
		h.t.Errorf("merge_requests: got %d rows, want %d", len(got), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			h.t.Errorf("merge request %d: got %q, want %q", id, got[id], w)
		}
	}
	if got, want := fmt.Sprint(keys(h.rows("users"))), fmt.Sprint(keys(h.simUsers())); got != want {
		h.t.Errorf("users: got ids %s, want %s", got, want)
	}
}

func mustTime(tb testing.TB, v any) time.Time {
	tb.Helper()
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		tb.Fatalf("parse time %v: %v", v, err)
	}
	return t
}

func keys[V any](m map[int64]V) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func sortedIDs(ids []int64) []int64 {
	m := map[int64]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return keys(m)
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

// tableSummary returns the summary of one table, failing if it is absent.
func tableSummary(tb testing.TB, s *gitlabsync.Summary, name string) *gitlabsync.TableSummary {
	tb.Helper()
	for _, ts := range s.Tables {
		if ts.Table == name {
			return ts
		}
	}
	tb.Fatalf("summary has no table %s", name)
	return nil
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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
