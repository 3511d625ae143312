package gitlabsync

import (
	"context"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/state"
	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

// Source reads GitLab. gitlab.Client implements it.
type Source interface {
	// Project fetches one project by numeric id or by "group/sub/project"
	// path. It returns an error for which gitlab.Classify says Skip when the
	// token may not see the project.
	Project(ctx context.Context, ref string) (table.Project, error)

	// MergeRequests streams the project's merge requests updated at or after
	// since, oldest update first, one page at a time. The same merge request
	// may be handed over more than once. It stops at the first error fn
	// returns and returns that error.
	MergeRequests(ctx context.Context, projectID int64, since time.Time, fn func(page []table.MergeRequest) error) error

	// Users fetches the users with the given ids, in as few requests as it
	// can. Ids GitLab does not know are left out of the result.
	Users(ctx context.Context, ids []int64) ([]table.User, error)

	// Requests returns how many HTTP requests the source has sent so far,
	// retries included.
	Requests() int64
}

// Destination writes rows. load.BigQuery and duckdb.DB implement it.
type Destination interface {
	// Prepare creates whatever is missing for these tables (dataset, tables,
	// new columns). It is called once per run before any Upsert.
	Prepare(ctx context.Context, defs []table.Def) error

	// Upsert writes rows keyed by id: a row replaces the stored row with the
	// same id unless the stored one has a later version. When it returns nil
	// the rows are durable. Calling it twice with the same batchID and rows
	// leaves the table as one call does.
	Upsert(ctx context.Context, def table.Def, batchID string, rows []table.Row) error
}

// Store keeps cursors and the run lease of one connection. state.FirestoreStore
// and state.FileStore implement it.
type Store interface {
	// Acquire takes the lease for runID until now+ttl. It returns a
	// *state.HeldError when another run holds an unexpired lease.
	Acquire(ctx context.Context, runID string, now time.Time, ttl time.Duration) error

	// Release gives the lease up if runID holds it.
	Release(ctx context.Context, runID string) error

	// Load reads the connection's state.
	Load(ctx context.Context) (state.State, error)

	// Save applies a checkpoint atomically, only while runID holds the lease
	// (else state.ErrLeaseLost).
	Save(ctx context.Context, runID string, cp state.Checkpoint) error
}
