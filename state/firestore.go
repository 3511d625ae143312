package state

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/firestore"
	"google.golang.org/api/iterator"
)

// FirestoreStore keeps the state of one connection in Firestore, for the
// Cloud Function. Several connections can share a collection:
//
//	{collection}/{connectionID}
//	    lease          map: run_id, since, expires (absent when free)
//	    last_success   timestamp (absent until a run succeeds)
//	    pending_users  array of integers
//	    updated_at     server timestamp of the last write
//	{collection}/{connectionID}/cursors/{table}-{projectID}
//	    table, project_id, updated_at, seen: [{id, updated_at}]
//
// Acquire, Release and Save run in Firestore transactions, so the lease check
// and the writes it guards are one atomic step.
//
// A Save writes one document per cursor in its checkpoint, plus the
// connection document, in one transaction; Firestore bounds a transaction
// (10 MiB, and 500 writes in its older limits), so a checkpoint should carry
// the cursors that changed, not hundreds at once.
//
// TODO: pending_users lives in the connection document, which Firestore caps
// at 1 MiB: about 100,000 user ids. A connection that could have that many
// users waiting would need them split into documents of their own.
type FirestoreStore struct {
	// Now returns the current time; Save judges with it whether the lease
	// has expired. Nil means time.Now. Tests set it to move time.
	Now func() time.Time

	client       *firestore.Client
	collection   string
	connectionID string
}

// NewFirestoreStore returns a store for the connection connectionID, kept in
// the document of that id in collection. The client is not closed by the
// store.
func NewFirestoreStore(client *firestore.Client, collection, connectionID string) *FirestoreStore {
	return &FirestoreStore{client: client, collection: collection, connectionID: connectionID}
}

// connectionDoc is the connection document.
type connectionDoc struct {
	Lease        *Lease    `firestore:"lease,omitempty"`
	LastSuccess  time.Time `firestore:"last_success,omitzero"`
	PendingUsers []int64   `firestore:"pending_users"`
	UpdatedAt    time.Time `firestore:"updated_at,omitzero"`
}

// cursorDoc is one document of the cursors subcollection.
type cursorDoc struct {
	Table     string    `firestore:"table"`
	ProjectID int64     `firestore:"project_id"`
	UpdatedAt time.Time `firestore:"updated_at"`
	Seen      []Seen    `firestore:"seen"`
}

// Acquire takes the lease for runID until now+ttl. It returns a *HeldError
// when another run holds a lease that has not expired at now. The same
// runID acquiring again extends its lease.
func (s *FirestoreStore) Acquire(ctx context.Context, runID string, now time.Time, ttl time.Duration) error {
	doc, err := s.doc()
	if err != nil {
		return err
	}
	err = s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		conn, err := getConnection(tx, doc)
		if err != nil {
			return err
		}
		lease, err := acquireLease(conn.Lease, runID, now, ttl)
		if err != nil {
			return err
		}
		return tx.Set(doc, map[string]any{
			"lease":      lease,
			"updated_at": firestore.ServerTimestamp,
		}, firestore.MergeAll)
	})
	if err != nil {
		return fmt.Errorf("acquire lease of %s for run %s: %w", doc.Path, runID, err)
	}
	return nil
}

// Release gives the lease up if runID holds it, expired or not; otherwise
// it does nothing.
func (s *FirestoreStore) Release(ctx context.Context, runID string) error {
	doc, err := s.doc()
	if err != nil {
		return err
	}
	err = s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		conn, err := getConnection(tx, doc)
		if err != nil {
			return err
		}
		if conn.Lease == nil || conn.Lease.RunID != runID {
			return nil
		}
		return tx.Update(doc, []firestore.Update{
			{Path: "lease", Value: firestore.Delete},
			{Path: "updated_at", Value: firestore.ServerTimestamp},
		})
	})
	if err != nil {
		return fmt.Errorf("release lease of %s for run %s: %w", doc.Path, runID, err)
	}
	return nil
}

