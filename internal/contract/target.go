// Package contract holds the engine cases every destination of the sync must
// pass: the Cloud Function's (BigQuery and Firestore, driven through its HTTP
// handler) and the local command's (a DuckDB file and a JSON state file,
// driven in process). Each side's tests implement Target and call Run, so a
// case is written once and both destinations are held to it. What only one
// side has (HTTP status codes, exit codes, the wording of its output) stays
// in that side's tests.
//
// Only tests import this package.
package contract

import (
	"fmt"
	"testing"
	"time"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/contract/fixture"
)

// Outcome is how a run ended, in terms both sides share.
type Outcome int

const (
	// Succeeded is the function's 200 and the command's exit 0.
	Succeeded Outcome = iota + 1

	// Failed is the function's 500 and the command's exit 1.
	Failed
)

func (o Outcome) String() string {
	switch o {
	case Succeeded:
		return "succeeded"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Result is what one run gave.
type Result struct {
	Outcome Outcome

	// Summary is the run's summary; nil when the run printed none.
	Summary *gitlabsync.Summary

	// Output is everything the side showed for the run: the response
	// body and the logs, or stdout and stderr.
	Output string
}

// Target is one destination, set up with every simulated project that has
// merge requests (see fixture.MustProjects) and a fresh, empty destination and state.
type Target interface {
	// Sim is the GitLab simulator the target reads from.
	Sim() *gitlabtest.Server

	// Configure sets one configuration key (as an environment variable
	// name, e.g. MAX_RECORDS_PER_SYNC); "" removes it.
	Configure(key, value string)

	// Sync runs one sync narrowed by req. It fails the test when the run
	// ends in a way that is neither Succeeded nor Failed.
	Sync(tb testing.TB, req gitlabsync.Request) Result

	// Rows reads a table as id → the given columns joined by "|", with
	// times in UTC RFC 3339, and fails on a duplicate id.
	Rows(tb testing.TB, table string, cols ...string) map[int64]string

	// Engine returns the engine a run would use, with the target's
	// configuration changed by opts, and a function that releases what it
	// opened.
	Engine(tb testing.TB, opts EngineOptions) (*gitlabsync.Engine, func())
}

// EngineOptions changes the engine Target.Engine builds; the zero value
// changes nothing.
type EngineOptions struct {
	// PerPage is the GitLab page size; 0 keeps the client's default.
	PerPage int

	// MaxRunTime replaces the configuration's run budget when not 0.
	MaxRunTime time.Duration
}

// MustEqualGitLab fails unless target holds exactly the simulator's
// projects projIDs, their merge requests (field by field) and their users.
func MustEqualGitLab(tb testing.TB, target Target, projIDs []int64) {
	tb.Helper()
	sim := target.Sim()
	projects := fixture.Keys(target.Rows(tb, "projects"))
	if got, want := fmt.Sprint(projects), fmt.Sprint(fixture.SortedIDs(projIDs)); got != want {
		tb.Errorf("projects: got ids %s, want %s", got, want)
	}
	got := target.Rows(tb, "merge_requests", "title", "state", "updated_at")
	want := fixture.MergeRequests(tb, sim, projIDs, time.Time{})
	if len(got) != len(want) {
		tb.Errorf("merge_requests: got %d rows, want %d", len(got), len(want))
	}
	for id, v := range want {
		if got[id] != v {
			tb.Errorf("merge request %d: got %q, want %q", id, got[id], v)
		}
	}
	users := fixture.Keys(target.Rows(tb, "users"))
	if got, want := fmt.Sprint(users), fmt.Sprint(fixture.Keys(fixture.Users(sim, projIDs))); got != want {
		tb.Errorf("users: got ids %s, want %s", got, want)
	}
}

// MustTable returns the summary of one table, failing if it is absent.
func MustTable(tb testing.TB, s *gitlabsync.Summary, name string) *gitlabsync.TableSummary {
	tb.Helper()
	for _, ts := range s.Tables {
		if ts.Table == name {
			return ts
		}
	}
	tb.Fatalf("summary has no table %s", name)
	return nil
}

// Setting is one configuration key and its value.
type Setting struct{ Key, Value string }

// BadSettings is a configuration wrong in every key it sets; each side
// checks that a run refuses it, names every key and asks GitLab nothing.
var BadSettings = []Setting{
	{"GITLAB_BASE_URL", "ftp://gitlab.example"},
	{"GITLAB_PROJECT_IDS", "12,not a project"},
	{"START_DATE", "yesterday"},
	{"SYNC_USERS_TABLE", "maybe"},
	{"MAX_RECORDS_PER_SYNC", "-5"},
	{"GITLAB_TOKEN_SECRET", "my-secret"},
}
