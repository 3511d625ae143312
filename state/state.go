// Package state keeps what a sync must remember between runs: a cursor per
// table and project, the users still to fetch, when the last successful run
// started, and the lease that keeps two runs of one connection apart.
//
// Two stores implement it: Firestore (FirestoreStore) for the Cloud Function
// and a JSON file (FileStore) for local runs. Both hold the state of one
// connection; several connections can share a Firestore collection.
// The package knows nothing of GitLab or of where rows are written.
package state

import (
	"errors"
	"fmt"
	"time"
)

// Key names one cursor: a table and, for per-project tables, the numeric
// GitLab project id (0 for tables that are not per project).
type Key struct {
	Table     string
	ProjectID int64
}

// String returns the key as "table/project", the form used in document ids
// and in the state file.
func (k Key) String() string { return fmt.Sprintf("%s/%d", k.Table, k.ProjectID) }

// Cursor is how far a table has been synced for one project.
type Cursor struct {
	// UpdatedAt is the latest updated_at among the rows written. The next
	// run reads from a little before it (inclusive), so a change on this
	// very instant is never missed.
	UpdatedAt time.Time `json:"updated_at" firestore:"updated_at"`

	// Seen lists rows already written whose updated_at lies in the overlap
	// the next run re-reads, so that it can tell them from real changes.
	Seen []Seen `json:"seen,omitempty" firestore:"seen,omitempty"`
}

// Seen is one row written at one version.
type Seen struct {
	ID        int64     `json:"id" firestore:"id"`
	UpdatedAt time.Time `json:"updated_at" firestore:"updated_at"`
}

// Lease is the right of one run to sync a connection until it expires.
type Lease struct {
	RunID   string    `json:"run_id" firestore:"run_id"`
	Since   time.Time `json:"since" firestore:"since"`
	Expires time.Time `json:"expires" firestore:"expires"`
}

// State is everything a run reads at its start.
type State struct {
	// Cursors holds one cursor per table and project that has been synced.
	Cursors map[Key]Cursor

	// PendingUsers lists users that merge requests already written refer
	// to and that have not been written to the users table yet.
	PendingUsers []int64

	// LastSuccess is when the last run that finished every table without
	// error and without leaving more to do started; zero if none did.
	LastSuccess time.Time
}

// Checkpoint is what a run records once rows are durably written.
// A store applies all of it at once, or none of it.
type Checkpoint struct {
	// Cursors replaces these cursors.
	Cursors map[Key]Cursor

	// AddUsers adds user ids to PendingUsers.
	AddUsers []int64

	// DoneUsers removes user ids from PendingUsers.
	DoneUsers []int64

	// LastSuccess, when not zero, replaces State.LastSuccess.
	LastSuccess time.Time
}

// ErrLeaseLost is returned by Save when the run no longer holds the lease
// (it expired and another run took it). Nothing of the checkpoint is saved.
var ErrLeaseLost = errors.New("state: the run lease expired and was taken by another run")

// HeldError is returned by Acquire when another run holds the lease.
type HeldError struct {
	Lease Lease
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("state: another run (%s) holds the lease since %s, until %s at the latest",
		e.Lease.RunID, e.Lease.Since.UTC().Format(time.RFC3339), e.Lease.Expires.UTC().Format(time.RFC3339))
}

// apply applies a checkpoint to a state in memory; stores call it inside
// their transaction so both stores mean the same by a checkpoint.
func apply(s *State, cp Checkpoint) {
	if s.Cursors == nil {
		s.Cursors = make(map[Key]Cursor)
	}
	for k, c := range cp.Cursors {
		s.Cursors[k] = c
	}
	s.PendingUsers = mergeUsers(s.PendingUsers, cp.AddUsers, cp.DoneUsers)
	if !cp.LastSuccess.IsZero() {
		s.LastSuccess = cp.LastSuccess
	}
}

// mergeUsers returns pending ∪ add ∖ done, sorted and without duplicates.
func mergeUsers(pending, add, done []int64) []int64 {
	set := make(map[int64]bool, len(pending)+len(add))
	for _, id := range pending {
		set[id] = true
	}
	for _, id := range add {
		set[id] = true
	}
	for _, id := range done {
		delete(set, id)
	}
	out := make([]int64, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sortInts(out)
	return out
}
