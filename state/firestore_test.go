package state_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/internal/testenv"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
)

// TestFirestoreStore_Layout checks the documents FirestoreStore writes, which
// people read in the console and other tools may query.
func TestFirestoreStore_Layout(t *testing.T) {
	ctx := t.Context()
	client := testenv.Firestore(t)
	collection := testenv.UniqueName(t, "state")
	s := state.NewFirestoreStore(client, collection, "conn")
	s.Now = newClock().Now

	MustAcquire(t, s, "run-1", t0, time.Hour)
	MustSave(t, s, "run-1", state.Checkpoint{
		Cursors: map[state.Key]state.Cursor{
			{Table: "merge_requests", ProjectID: 42}: {
				UpdatedAt: t0,
				Seen:      []state.Seen{{ID: 7, UpdatedAt: t0}},
			},
		},
		AddUsers:    []int64{5, 3},
		LastSuccess: t0,
	})

	// The connection document.
	snap, err := client.Doc(collection + "/conn").Get(ctx)
	if err != nil {
		t.Fatalf("get connection document: %v", err)
	}
	conn := snap.Data()
	wantLease := map[string]any{"run_id": "run-1", "since": stored(t0), "expires": stored(t0.Add(time.Hour))}
	if got := conn["lease"]; !reflect.DeepEqual(got, wantLease) {
		t.Errorf("got lease %#v, want %#v", got, wantLease)
	}
	if got, want := conn["pending_users"], []any{int64(3), int64(5)}; !reflect.DeepEqual(got, want) {
		t.Errorf("got pending_users %#v, want %#v", got, want)
	}
	if got, want := conn["last_success"], stored(t0); !reflect.DeepEqual(got, want) {
		t.Errorf("got last_success %#v, want %#v", got, want)
	}
	if _, ok := conn["updated_at"].(time.Time); !ok {
		t.Errorf("got updated_at %#v, want a time", conn["updated_at"])
	}

	// The cursor document.
	snap, err = client.Doc(collection + "/conn/cursors/merge_requests-42").Get(ctx)
	if err != nil {
		t.Fatalf("get cursor document: %v", err)
	}
	want := map[string]any{
		"table":      "merge_requests",
		"project_id": int64(42),
		"updated_at": stored(t0),
		"seen":       []any{map[string]any{"id": int64(7), "updated_at": stored(t0)}},
	}
	if got := snap.Data(); !reflect.DeepEqual(got, want) {
		t.Errorf("got cursor %#v, want %#v", got, want)
	}

	// Release removes the lease field.
	if err := s.Release(ctx, "run-1"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	snap, err = client.Doc(collection + "/conn").Get(ctx)
	if err != nil {
		t.Fatalf("get connection document: %v", err)
	}
	if lease, ok := snap.Data()["lease"]; ok {
		t.Errorf("after Release: got lease %#v, want none", lease)
	}
}
