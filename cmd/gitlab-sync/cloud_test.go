package main

// The command with a BigQuery dataset configured: BigQuery and Firestore,
// as the function, here their emulators; and the token read from Secret
// Manager.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
	"github.com/gitlab-bigquery-sync/gitlabsync/internal/testenv"
)

const secretName = "projects/test-project/secrets/gitlab-token/versions/latest"

func TestCloudSync_BigQueryAndFirestore(t *testing.T) {
	h := MustHarness(t)
	testenv.Firestore(t) // makes sure the emulator runs and FIRESTORE_EMULATOR_HOST is set
	bq := testenv.MustBigQuery(t)
	sm := testenv.MustSecretManager(t, map[string]string{secretName: testToken + "\n"})
	h.cloud = gitlabsync.CloudOptions{
		BigQuery:         bq.ClientOptions(),
		SecretManager:    sm.ClientOptions(),
		FirestoreProject: testenv.ProjectID,
	}
	h.set("GITLAB_TOKEN", "")
	h.set("GITLAB_TOKEN_SECRET", secretName)
	h.set("BIGQUERY_PROJECT", testenv.BigQueryProject)
	h.set("BIGQUERY_DATASET", "gitlab")
	h.set("STATE_COLLECTION", testenv.UniqueName(t, "sync"))

	sum := h.MustSync()
	if sum.Status != gitlabsync.StatusOK {
		t.Fatalf("status %q, want ok", sum.Status)
	}
	for _, c := range []struct {
		table string
		want  int
	}{
		{"projects", len(h.projIDs)},
		{"merge_requests", len(h.simMergeRequests(time.Time{}))},
		{"users", len(h.simUsers())},
	} {
		if got := mustCountDistinct(t, bq, c.table); got != c.want {
			t.Errorf("BigQuery %s: %d distinct ids, want %d", c.table, got, c.want)
		}
	}
	if sm.Calls() == 0 {
		t.Errorf("the token was not read from Secret Manager")
	}
	// Nothing local: the cursors went to Firestore.
	for _, path := range []string{h.duckDBPath(), h.statePath()} {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists (%v); want no local file with a dataset", path, err)
		}
	}
	// The next run starts from Firestore's cursors.
	if sum := h.MustSync(); sum.RowsWritten != 0 {
		t.Errorf("second run wrote %d rows, want 0", sum.RowsWritten)
	}
}

func TestLocalSync_TokenFromSecretManager(t *testing.T) {
	h := MustHarness(t)
	sm := testenv.MustSecretManager(t, map[string]string{secretName: testToken + "\n"})
	h.cloud = gitlabsync.CloudOptions{SecretManager: sm.ClientOptions()}
	h.set("GITLAB_TOKEN", "")
	h.set("GITLAB_TOKEN_SECRET", secretName)
	h.MustSync()
	if sm.Calls() != 1 {
		t.Errorf("Secret Manager calls = %d, want 1", sm.Calls())
	}
	h.MustEqualGitLab()
}

// mustCountDistinct returns the number of distinct ids in a table of the
// emulator's gitlab dataset, failing if any id is there twice.
func mustCountDistinct(tb testing.TB, bq *testenv.BigQuery, table string) int {
	tb.Helper()
	q := bq.Client.Query(fmt.Sprintf("SELECT COUNT(*), COUNT(DISTINCT id) FROM `%s.gitlab.%s`", bq.Project, table))
	it, err := q.Read(context.Background())
	if err != nil {
		tb.Fatalf("count %s: %v", table, err)
	}
	var row []bigquery.Value
	if err := it.Next(&row); err != nil && err != iterator.Done {
		tb.Fatalf("count %s: %v", table, err)
	}
	if row[0] != row[1] {
		tb.Fatalf("table %s: %v rows for %v ids", table, row[0], row[1])
	}
	return int(row[1].(int64))
}
