package gitlabsync_test

// The engine cases both destinations share (internal/contract), run
// through the function's HTTP handler. This file is in the external test
// package because internal/contract imports gitlabsync; it reaches the
// harness of harness_test.go through ContractHarness.

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/contract"
)

func TestSyncGitLab_Contract(t *testing.T) {
	contract.Run(t, func(t *testing.T) contract.Target {
		return functionTarget{h: gitlabsync.MustContractHarness(t)}
	})
}

// functionTarget is the function as internal/contract drives it: each sync
// is one call of the handler.
type functionTarget struct{ h gitlabsync.ContractHarness }

func (ft functionTarget) Sim() *gitlabtest.Server { return ft.h.Sim() }

func (ft functionTarget) Configure(key, value string) { ft.h.Configure(key, value) }

// Sync calls the handler with req as its body (none for the zero request):
// 200 is Succeeded, 500 Failed, any other status fails the test. The output
// is the response body and every log line so far.
func (ft functionTarget) Sync(tb testing.TB, req gitlabsync.Request) contract.Result {
	tb.Helper()
	body := ""
	if req.Tables != nil || req.FullRefresh != nil || req.Force {
		data, err := json.Marshal(req)
		if err != nil {
			tb.Fatal(err)
		}
		body = string(data)
	}
	code, sum, raw := ft.h.Call(body)
	r := contract.Result{Summary: sum, Output: raw + "\n" + ft.h.Logs()}
	switch code {
	case http.StatusOK:
		r.Outcome = contract.Succeeded
	case http.StatusInternalServerError:
		r.Outcome = contract.Failed
	default:
		tb.Fatalf("status = %d, want 200 or 500:\n%s", code, raw)
	}
	return r
}

func (ft functionTarget) Rows(tb testing.TB, table string, cols ...string) map[int64]string {
	tb.Helper()
	return ft.h.Rows(table, cols...)
}

func (ft functionTarget) Engine(tb testing.TB, opts contract.EngineOptions) (*gitlabsync.Engine, func()) {
	tb.Helper()
	return ft.h.Engine(opts.PerPage, opts.MaxRunTime), func() {}
}

func TestSyncGitLab_BadConfiguration(t *testing.T) {
	h := gitlabsync.MustContractHarness(t)
	for _, s := range contract.BadSettings {
		h.Configure(s.Key, s.Value)
	}
	code, _, raw := h.Call("")
	if code != http.StatusInternalServerError {
		t.Errorf("status = %d, want 500", code)
	}
	for _, s := range contract.BadSettings {
		if key := strings.ToLower(s.Key); !strings.Contains(raw, key) {
			t.Errorf("response does not name %s:\n%s", key, raw)
		}
	}
	if got := h.Sim().Requests("total"); got != 0 {
		t.Errorf("bad configuration made %d GitLab requests, want 0", got)
	}
}
