package gitlabsync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/testenv"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.Stop()
	os.Exit(code)
}

// testToken is the GitLab token of the tests; it must never be seen in a
// log line, an error or a response.
const testToken = "glpat-TESTTOKEN-do-not-leak-4f9a"

const secretName = "projects/test-project/secrets/gitlab-token/versions/latest"

// harness is one connection's world: the GitLab simulator serving the
// recorded samples, the BigQuery emulator, the Firestore emulator, a Secret
// Manager server holding the token, and the Service under test.
type harness struct {
	t       testing.TB
	sim     *gitlabtest.Server
	bq      *testenv.BigQuery
	sm      *testenv.SecretManager
	env     map[string]string
	svc     *Service
	logs    *syncBuffer
	bodies  []string
	mu      sync.Mutex
	refs    []string // configured project refs
	projIDs []int64  // their numeric ids
}

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

// MustHarness sets everything up; projects with recorded merge requests
// are configured, the first by numeric id and the others by path.
func MustHarness(tb testing.TB) *harness {
	tb.Helper()
	testenv.Firestore(tb) // makes sure the emulator runs and FIRESTORE_EMULATOR_HOST is set
	h := &harness{
		t:    tb,
		sim:  gitlabtest.NewSampleServer(gitlabtest.Options{Token: testToken}),
		bq:   testenv.MustBigQuery(tb),
		sm:   testenv.MustSecretManager(tb, map[string]string{secretName: testToken + "\n"}),
		logs: &syncBuffer{},
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
		"GITLAB_TOKEN_SECRET": secretName,
		"GITLAB_PROJECT_IDS":  strings.Join(h.refs, ","),
		"BIGQUERY_PROJECT":    testenv.BigQueryProject,
		"BIGQUERY_DATASET":    "gitlab",
		"STATE_COLLECTION":    testenv.UniqueName(tb, "sync"),
		"SYNC_INTERVAL_HOURS": "0",
	}
	h.svc = &Service{
		Env: func(k string) (string, bool) {
			h.mu.Lock()
			defer h.mu.Unlock()
			v, ok := h.env[k]
			return v, ok
		},
		Cloud: CloudOptions{
			BigQuery:         h.bq.ClientOptions(),
			SecretManager:    h.sm.ClientOptions(),
			FirestoreProject: testenv.ProjectID,
		},
		GitLab: gitlab.Options{RetryWaitMin: time.Millisecond, RetryWaitMax: 20 * time.Millisecond, RetryMax: 4},
		Logger: NewJSONLogger(h.logs, nil),
	}
	tb.Cleanup(h.svc.Close)
	tb.Cleanup(h.checkNoLeak)
	return h
}

func (h *harness) set(key, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if value == "" {
		delete(h.env, key)
		return
	}
	h.env[key] = value
}

// checkNoLeak fails the test if the token appears in any log line or any
// response body.
func (h *harness) checkNoLeak() {
	if strings.Contains(h.logs.String(), testToken) {
		h.t.Errorf("the token appears in the logs")
	}
	for _, b := range h.bodies {
		if strings.Contains(b, testToken) {
			h.t.Errorf("the token appears in a response: %s", b)
		}
	}
}

// MustEngine builds the engine the function would run, with the harness's
// configuration changed by edit (when not nil) and these GitLab options.
func (h *harness) MustEngine(gl gitlab.Options, edit func(*Config)) *Engine {
	h.t.Helper()
	cfg, err := LoadConfig(h.svc.Env)
	if err != nil {
		h.t.Fatal(err)
	}
	if edit != nil {
		edit(&cfg)
	}
	cloud, err := h.svc.clients(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	engine, err := cloud.Engine(cfg, testToken, gl)
	if err != nil {
		h.t.Fatal(err)
	}
	return engine
}

// call runs the function once, with an optional JSON body, and returns the
// status and the decoded summary.
func (h *harness) call(body string) (int, *Summary, string) {
	h.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.svc.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Body)
	h.mu.Lock()
	h.bodies = append(h.bodies, string(raw))
	h.mu.Unlock()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		h.t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var sum Summary
	if err := json.Unmarshal(raw, &sum); err != nil {
		h.t.Fatalf("response is not JSON: %v\n%s", err, raw)
	}
	return rec.Code, &sum, string(raw)
}

// MustSync calls the function and fails unless it answers 200.
func (h *harness) MustSync(body string) *Summary {
	h.t.Helper()
	code, sum, raw := h.call(body)
	if code != http.StatusOK {
		h.t.Fatalf("sync answered %d, want 200:\n%s", code, raw)
	}
	return sum
}

// rows reads a table as id → the given column values joined by "|", and
// fails on a duplicate id.
func (h *harness) rows(tbl string, cols ...string) map[int64]string {
	h.t.Helper()
	sel := "id"
	if len(cols) > 0 {
		sel += ", " + strings.Join(cols, ", ")
	}
	q := h.bq.Client.Query(fmt.Sprintf("SELECT %s FROM `%s.gitlab.%s`", sel, h.bq.Project, tbl))
	it, err := q.Read(context.Background())
	if err != nil {
		h.t.Fatalf("read %s: %v", tbl, err)
	}
	out := map[int64]string{}
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if err == iterator.Done {
			break
		}
		if err != nil {
			h.t.Fatalf("read %s: %v", tbl, err)
		}
		id := row[0].(int64)
		if _, dup := out[id]; dup {
			h.t.Fatalf("table %s holds id %d twice", tbl, id)
		}
		var vals []string
		for _, v := range row[1:] {
			if tm, ok := v.(time.Time); ok {
				v = tm.UTC().Format(time.RFC3339Nano)
			}
			vals = append(vals, fmt.Sprint(v))
		}
		out[id] = strings.Join(vals, "|")
	}
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
	add := func(v any) {
		if m, ok := v.(map[string]any); ok && m["id"] != nil {
			out[int64(m["id"].(float64))] = true
		}
	}
	for _, pid := range h.projIDs {
		for _, mr := range h.sim.MergeRequests(pid) {
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
		}
	}
	return out
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

// table returns the summary of one table, failing if it is absent.
func (s *Summary) table(tb testing.TB, name string) *TableSummary {
	tb.Helper()
	for _, ts := range s.Tables {
		if ts.Table == name {
			return ts
		}
	}
	tb.Fatalf("summary has no table %s", name)
	return nil
}
