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
	"slices"
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

// ErrLeaseLost is returned, wrapped, by Save when the run no longer holds
// the lease: it expired (and maybe another run took it over), or it was
// released. Nothing of the checkpoint is saved.
var ErrLeaseLost = errors.New("state: the run no longer holds the lease (it expired or another run took it)")

// HeldError is returned by Acquire when another run holds the lease.
type HeldError struct {
	Lease Lease
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("state: another run (%s) holds the lease since %s, until %s at the latest",
		e.Lease.RunID, e.Lease.Since.UTC().Format(time.RFC3339), e.Lease.Expires.UTC().Format(time.RFC3339))
}

// acquireLease returns the lease runID holds after taking it at now for
// ttl, given the lease stored so far (nil if none). It returns a *HeldError
// when another run holds cur and cur has not expired at now. Re-acquiring
// keeps the original Since and moves Expires to now+ttl; an expired lease of
// another run is taken over. Stores call it inside their transaction so both
// stores mean the same by a lease.
func acquireLease(cur *Lease, runID string, now time.Time, ttl time.Duration) (Lease, error) {
	if runID == "" {
		return Lease{}, errors.New("empty run id")
	}
	if ttl <= 0 {
		return Lease{}, fmt.Errorf("lease ttl %s is not positive", ttl)
	}
	now = storedTime(now)
	if cur != nil && cur.RunID != runID && now.Before(cur.Expires) {
		return Lease{}, &HeldError{Lease: storedLease(*cur)}
	}
	l := Lease{RunID: runID, Since: now, Expires: storedTime(now.Add(ttl))}
	if cur != nil && cur.RunID == runID {
		l.Since = storedTime(cur.Since)
	}
	return l, nil
}

// holdsLease reports whether runID holds lease l (nil if none) at now: the
// lease is its own and now is before it expires.
func holdsLease(l *Lease, runID string, now time.Time) bool {
	return l != nil && l.RunID == runID && now.Before(l.Expires)
}

// apply applies a checkpoint to a state in memory; stores call it inside
// their transaction so both stores mean the same by a checkpoint. The
// cursors and times it stores are in the form storedTime describes.
func apply(s *State, cp Checkpoint) {
	if s.Cursors == nil {
		s.Cursors = make(map[Key]Cursor)
	}
	for k, c := range cp.Cursors {
		s.Cursors[k] = storedCursor(c)
	}
	s.PendingUsers = mergeUsers(s.PendingUsers, cp.AddUsers, cp.DoneUsers)
	if !cp.LastSuccess.IsZero() {
		s.LastSuccess = storedTime(cp.LastSuccess)
	}
}

// storedTime returns t as both stores keep it: in UTC, truncated to the
// microsecond (Firestore's precision), without a monotonic clock reading.
// Truncating a cursor moves it back, never forward, so no row is skipped.
func storedTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// storedCursor returns c with its times as storedTime keeps them and a nil
// Seen when it is empty. It copies Seen, so c's slice is never shared.
func storedCursor(c Cursor) Cursor {
	out := Cursor{UpdatedAt: storedTime(c.UpdatedAt)}
	if len(c.Seen) > 0 {
		out.Seen = make([]Seen, len(c.Seen))
		for i, s := range c.Seen {
			out.Seen[i] = Seen{ID: s.ID, UpdatedAt: storedTime(s.UpdatedAt)}
		}
	}
	return out
}

// storedLease returns l with its times as storedTime keeps them.
func storedLease(l Lease) Lease {
	return Lease{RunID: l.RunID, Since: storedTime(l.Since), Expires: storedTime(l.Expires)}
}

// loadedState returns the State a store hands out: a non-nil Cursors map,
// times in UTC, and nil PendingUsers when there are none.
func loadedState(cursors map[Key]Cursor, pending []int64, lastSuccess time.Time) State {
	s := State{Cursors: make(map[Key]Cursor, len(cursors))}
	for k, c := range cursors {
		s.Cursors[k] = storedCursor(c)
	}
	if len(pending) > 0 {
		s.PendingUsers = slices.Clone(pending)
	}
	if !lastSuccess.IsZero() {
		s.LastSuccess = storedTime(lastSuccess)
	}
	return s
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
	slices.Sort(out)
	return out
}