// Load reads the connection's state, in one read-only transaction so the
// cursors and the pending users are from the same instant. A connection
// never saved has an empty state.
func (s *FirestoreStore) Load(ctx context.Context) (State, error) {
	doc, err := s.doc()
	if err != nil {
		return State{}, err
	}
	var st State
	err = s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		conn, err := getConnection(tx, doc)
		if err != nil {
			return err
		}
		cursors := make(map[Key]Cursor)
		iter := tx.Documents(doc.Collection("cursors"))
		defer iter.Stop()
		for {
			snap, err := iter.Next()
			if errors.Is(err, iterator.Done) {
				break
			}
			if err != nil {
				return fmt.Errorf("read cursors: %w", err)
			}
			var c cursorDoc
			if err := snap.DataTo(&c); err != nil {
				return fmt.Errorf("decode cursor %s: %w", snap.Ref.Path, err)
			}
			cursors[Key{Table: c.Table, ProjectID: c.ProjectID}] = Cursor{UpdatedAt: c.UpdatedAt, Seen: c.Seen}
		}
		st = loadedState(cursors, conn.PendingUsers, conn.LastSuccess)
		return nil
	}, firestore.ReadOnly)
	if err != nil {
		return State{}, fmt.Errorf("load state from %s: %w", doc.Path, err)
	}
	return st, nil
}

// Save applies cp in one transaction if runID holds the lease at s.Now;
// otherwise it returns an error wrapping ErrLeaseLost and saves nothing.
func (s *FirestoreStore) Save(ctx context.Context, runID string, cp Checkpoint) error {
	doc, err := s.doc()
	if err != nil {
		return err
	}
	for k := range cp.Cursors {
		if k.Table == "" || strings.Contains(k.Table, "/") {
			return fmt.Errorf("save checkpoint to %s: table %q cannot name a cursor document", doc.Path, k.Table)
		}
	}
	err = s.client.RunTransaction(ctx, func(ctx context.Context, tx *firestore.Transaction) error {
		// Check the lease; every read comes before the first write.
		conn, err := getConnection(tx, doc)
		if err != nil {
			return err
		}
		if !holdsLease(conn.Lease, runID, s.now()) {
			return ErrLeaseLost
		}

		// Apply the checkpoint to what it changes: Cursors holds only cp's.
		st := State{PendingUsers: conn.PendingUsers, LastSuccess: conn.LastSuccess}
		apply(&st, cp)

		// Write each cursor, then the connection document.
		for k, c := range st.Cursors {
			ref := doc.Collection("cursors").Doc(cursorID(k))
			err := tx.Set(ref, cursorDoc{
				Table:     k.Table,
				ProjectID: k.ProjectID,
				UpdatedAt: c.UpdatedAt,
				Seen:      c.Seen,
			})
			if err != nil {
				return fmt.Errorf("write cursor %s: %w", k, err)
			}
		}
		fields := map[string]any{
			"pending_users": st.PendingUsers,
			"updated_at":    firestore.ServerTimestamp,
		}
		if !st.LastSuccess.IsZero() {
			fields["last_success"] = st.LastSuccess
		}
		return tx.Set(doc, fields, firestore.MergeAll)
	})
	if err != nil {
		return fmt.Errorf("save checkpoint of run %s to %s: %w", runID, doc.Path, err)
	}
	return nil
}

// now returns the store's current time.
func (s *FirestoreStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// doc returns the connection document, or an error if the collection or the
// connection id cannot name one.
func (s *FirestoreStore) doc() (*firestore.DocumentRef, error) {
	if err := checkID("collection", s.collection); err != nil {
		return nil, err
	}
	if err := checkID("connection id", s.connectionID); err != nil {
		return nil, err
	}
	return s.client.Collection(s.collection).Doc(s.connectionID), nil
}

// getConnection reads the connection document in tx; a missing document
// reads as an empty one.
func getConnection(tx *firestore.Transaction, doc *firestore.DocumentRef) (connectionDoc, error) {
	snaps, err := tx.GetAll([]*firestore.DocumentRef{doc})
	if err != nil {
		return connectionDoc{}, fmt.Errorf("read connection document: %w", err)
	}
	var conn connectionDoc
	if !snaps[0].Exists() {
		return conn, nil
	}
	if err := snaps[0].DataTo(&conn); err != nil {
		return connectionDoc{}, fmt.Errorf("decode connection document: %w", err)
	}
	return conn, nil
}

// cursorID returns the id of k's document in the cursors subcollection.
// Load reads the key back from the document's fields, not from its id.
func cursorID(k Key) string { return fmt.Sprintf("%s-%d", k.Table, k.ProjectID) }

// checkID returns an error if id cannot be (part of) a Firestore id.
func checkID(what, id string) error {
	switch {
	case id == "":
		return fmt.Errorf("empty %s", what)
	case strings.Contains(id, "/"):
		return fmt.Errorf("%s %q contains a slash", what, id)
	case id == "." || id == ".." || strings.HasPrefix(id, "__") && strings.HasSuffix(id, "__"):
		return fmt.Errorf("%s %q is reserved by Firestore", what, id)
	}
	return nil
}
