package duckdb_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/load/duckdb"
	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

// destination has the method set of gitlabsync.Destination. The tests check
// DB against this copy rather than import the root package, which would tie
// them to whatever the root package does at init.
type destination interface {
	Prepare(ctx context.Context, defs []table.Def) error
	Upsert(ctx context.Context, def table.Def, batchID string, rows []table.Row) error
}

var _ destination = (*duckdb.DB)(nil)

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		wantErr string // "" for success
	}{
		{name: "OK", path: filepath.Join(dir, "sync.duckdb")},
		{
			name:    "ErrMissingDirectory",
			path:    filepath.Join(dir, "nope", "sync.duckdb"),
			wantErr: "directory " + filepath.Join(dir, "nope") + " does not exist",
		},
		{name: "ErrEmptyPath", path: "", wantErr: "empty path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := duckdb.Open(tt.path)
			if err == nil {
				defer db.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Open(%q): got error %v, want nil", tt.path, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Open(%q): got error %v, want one containing %q", tt.path, err, tt.wantErr)
			}
		})
	}
}

func TestDB_Prepare(t *testing.T) {
	db := MustOpenDB(t)
	defs := []table.Def{table.ProjectsDef, table.MergeRequestsDef, table.UsersDef}

	// Twice: the second call must change nothing and keep the rows.
	MustPrepare(t, db, defs...)
	MustUpsert(t, db, table.UsersDef, "b1", table.User{UserID: 1, Username: "alice"})
	MustPrepare(t, db, defs...)

	// The DuckDB spelling of each column type, written out independently of
	// the package under test.
	duckType := map[table.Type]string{
		table.Int64:     "BIGINT",
		table.String:    "VARCHAR",
		table.Bool:      "BOOLEAN",
		table.Timestamp: "TIMESTAMP",
		table.Date:      "DATE",
	}
	for _, def := range defs {
		t.Run(def.Name, func(t *testing.T) {
			var want []string
			for _, c := range def.Columns {
				typ := duckType[c.Type]
				if c.Repeated {
					typ += "[]"
				}
				want = append(want, c.Name+" "+typ)
			}
			want = append(want, table.SyncedAt+" TIMESTAMP")

			if got := MustColumns(t, db, def.Name); !reflect.DeepEqual(got, want) {
				t.Errorf("columns:\ngot  %v\nwant %v", got, want)
			}
			var keys string
			MustQueryRow(t, db, `
				SELECT string_agg(array_to_string(constraint_column_names, ','), ';')
				FROM duckdb_constraints()
				WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'`,
				[]any{def.Name}, &keys)
			if keys != "id" {
				t.Errorf("primary key: got %q, want %q", keys, "id")
			}
		})
	}

	// A few columns spelled out, in case the mapping above drifts with the Defs.
	spot := []struct {
		table, column, want string
	}{
		{table.Projects, "topics", "VARCHAR[]"},
		{table.Projects, "archived", "BOOLEAN"},
		{table.MergeRequests, "labels", "VARCHAR[]"},
		{table.MergeRequests, "reviewer_ids", "BIGINT[]"},
		{table.MergeRequests, "updated_at", "TIMESTAMP"},
		{table.Users, "last_activity_on", "DATE"},
		{table.Users, "id", "BIGINT"},
	}
	for _, s := range spot {
		t.Run(s.table+"."+s.column, func(t *testing.T) {
			if got := MustColumnType(t, db, s.table, s.column); got != s.want {
				t.Errorf("type: got %q, want %q", got, s.want)
			}
		})
	}

	if got := MustCount(t, db, table.Users); got != 1 {
		t.Errorf("users after second Prepare: got %d rows, want 1", got)
	}
}

