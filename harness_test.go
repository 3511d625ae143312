package gitlabsync

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/contract/fixture"
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
	env     *fixture.Env
	svc     *Service
	logs    *fixture.SyncBuffer
	bodies  []string
	mu      sync.Mutex
	refs    []string // configured project refs
	projIDs []int64  // their numeric ids
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
		logs: &fixture.SyncBuffer{},
	}
	tb.Cleanup(h.sim.Close)

	h.refs, h.projIDs = fixture.MustProjects(tb, h.sim)

	h.env = fixture.NewEnv(map[string]string{
		"GITLAB_BASE_URL":     h.sim.URL(),
		"GITLAB_TOKEN_SECRET": secretName,
		"GITLAB_PROJECT_IDS":  strings.Join(h.refs, ","),
		"BIGQUERY_PROJECT":    testenv.BigQueryProject,
		"BIGQUERY_DATASET":    "gitlab",
		"STATE_COLLECTION":    testenv.UniqueName(tb, "sync"),
		"SYNC_INTERVAL_HOURS": "0",
	})
	h.svc = &Service{
		Env: h.env.Lookup,
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

// set changes one configuration variable; "" removes it.
func (h *harness) set(key, value string) { h.env.Set(key, value) }

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
		vals := make([]any, 0, len(row)-1)
		for _, v := range row[1:] {
			vals = append(vals, v)
		}
		out[id] = fixture.Row(vals)
	}
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

// ContractHarness lends the harness to the external test package, which
// runs internal/contract (that package imports this one, so these internal
// tests cannot import it).
type ContractHarness struct{ h *harness }

// MustContractHarness sets up a harness as MustHarness does.
func MustContractHarness(tb testing.TB) ContractHarness {
	tb.Helper()
	return ContractHarness{h: MustHarness(tb)}
}

// Sim is the GitLab simulator.
func (c ContractHarness) Sim() *gitlabtest.Server { return c.h.sim }

// Configure sets one configuration variable; "" removes it.
func (c ContractHarness) Configure(key, value string) { c.h.set(key, value) }

// Call runs the function once with body and returns the status, the
// decoded summary and the raw response.
func (c ContractHarness) Call(body string) (int, *Summary, string) {
	c.h.t.Helper()
	return c.h.call(body)
}

// Logs is every log line so far.
func (c ContractHarness) Logs() string { return c.h.logs.String() }

// Rows reads a BigQuery table as harness.rows does.
func (c ContractHarness) Rows(table string, cols ...string) map[int64]string {
	c.h.t.Helper()
	return c.h.rows(table, cols...)
}

// Engine returns the engine the function would run, with GitLab pages of
// perPage (0 for the default) and, when not 0, a budget of maxRunTime.
func (c ContractHarness) Engine(perPage int, maxRunTime time.Duration) *Engine {
	c.h.t.Helper()
	gl := c.h.svc.GitLab
	gl.PerPage = perPage
	return c.h.MustEngine(gl, func(cfg *Config) {
		if maxRunTime != 0 {
			cfg.MaxRunTime = maxRunTime
		}
	})
}
