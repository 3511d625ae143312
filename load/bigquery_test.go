package load_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/iterator"

	"github.com/gitlab-bigquery-sync/gitlabsync/internal/testenv"
	"github.com/gitlab-bigquery-sync/gitlabsync/load"
	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

func ts(s string) *time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func ptr[T any](v T) *T { return &v }

func mr(id int64, updated, title string) table.MergeRequest {
	return table.MergeRequest{
		MergeRequestID: id, ProjectID: 7, Title: title, State: "opened",
		AuthorID: ptr(int64(100 + id)), CreatedAt: ts("2024-01-01T10:00:00.123+01:00"),
		UpdatedAt: ts(updated), Labels: []string{"bug"}, ReviewerIDs: []int64{5, 6},
	}
}

// MustRows reads id → title (or name) and updated_at of a table.
func MustRows(tb testing.TB, bq *testenv.BigQuery, dataset, tbl, col string) map[int64]string {
	tb.Helper()
	ctx := context.Background()
	q := bq.Client.Query(fmt.Sprintf("SELECT id, %s FROM `%s.%s.%s`", col, bq.Project, dataset, tbl))
	it, err := q.Read(ctx)
	if err != nil {
		tb.Fatalf("read %s: %v", tbl, err)
	}
	out := map[int64]string{}
	for {
		var row []bigquery.Value
		err := it.Next(&row)
		if err == iterator.Done {
			break
		}
		if err != nil {
			tb.Fatalf("read %s: %v", tbl, err)
		}
		id := row[0].(int64)
		if _, dup := out[id]; dup {
			tb.Fatalf("table %s has id %d twice", tbl, id)
		}
		out[id] = fmt.Sprint(row[1])
	}
	return out
}

func TestBigQuery_Upsert(t *testing.T) {
	bq := testenv.MustBigQuery(t)
	ctx := context.Background()
	w := load.NewBigQuery(bq.Client, "gitlab", "US")
	if err := w.Prepare(ctx, []table.Def{table.ProjectsDef, table.MergeRequestsDef, table.UsersDef}); err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	// Prepare twice is harmless.
	if err := w.Prepare(ctx, []table.Def{table.ProjectsDef, table.MergeRequestsDef, table.UsersDef}); err != nil {
		t.Fatalf("Prepare again: %v", err)
	}

	steps := []struct {
		name  string
		batch string
		rows  []table.Row
		want  map[int64]string
	}{
		{"Insert", "b1", []table.Row{mr(1, "2024-02-01T00:00:00.000Z", "one"), mr(2, "2024-02-01T00:00:01.000Z", "two")},
			map[int64]string{1: "one", 2: "two"}},
		{"SameBatchAgain", "b1", []table.Row{mr(1, "2024-02-01T00:00:00.000Z", "one"), mr(2, "2024-02-01T00:00:01.000Z", "two")},
			map[int64]string{1: "one", 2: "two"}},
		{"LaterVersionWins", "b2", []table.Row{mr(1, "2024-02-02T00:00:00.000Z", "one v2"), mr(3, "2024-02-02T00:00:00.000Z", "three")},
			map[int64]string{1: "one v2", 2: "two", 3: "three"}},
		{"EarlierVersionLoses", "b3", []table.Row{mr(1, "2024-02-01T12:00:00.000Z", "one stale")},
			map[int64]string{1: "one v2", 2: "two", 3: "three"}},
		{"DuplicatesInBatch", "b4", []table.Row{mr(2, "2024-03-01T00:00:00.000Z", "two v3"), mr(2, "2024-02-15T00:00:00.000Z", "two v2")},
			map[int64]string{1: "one v2", 2: "two v3", 3: "three"}},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if err := w.Upsert(ctx, table.MergeRequestsDef, s.batch, s.rows); err != nil {
				t.Fatalf("Upsert: %v", err)
			}
			got := MustRows(t, bq, "gitlab", "merge_requests", "title")
			if fmt.Sprint(got) != fmt.Sprint(s.want) {
				t.Errorf("got %v, want %v", got, s.want)
			}
		})
	}

	t.Run("ValuesRoundTrip", func(t *testing.T) {
		q := bq.Client.Query("SELECT created_at, updated_at, labels, reviewer_ids, author_id, merged_at, _synced_at FROM `test-project.gitlab.merge_requests` WHERE id = 3")
		it, err := q.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var row []bigquery.Value
		if err := it.Next(&row); err != nil {
			t.Fatal(err)
		}
		if got, want := row[0].(time.Time).UTC(), ts("2024-01-01T09:00:00.123Z").UTC(); !got.Equal(want) {
			t.Errorf("created_at: got %v, want %v", got, want)
		}
		if got := fmt.Sprint(row[2]); got != "[bug]" {
			t.Errorf("labels: got %v, want [bug]", got)
		}
		if got := fmt.Sprint(row[3]); got != "[5 6]" {
			t.Errorf("reviewer_ids: got %v, want [5 6]", got)
		}
		if got := row[4]; got != int64(103) {
			t.Errorf("author_id: got %v, want 103", got)
		}
		if row[5] != nil {
			t.Errorf("merged_at: got %v, want NULL", row[5])
		}
		if row[6] == nil {
			t.Errorf("_synced_at: got NULL, want a time")
		}
	})

	t.Run("UsersLastWriteWins", func(t *testing.T) {
		u := func(id int64, name string) table.Row {
			return table.User{UserID: id, Username: fmt.Sprint("u", id), Name: name, State: "active", LastActivityOn: "2024-05-06"}
		}
		if err := w.Upsert(ctx, table.UsersDef, "u1", []table.Row{u(1, "Ann"), u(2, "Bob")}); err != nil {
			t.Fatal(err)
		}
		if err := w.Upsert(ctx, table.UsersDef, "u2", []table.Row{u(1, "Ann B.")}); err != nil {
			t.Fatal(err)
		}
		got := MustRows(t, bq, "gitlab", "users", "name")
		want := map[int64]string{1: "Ann B.", 2: "Bob"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})
}

func TestBigQuery_PrepareAddsColumns(t *testing.T) {
	bq := testenv.MustBigQuery(t)
	ctx := context.Background()
	w := load.NewBigQuery(bq.Client, "gitlab", "US")

	small := table.UsersDef
	small.Columns = small.Columns[:3]
	if err := w.Prepare(ctx, []table.Def{small}); err != nil {
		t.Fatalf("Prepare small: %v", err)
	}
	if err := w.Prepare(ctx, []table.Def{table.UsersDef}); err != nil {
		t.Fatalf("Prepare full: %v", err)
	}
	md, err := bq.Client.Dataset("gitlab").Table("users").Metadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range md.Schema {
		got = append(got, f.Name)
	}
	var want []string
	for _, f := range load.Schema(table.UsersDef) {
		want = append(want, f.Name)
	}
	sort.Strings(got)
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("got columns %v, want %v", got, want)
	}
}

func TestMergeSQL(t *testing.T) {
	got := load.MergeSQL("p", "d", "_staging_merge_requests_default", table.MergeRequestsDef)
	for _, want := range []string{
		"MERGE `p.d.merge_requests` T",
		"USING `p.d._staging_merge_requests_default` S",
		"ON T.id = S.id",
		"WHEN MATCHED AND (T.updated_at IS NULL OR S.updated_at >= T.updated_at) THEN UPDATE SET project_id = S.project_id",
		"WHEN NOT MATCHED THEN INSERT (id, project_id",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("MergeSQL lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(load.MergeSQL("p", "d", "s", table.UsersDef), "WHEN MATCHED AND") {
		t.Errorf("users MERGE has a version condition; want last write wins")
	}
}