func TestDB_Prepare_AddsColumns(t *testing.T) {
	db := MustOpenDB(t)

	// An older Def: users without its last two columns.
	old := table.UsersDef
	old.Columns = old.Columns[:len(old.Columns)-2]
	MustPrepare(t, db, old)
	MustUpsert(t, db, old, "b1",
		rawRow{id: 1, values: []any{int64(1), "alice", nil, nil, nil, nil, nil, nil}})

	// A newer Def: users with every column and one more.
	newer := table.UsersDef
	newer.Columns = append(append([]table.Column(nil), table.UsersDef.Columns...),
		table.Column{Name: "locale", Type: table.String},
		table.Column{Name: "group_ids", Type: table.Int64, Repeated: true},
	)
	MustPrepare(t, db, newer)

	got := MustColumns(t, db, table.Users)
	want := []string{
		"id BIGINT", "username VARCHAR", "name VARCHAR", "email VARCHAR", "state VARCHAR",
		"created_at TIMESTAMP", "last_activity_on DATE", "web_url VARCHAR", table.SyncedAt + " TIMESTAMP",
		"avatar_url VARCHAR", "bot BOOLEAN", "locale VARCHAR", "group_ids BIGINT[]",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("columns:\ngot  %v\nwant %v", got, want)
	}

	// The old row is still there, NULL in the new columns, and the new
	// columns take values.
	var username string
	var locale sql.NullString
	MustQueryRow(t, db, `SELECT username, locale FROM users WHERE id = 1`, nil, &username, &locale)
	if username != "alice" || locale.Valid {
		t.Errorf("old row: got username %q locale %v, want \"alice\" NULL", username, locale)
	}
	MustUpsert(t, db, newer, "b2", rawRow{id: 2, values: []any{
		int64(2), "bob", nil, nil, nil, nil, nil, nil, nil, true, "fr", []int64{7},
	}})
	MustQueryRow(t, db, `SELECT locale FROM users WHERE id = 2`, nil, &locale)
	if locale.String != "fr" {
		t.Errorf("new row: got locale %v, want \"fr\"", locale)
	}
}

