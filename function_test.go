package gitlabsync

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
)

func TestSyncGitLab_LogLines(t *testing.T) {
	h := MustHarness(t)
	h.MustSync("")

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

// TestSyncGitLab_RequestRejected covers the bodies the function refuses
// with 400; the requests both sides accept are in internal/contract.
func TestSyncGitLab_RequestRejected(t *testing.T) {
	h := MustHarness(t)
	cases := []struct{ name, body string }{
		{"CannotChangeSource", `{"gitlab_base_url":"https://evil.example"}`},
		{"CannotChangeDataset", `{"bigquery_dataset":"other"}`},
		{"UnknownTable", `{"tables":["issues"]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if code, _, raw := h.call(c.body); code != http.StatusBadRequest {
				t.Fatalf("status = %d, want 400:\n%s", code, raw)
			}
		})
	}
	t.Run("GetNeverSyncs", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.svc.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/?force=true", nil))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "use POST") {
			t.Errorf("GET: status %d body %s, want 400 saying use POST", rec.Code, rec.Body)
		}
	})
	if got := h.sim.Requests("total"); got != 0 {
		t.Errorf("refused requests made %d GitLab requests, want 0", got)
	}
}