func TestDB_Prepare_Errors(t *testing.T) {
	tests := []struct {
		name    string
		def     table.Def
		wantErr string
	}{
		{
			name: "ErrColumnTypeChanged",
			def: table.Def{Name: table.Users, Columns: []table.Column{
				{Name: "id", Type: table.Int64},
				{Name: "username", Type: table.Int64},
			}},
			wantErr: "column username is VARCHAR, want BIGINT",
		},
		{
			name:    "ErrNoKey",
			def:     table.Def{Name: "t", Columns: []table.Column{{Name: "name", Type: table.String}}},
			wantErr: "key column id",
		},
		{
			name: "ErrVersionNotTimestamp",
			def: table.Def{Name: "t", VersionColumn: "name", Columns: []table.Column{
				{Name: "id", Type: table.Int64},
				{Name: "name", Type: table.String},
			}},
			wantErr: "version column name",
		},
		{
			name: "ErrSyncedAtInDef",
			def: table.Def{Name: "t", Columns: []table.Column{
				{Name: "id", Type: table.Int64},
				{Name: table.SyncedAt, Type: table.Timestamp},
			}},
			wantErr: "set by the writer",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpenDB(t)
			MustPrepare(t, db, table.UsersDef)
			err := db.Prepare(t.Context(), []table.Def{tt.def})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Prepare: got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDB_Upsert(t *testing.T) {
	const (
		mrTitles  = `SELECT id, title FROM merge_requests ORDER BY id`
		usernames = `SELECT id, username FROM users ORDER BY id`
	)
	tests := []struct {
		name    string
		def     table.Def
		batches [][]table.Row // one Upsert each, in order
		query   string        // selects id and one value
		want    []string      // "id value" per row
	}{
		{
			name:    "Insert",
			def:     table.MergeRequestsDef,
			batches: [][]table.Row{{mr(1, "2024-05-01T10:00:00Z", "a"), mr(2, "2024-05-01T10:00:00Z", "b")}},
			query:   mrTitles,
			want:    []string{"1 a", "2 b"},
		},
		{
			name: "SameBatchTwice",
			def:  table.MergeRequestsDef,
			batches: [][]table.Row{
				{mr(1, "2024-05-01T10:00:00Z", "a"), mr(2, "2024-05-01T10:00:00Z", "b")},
				{mr(1, "2024-05-01T10:00:00Z", "a"), mr(2, "2024-05-01T10:00:00Z", "b")},
			},
			query: mrTitles,
			want:  []string{"1 a", "2 b"},
		},
		{
			name: "LaterVersionReplaces",
			def:  table.MergeRequestsDef,
			batches: [][]table.Row{
				{mr(1, "2024-05-01T10:00:00Z", "old"), mr(2, "2024-05-01T10:00:00Z", "kept")},
				{mr(1, "2024-05-02T10:00:00Z", "new")},
			},
			query: mrTitles,
			want:  []string{"1 new", "2 kept"},
		},
		{
			name: "EarlierVersionIgnored",
			def:  table.MergeRequestsDef,
			batches: [][]table.Row{
				{mr(1, "2024-05-02T10:00:00Z", "new")},
				{mr(1, "2024-05-01T10:00:00Z", "old"), mr(2, "2024-05-01T10:00:00Z", "b")},
			},
			query: mrTitles,
			want:  []string{"1 new", "2 b"},
		},
		{
			name: "SameVersionReplaces",
			def:  table.MergeRequestsDef,
			batches: [][]table.Row{
				{mr(1, "2024-05-01T10:00:00Z", "first")},
				{mr(1, "2024-05-01T10:00:00Z", "second")},
			},
			query: mrTitles,
			want:  []string{"1 second"},
		},
		{
			name: "NoVersionDoesNotReplaceVersion",
			def:  table.MergeRequestsDef,
			batches: [][]table.Row{
				{mr(1, "2024-05-01T10:00:00Z", "versioned")},
				{mr(1, "", "unversioned")},
			},
			query: mrTitles,
			want:  []string{"1 versioned"},
		},
		{
			name: "VersionReplacesNoVersion",
			def:  table.MergeRequestsDef,
			batches: [][]table.Row{
				{mr(1, "", "unversioned")},
				{mr(1, "2024-05-01T10:00:00Z", "versioned")},
			},
			query: mrTitles,
			want:  []string{"1 versioned"},
		},
		{
			name: "DuplicatesInBatchLatestWins",
			def:  table.MergeRequestsDef,
			batches: [][]table.Row{{
				mr(1, "2024-05-02T10:00:00Z", "middle"),
				mr(2, "2024-05-01T10:00:00Z", "other"),
				mr(1, "2024-05-03T10:00:00Z", "latest"),
				mr(1, "2024-05-01T10:00:00Z", "earliest"),
			}},
			query: mrTitles,
			want:  []string{"1 latest", "2 other"},
		},
		{
			name: "UsersLastWriteWins",
			def:  table.UsersDef,
			batches: [][]table.Row{
				{table.User{UserID: 1, Username: "alice"}, table.User{UserID: 2, Username: "bob"}},
				{table.User{UserID: 1, Username: "alice2"}},
			},
			query: usernames,
			want:  []string{"1 alice2", "2 bob"},
		},
		{
			name: "UsersDuplicatesInBatchLastWins",
			def:  table.UsersDef,
			batches: [][]table.Row{{
				table.User{UserID: 1, Username: "first"},
				table.User{UserID: 1, Username: "last"},
			}},
			query: usernames,
			want:  []string{"1 last"},
		},
		{
			name: "ProjectsByUpdatedAt",
			def:  table.ProjectsDef,
			batches: [][]table.Row{
				{table.Project{ProjectID: 7, Name: "new", UpdatedAt: ts("2024-05-02T00:00:00Z")}},
				{table.Project{ProjectID: 7, Name: "old", UpdatedAt: ts("2024-05-01T00:00:00Z")}},
			},
			query: `SELECT id, name FROM projects ORDER BY id`,
			want:  []string{"7 new"},
		},
		{
			name:    "EmptyBatch",
			def:     table.UsersDef,
			batches: [][]table.Row{{}, nil},
			query:   usernames,
			want:    nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpenDB(t)
			MustPrepare(t, db, tt.def)
			for i, batch := range tt.batches {
				MustUpsert(t, db, tt.def, fmt.Sprintf("batch-%d", i), batch...)
			}
			if got := MustStrings(t, db, tt.query); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("rows:\ngot  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestDB_Upsert_Values(t *testing.T) {
	db := MustOpenDB(t)
	MustPrepare(t, db, table.MergeRequestsDef, table.UsersDef)

	// +02:00 and -07:00 offsets must be stored as the same instants in UTC.
	paris := time.FixedZone("CEST", 2*3600)
	denver := time.FixedZone("MST", -7*3600)
	created := time.Date(2024, 5, 1, 12, 30, 15, 123456000, paris)
	updated := time.Date(2024, 5, 2, 1, 0, 0, 0, denver)

	before := time.Now().UTC().Truncate(time.Microsecond)
	MustUpsert(t, db, table.MergeRequestsDef, "b1",
		table.MergeRequest{
			MergeRequestID: 1, ProjectID: 10, Title: "full", CreatedAt: &created, UpdatedAt: &updated,
			AuthorID: ptr(int64(5)), Labels: []string{"bug", "ui"}, AssigneeIDs: []int64{5, 6},
			ReviewerIDs: []int64{7}, Draft: true,
		},
		table.MergeRequest{MergeRequestID: 2, ProjectID: 10}, // NULLs and empty lists
	)
	MustUpsert(t, db, table.UsersDef, "b2",
		table.User{UserID: 5, Username: "alice", LastActivityOn: "2024-02-29", CreatedAt: &created},
		table.User{UserID: 6, Username: "bob"},
	)
	after := time.Now().UTC()

	t.Run("MergeRequests", func(t *testing.T) {
		tests := []struct {
			name          string
			id            int64
			wantTitle     sql.NullString
			wantAuthor    sql.NullInt64
			wantCreated   *time.Time
			wantUpdated   *time.Time
			wantMerged    *time.Time
			wantDraft     bool
			wantLabels    []any
			wantAssignees []any
			wantReviewers []any
		}{
			{
				name:          "Full",
				id:            1,
				wantTitle:     sql.NullString{String: "full", Valid: true},
				wantAuthor:    sql.NullInt64{Int64: 5, Valid: true},
				wantCreated:   ptr(time.Date(2024, 5, 1, 10, 30, 15, 123456000, time.UTC)),
				wantUpdated:   ptr(time.Date(2024, 5, 2, 8, 0, 0, 0, time.UTC)),
				wantDraft:     true,
				wantLabels:    []any{"bug", "ui"},
				wantAssignees: []any{int64(5), int64(6)},
				wantReviewers: []any{int64(7)},
			},
			{
				name:          "NullsAndEmptyLists",
				id:            2,
				wantLabels:    []any{},
				wantAssignees: []any{},
				wantReviewers: []any{},
			},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				var (
					title                          sql.NullString
					author                         sql.NullInt64
					createdAt, updatedAt, mergedAt *time.Time
					syncedAt                       time.Time
					draft                          bool
					labels, assignees, reviewers   any
				)
				MustQueryRow(t, db, `
					SELECT title, author_id, created_at, updated_at, merged_at, draft,
						labels, assignee_ids, reviewer_ids, _synced_at
					FROM merge_requests WHERE id = ?`, []any{tt.id},
					&title, &author, &createdAt, &updatedAt, &mergedAt, &draft,
					&labels, &assignees, &reviewers, &syncedAt)

				if title != tt.wantTitle {
					t.Errorf("title: got %v, want %v", title, tt.wantTitle)
				}
				if author != tt.wantAuthor {
					t.Errorf("author_id: got %v, want %v", author, tt.wantAuthor)
				}
				for _, c := range []struct {
					name      string
					got, want *time.Time
				}{
					{"created_at", createdAt, tt.wantCreated},
					{"updated_at", updatedAt, tt.wantUpdated},
					{"merged_at", mergedAt, tt.wantMerged},
				} {
					switch {
					case (c.got == nil) != (c.want == nil):
						t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
					case c.got != nil && (!c.got.Equal(*c.want) || c.got.Location() != time.UTC):
						t.Errorf("%s: got %v, want %v in UTC", c.name, *c.got, *c.want)
					}
				}
				if draft != tt.wantDraft {
					t.Errorf("draft: got %v, want %v", draft, tt.wantDraft)
				}
				if !reflect.DeepEqual(labels, tt.wantLabels) {
					t.Errorf("labels: got %#v, want %#v", labels, tt.wantLabels)
				}
				if !reflect.DeepEqual(assignees, tt.wantAssignees) {
					t.Errorf("assignee_ids: got %#v, want %#v", assignees, tt.wantAssignees)
				}
				if !reflect.DeepEqual(reviewers, tt.wantReviewers) {
					t.Errorf("reviewer_ids: got %#v, want %#v", reviewers, tt.wantReviewers)
				}
				if syncedAt.Before(before) || syncedAt.After(after) || syncedAt.Location() != time.UTC {
					t.Errorf("_synced_at: got %v, want a UTC time in [%v, %v]", syncedAt, before, after)
				}
			})
		}
	})

	t.Run("UsersDates", func(t *testing.T) {
		got := MustStrings(t, db, `SELECT id, CAST(last_activity_on AS VARCHAR) FROM users ORDER BY id`)
		want := []string{"5 2024-02-29", "6 NULL"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("last_activity_on:\ngot  %q\nwant %q", got, want)
		}
	})
}

func TestDB_Upsert_Errors(t *testing.T) {
	tests := []struct {
		name    string
		row     table.Row
		wantErr string
	}{
		{
			name:    "ErrValueCount",
			row:     rawRow{id: 1, values: []any{int64(1), "alice"}},
			wantErr: "row 1: 2 values for 10 columns",
		},
		{
			name:    "ErrBadDate",
			row:     table.User{UserID: 2, LastActivityOn: "29/02/2024"},
			wantErr: `row 2 column last_activity_on: parse date "29/02/2024"`,
		},
		{
			name: "ErrWrongType",
			row: rawRow{id: 3, values: []any{
				int64(3), int64(42), nil, nil, nil, nil, nil, nil, nil, false,
			}},
			wantErr: "stage row 3",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := MustOpenDB(t)
			MustPrepare(t, db, table.UsersDef)
			MustUpsert(t, db, table.UsersDef, "b0", table.User{UserID: 100, Username: "kept"})

			// The good row in the same batch must not be written either.
			batch := []table.Row{table.User{UserID: 99}, tt.row}
			err := db.Upsert(t.Context(), table.UsersDef, "b1", batch)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Upsert: got error %v, want one containing %q", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), "batch b1 into users") {
				t.Errorf("Upsert: got error %v, want it to name the batch and table", err)
			}
			got := MustStrings(t, db, `SELECT id, username FROM users ORDER BY id`)
			if want := []string{"100 kept"}; !reflect.DeepEqual(got, want) {
				t.Errorf("rows after failed batch: got %q, want %q", got, want)
			}
		})
	}
}

func TestDB_Upsert_MissingTable(t *testing.T) {
	db := MustOpenDB(t)
	err := db.Upsert(t.Context(), table.UsersDef, "b1", []table.Row{table.User{UserID: 1}})
	if err == nil || !strings.Contains(err.Error(), "users") {
		t.Fatalf("Upsert before Prepare: got error %v, want one naming the table", err)
	}
}

func TestDB_Upsert_Concurrent(t *testing.T) {
	db := MustOpenDB(t)
	MustPrepare(t, db, table.MergeRequestsDef)

	// Four writers upsert the same ids; writer w's version is hour w.
	const writers = 4
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			var rows []table.Row
			for id := int64(1); id <= 100; id++ {
				updated := fmt.Sprintf("2024-05-01T%02d:00:00Z", w)
				rows = append(rows, mr(id, updated, fmt.Sprint("writer-", w)))
			}
			errs <- db.Upsert(t.Context(), table.MergeRequestsDef, fmt.Sprint("w", w), rows)
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}

	var n, titles int
	var title string
	MustQueryRow(t, db, `SELECT count(*), count(DISTINCT title), min(title) FROM merge_requests`, nil,
		&n, &titles, &title)
	want := fmt.Sprint("writer-", writers-1)
	if n != 100 || titles != 1 || title != want {
		t.Errorf("got %d rows with %d titles (%q), want 100 rows all %q", n, titles, title, want)
	}
}

func TestDB_Upsert_Canceled(t *testing.T) {
	db := MustOpenDB(t)
	MustPrepare(t, db, table.UsersDef)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := db.Upsert(ctx, table.UsersDef, "b1", []table.Row{table.User{UserID: 1}}); err == nil {
		t.Fatal("Upsert with a canceled context: got nil error, want one")
	}
	if got := MustCount(t, db, table.Users); got != 0 {
		t.Errorf("rows: got %d, want 0", got)
	}
}

// killedWriterEnv, when set to a path, turns TestDB_Durable into the writer
// of AfterKillWithoutClose: it upserts into that file and kills its own
// process, so that neither Close nor a checkpoint runs.
const killedWriterEnv = "DUCKDB_TEST_KILLED_WRITER_PATH"

func TestDB_Durable(t *testing.T) {
	if path := os.Getenv(killedWriterEnv); path != "" {
		db, err := duckdb.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		writeDurableRows(t, db)
		fmt.Println("upserted")
		p, _ := os.FindProcess(os.Getpid())
		_ = p.Kill()
		select {} // the kill ends the process
	}

	tests := []struct {
		name  string
		write func(t *testing.T, path string)
	}{
		{
			name: "AfterClose",
			write: func(t *testing.T, path string) {
				db, err := duckdb.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				writeDurableRows(t, db)
				if err := db.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			},
		},
		{
			name: "AfterKillWithoutClose",
			write: func(t *testing.T, path string) {
				cmd := exec.Command(os.Args[0], "-test.run=^TestDB_Durable$", "-test.count=1")
				cmd.Env = append(os.Environ(), killedWriterEnv+"="+path)
				out, err := cmd.CombinedOutput()
				if !strings.Contains(string(out), "upserted") {
					t.Fatalf("writer process: got error %v and output:\n%s\nwant \"upserted\"", err, out)
				}
				if err == nil {
					t.Fatalf("writer process: got exit status 0, want it killed")
				}
				// The rows must still be in the write-ahead log only, else
				// this case proves nothing beyond AfterClose.
				if _, err := os.Stat(path + ".wal"); err != nil {
					t.Fatalf("write-ahead log after the kill: %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sync.duckdb")
			tt.write(t, path)

			db, err := duckdb.Open(path)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer db.Close()
			if got, want := MustCount(t, db, table.MergeRequests), 3; got != want {
				t.Errorf("rows after reopening: got %d, want %d", got, want)
			}
			got := MustStrings(t, db, `SELECT id, title FROM merge_requests ORDER BY id`)
			if want := []string{"1 a", "2 b", "3 c"}; !reflect.DeepEqual(got, want) {
				t.Errorf("rows after reopening: got %q, want %q", got, want)
			}
		})
	}
}

// writeDurableRows prepares the tables and upserts three merge requests.
func writeDurableRows(tb testing.TB, db *duckdb.DB) {
	tb.Helper()
	MustPrepare(tb, db, table.ProjectsDef, table.MergeRequestsDef, table.UsersDef)
	MustUpsert(tb, db, table.MergeRequestsDef, "b1",
		mr(1, "2024-05-01T10:00:00Z", "a"), mr(2, "2024-05-01T10:00:00Z", "b"), mr(3, "", "c"))
}

func BenchmarkUpsertMergeRequests(b *testing.B) {
	const batch = 5000
	db := MustOpenDB(b)
	MustPrepare(b, db, table.MergeRequestsDef)
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

	// Each op writes the same ids with a later version: the first op
	// inserts, the others replace every row.
	rows := make([]table.Row, batch)
	op := 0
	for b.Loop() {
		b.StopTimer()
		for i := range rows {
			rows[i] = benchMergeRequest(int64(i+1), base.Add(time.Duration(op)*time.Minute))
		}
		op++
		b.StartTimer()

		err := db.Upsert(context.Background(), table.MergeRequestsDef, fmt.Sprint("batch-", op), rows)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(batch*b.N)/b.Elapsed().Seconds(), "rows/s")

	if got := MustCount(b, db, table.MergeRequests); got != batch {
		b.Errorf("rows: got %d, want %d", got, batch)
	}
}

// benchMergeRequest returns a merge request with every column set.
func benchMergeRequest(id int64, updated time.Time) table.MergeRequest {
	created := updated.Add(-48 * time.Hour)
	return table.MergeRequest{
		MergeRequestID: id, ProjectID: id % 50, Title: fmt.Sprintf("Fix the thing #%d", id),
		Description: strings.Repeat("Some description text. ", 10), State: "opened",
		AuthorID: ptr(id % 300), AssigneeID: ptr(id % 200), CreatedAt: &created, UpdatedAt: &updated,
		SourceBranch: fmt.Sprintf("feature/%d", id), TargetBranch: "main",
		WebURL: fmt.Sprintf("https://gitlab.example.com/group/project/-/merge_requests/%d", id),
		IID:    id, Labels: []string{"bug", "backend"}, AssigneeIDs: []int64{id % 200, id % 201},
		ReviewerIDs: []int64{id % 150}, SourceProjectID: id % 50, TargetProjectID: id % 50,
		SHA: "0123456789abcdef0123456789abcdef01234567", MilestoneID: ptr(id % 10),
		UserNotesCount: id % 17, Upvotes: 1, Downvotes: 0,
	}
}

// rawRow is a table.Row with its values given as is, for Defs that table/
// has no type for and for malformed rows.
type rawRow struct {
	id      int64
	version time.Time
	values  []any
}

func (r rawRow) ID() int64          { return r.id }
func (r rawRow) Version() time.Time { return r.version }
func (r rawRow) Values() []any      { return r.values }

// mr returns a merge request with an id, an updated_at (RFC 3339, or "" for
// none) and a title.
func mr(id int64, updated, title string) table.MergeRequest {
	m := table.MergeRequest{MergeRequestID: id, ProjectID: 1, Title: title}
	if updated != "" {
		m.UpdatedAt = ts(updated)
	}
	return m
}

// ts parses an RFC 3339 time; it panics on a typo in a test table.
func ts(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func ptr[T any](v T) *T { return &v }

// MustOpenDB opens a DuckDB file in a temporary directory and closes it when
// the test ends.
func MustOpenDB(tb testing.TB) *duckdb.DB {
	tb.Helper()
	db, err := duckdb.Open(filepath.Join(tb.TempDir(), "sync.duckdb"))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// MustPrepare prepares the tables of defs.
func MustPrepare(tb testing.TB, db *duckdb.DB, defs ...table.Def) {
	tb.Helper()
	if err := db.Prepare(context.Background(), defs); err != nil {
		tb.Fatal(err)
	}
}

// MustUpsert upserts rows as one batch.
func MustUpsert(tb testing.TB, db *duckdb.DB, def table.Def, batchID string, rows ...table.Row) {
	tb.Helper()
	if err := db.Upsert(context.Background(), def, batchID, rows); err != nil {
		tb.Fatal(err)
	}
}

// MustQueryRow runs a query that returns one row and scans it into dest.
func MustQueryRow(tb testing.TB, db *duckdb.DB, query string, args []any, dest ...any) {
	tb.Helper()
	if err := db.SQL().QueryRowContext(context.Background(), query, args...).Scan(dest...); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

// MustCount returns the number of rows in a table.
func MustCount(tb testing.TB, db *duckdb.DB, name string) int {
	tb.Helper()
	var n int
	MustQueryRow(tb, db, fmt.Sprintf("SELECT count(*) FROM %q", name), nil, &n)
	return n
}

// MustColumns returns "name TYPE" for each column of a table, in order.
func MustColumns(tb testing.TB, db *duckdb.DB, name string) []string {
	tb.Helper()
	return MustStrings(tb, db, fmt.Sprintf(`
		SELECT column_name, data_type FROM duckdb_columns()
		WHERE schema_name = 'main' AND table_name = '%s'
		ORDER BY column_index`, name))
}

// MustColumnType returns the type of one column.
func MustColumnType(tb testing.TB, db *duckdb.DB, tableName, column string) string {
	tb.Helper()
	var typ string
	MustQueryRow(tb, db, `
		SELECT data_type FROM duckdb_columns()
		WHERE schema_name = 'main' AND table_name = ? AND column_name = ?`,
		[]any{tableName, column}, &typ)
	return typ
}

// MustStrings runs a query returning two columns and formats each row as
// "first second", with NULL for a NULL second column.
func MustStrings(tb testing.TB, db *duckdb.DB, query string) []string {
	tb.Helper()
	rows, err := db.SQL().QueryContext(context.Background(), query)
	if err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()

	var out []string
	for rows.Next() {
		var first any
		var second sql.NullString
		if err := rows.Scan(&first, &second); err != nil {
			tb.Fatalf("%s: %v", query, err)
		}
		s := "NULL"
		if second.Valid {
			s = second.String
		}
		out = append(out, fmt.Sprintf("%v %s", first, s))
	}
	if err := rows.Err(); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return out
}
