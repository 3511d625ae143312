package state_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/internal/testenv"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
)

func TestMain(m *testing.M) {
	defer testenv.Stop()
	m.Run()
}

// store is what both stores implement: gitlabsync.Store, which these tests
// do not import so that they do not depend on the root package.
type store interface {
	Acquire(ctx context.Context, runID string, now time.Time, ttl time.Duration) error
	Release(ctx context.Context, runID string) error
	Load(ctx context.Context) (state.State, error)
	Save(ctx context.Context, runID string, cp state.Checkpoint) error
}

// opener opens the store of a connection, whose Save judges the lease by
// now. Stores opened by one opener for the same connection share their
// state, as two processes would.
type opener func(connection string, now func() time.Time) store

// backend is one kind of store.
type backend struct {
	name string

	// setup makes a place of its own for the test's state.
	setup func(t *testing.T) opener
}

var backends = []backend{
	{
		name: "File",
		setup: func(t *testing.T) opener {
			dir := t.TempDir()
			return func(connection string, now func() time.Time) store {
				s := state.NewFileStore(filepath.Join(dir, connection, "state.json"))
				s.Now = now
				return s
			}
		},
	},
	{
		name: "Firestore",
		setup: func(t *testing.T) opener {
			client := testenv.Firestore(t)
			collection := testenv.UniqueName(t, "state")
			return func(connection string, now func() time.Time) store {
				s := state.NewFirestoreStore(client, collection, connection)
				s.Now = now
				return s
			}
		},
	},
}

// t0 is when the tests' runs start, given in a zone other than UTC and with
// nanoseconds, to check that stores hand times back in UTC, to the
// microsecond.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.FixedZone("CEST", 2*60*60))

// stored returns t as stores hand it back.
func stored(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// clock is a time that tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

// Now returns the clock's time.
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set sets the clock to t.
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// TestStore runs the contract every store must keep against each store.
func TestStore(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			for _, c := range contract {
				t.Run(c.name, func(t *testing.T) {
					c.test(t, b.setup(t))
				})
			}
		})
	}
}

var contract = []struct {
	name string
	test func(t *testing.T, open opener)
}{
	{"LoadEmpty", testLoadEmpty},
	{"AcquireRelease", testAcquireRelease},
	{"Held", testHeld},
	{"ReacquireExtends", testReacquireExtends},
	{"ExpiredTakenOver", testExpiredTakenOver},
	{"SaveApplies", testSaveApplies},
	{"ErrLeaseLost", testErrLeaseLost},
	{"SeparateConnections", testSeparateConnections},
	{"ConcurrentAcquire", testConcurrentAcquire},
}

func testLoadEmpty(t *testing.T, open opener) {
	s := open("c", newClock().Now)
	got := MustLoad(t, s)
	if got.Cursors == nil {
		t.Errorf("got nil Cursors, want an empty map")
	}
	if want := (state.State{Cursors: map[state.Key]state.Cursor{}}); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func testAcquireRelease(t *testing.T, open opener) {
	ctx := t.Context()
	s := open("c", newClock().Now)

	MustAcquire(t, s, "run-1", t0, time.Hour)
	MustHeld(t, s, "run-2", t0, "run-1")

	// Releasing a lease one does not hold does nothing.
	if err := s.Release(ctx, "run-2"); err != nil {
		t.Fatalf("Release(run-2): %v", err)
	}
	MustHeld(t, s, "run-2", t0, "run-1")

	// Once released, another run acquires it.
	if err := s.Release(ctx, "run-1"); err != nil {
		t.Fatalf("Release(run-1): %v", err)
	}
	MustAcquire(t, s, "run-2", t0, time.Hour)
	if err := s.Release(ctx, "run-1"); err != nil {
		t.Fatalf("Release(run-1) again: %v", err)
	}
	MustHeld(t, s, "run-1", t0, "run-2")
}

func testHeld(t *testing.T, open opener) {
	s := open("c", newClock().Now)
	MustAcquire(t, s, "run-1", t0, time.Hour)

	err := s.Acquire(t.Context(), "run-2", t0.Add(time.Minute), time.Hour)
	var held *state.HeldError
	if !errors.As(err, &held) {
		t.Fatalf("got error %v, want a *state.HeldError", err)
	}
	want := state.Lease{RunID: "run-1", Since: stored(t0), Expires: stored(t0.Add(time.Hour))}
	if !reflect.DeepEqual(held.Lease, want) {
		t.Errorf("got lease %+v, want %+v", held.Lease, want)
	}
}

func testReacquireExtends(t *testing.T, open opener) {
	s := open("c", newClock().Now)
	MustAcquire(t, s, "run-1", t0, time.Minute)
	MustAcquire(t, s, "run-1", t0.Add(30*time.Second), time.Minute)

	// Past the first lease's end, the extended one still holds, and it
	// started when the first did.
	held := MustHeld(t, s, "run-2", t0.Add(70*time.Second), "run-1")
	if got, want := held.Lease.Since, stored(t0); !got.Equal(want) {
		t.Errorf("got Since %v, want %v", got, want)
	}
	if got, want := held.Lease.Expires, stored(t0.Add(90*time.Second)); !got.Equal(want) {
		t.Errorf("got Expires %v, want %v", got, want)
	}

	// It expires at its end exactly.
	MustAcquire(t, s, "run-2", t0.Add(90*time.Second), time.Minute)
}

func testExpiredTakenOver(t *testing.T, open opener) {
	clk := newClock()
	s := open("c", clk.Now)
	MustAcquire(t, s, "run-1", t0, time.Minute)
	MustSave(t, s, "run-1", state.Checkpoint{AddUsers: []int64{1}})

	clk.Set(t0.Add(2 * time.Minute))
	MustAcquire(t, s, "run-2", clk.Now(), time.Minute)
	MustSave(t, s, "run-2", state.Checkpoint{AddUsers: []int64{2}})
	if got, want := MustLoad(t, s).PendingUsers, []int64{1, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("got PendingUsers %v, want %v", got, want)
	}
}

func testSaveApplies(t *testing.T, open opener) {
	mrs := state.Key{Table: "merge_requests", ProjectID: 42}
	notes := state.Key{Table: "notes", ProjectID: 42}
	users := state.Key{Table: "users"}

	steps := []struct {
		name string
		cp   state.Checkpoint
		want state.State
	}{
		{
			name: "First",
			cp: state.Checkpoint{
				Cursors: map[state.Key]state.Cursor{
					mrs: {
						UpdatedAt: t0.Add(time.Hour),
						Seen: []state.Seen{
							{ID: 7, UpdatedAt: t0.Add(time.Hour)},
							{ID: 3, UpdatedAt: t0.Add(time.Hour - time.Second)},
						},
					},
					users: {UpdatedAt: t0},
				},
				AddUsers: []int64{9, 3, 5, 3},
			},
			want: state.State{
				Cursors: map[state.Key]state.Cursor{
					mrs: {
						UpdatedAt: stored(t0.Add(time.Hour)),
						Seen: []state.Seen{
							{ID: 7, UpdatedAt: stored(t0.Add(time.Hour))},
							{ID: 3, UpdatedAt: stored(t0.Add(time.Hour - time.Second))},
						},
					},
					users: {UpdatedAt: stored(t0)},
				},
				PendingUsers: []int64{3, 5, 9},
			},
		},
		{
			name: "Second",
			cp: state.Checkpoint{
				Cursors: map[state.Key]state.Cursor{
					mrs:   {UpdatedAt: t0.Add(2 * time.Hour)},
					notes: {UpdatedAt: t0, Seen: []state.Seen{{ID: 1, UpdatedAt: t0}}},
				},
				AddUsers:    []int64{1},
				DoneUsers:   []int64{3, 42},
				LastSuccess: t0,
			},
			want: state.State{
				Cursors: map[state.Key]state.Cursor{
					mrs:   {UpdatedAt: stored(t0.Add(2 * time.Hour))},
					notes: {UpdatedAt: stored(t0), Seen: []state.Seen{{ID: 1, UpdatedAt: stored(t0)}}},
					users: {UpdatedAt: stored(t0)},
				},
				PendingUsers: []int64{1, 5, 9},
				LastSuccess:  stored(t0),
			},
		},
		{
			name: "Empty",
			cp:   state.Checkpoint{},
			want: state.State{
				Cursors: map[state.Key]state.Cursor{
					mrs:   {UpdatedAt: stored(t0.Add(2 * time.Hour))},
					notes: {UpdatedAt: stored(t0), Seen: []state.Seen{{ID: 1, UpdatedAt: stored(t0)}}},
					users: {UpdatedAt: stored(t0)},
				},
				PendingUsers: []int64{1, 5, 9},
				LastSuccess:  stored(t0),
			},
		},
		{
			name: "AllUsersDone",
			cp:   state.Checkpoint{DoneUsers: []int64{1, 5, 9}, LastSuccess: t0.Add(time.Hour)},
			want: state.State{
				Cursors: map[state.Key]state.Cursor{
					mrs:   {UpdatedAt: stored(t0.Add(2 * time.Hour))},
					notes: {UpdatedAt: stored(t0), Seen: []state.Seen{{ID: 1, UpdatedAt: stored(t0)}}},
					users: {UpdatedAt: stored(t0)},
				},
				LastSuccess: stored(t0.Add(time.Hour)),
			},
		},
	}

	s := open("c", newClock().Now)
	MustAcquire(t, s, "run-1", t0, time.Hour)
	for _, step := range steps {
		MustSave(t, s, "run-1", step.cp)
		got := MustLoad(t, s)
		if !reflect.DeepEqual(got, step.want) {
			t.Fatalf("after %s: got\n\t%+v\nwant\n\t%+v", step.name, got, step.want)
		}
		MustUTC(t, got)
	}
}

func testErrLeaseLost(t *testing.T, open opener) {
	tests := []struct {
		name string

		// lose leaves run-1 without the lease, moving clk if it needs to.
		lose func(t *testing.T, s store, clk *clock)
	}{
		{
			name: "NeverAcquired",
			lose: func(t *testing.T, s store, clk *clock) {},
		},
		{
			name: "Released",
			lose: func(t *testing.T, s store, clk *clock) {
				MustAcquire(t, s, "run-1", t0, time.Hour)
				if err := s.Release(t.Context(), "run-1"); err != nil {
					t.Fatalf("Release: %v", err)
				}
			},
		},
		{
			name: "Expired",
			lose: func(t *testing.T, s store, clk *clock) {
				MustAcquire(t, s, "run-1", t0, time.Minute)
				clk.Set(t0.Add(time.Minute))
			},
		},
		{
			name: "TakenOver",
			lose: func(t *testing.T, s store, clk *clock) {
				MustAcquire(t, s, "run-1", t0, time.Minute)
				clk.Set(t0.Add(2 * time.Minute))
				MustAcquire(t, s, "run-2", clk.Now(), time.Hour)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			s := open(tt.name, clk.Now)

			// An earlier run saves something.
			MustAcquire(t, s, "run-0", t0, time.Minute)
			MustSave(t, s, "run-0", state.Checkpoint{
				Cursors:  map[state.Key]state.Cursor{{Table: "t", ProjectID: 1}: {UpdatedAt: t0}},
				AddUsers: []int64{1},
			})
			if err := s.Release(t.Context(), "run-0"); err != nil {
				t.Fatalf("Release(run-0): %v", err)
			}
			want := MustLoad(t, s)

			// run-1 loses the lease, then saves.
			tt.lose(t, s, clk)

			err := s.Save(t.Context(), "run-1", state.Checkpoint{
				Cursors:     map[state.Key]state.Cursor{{Table: "t", ProjectID: 1}: {UpdatedAt: t0.Add(time.Hour)}},
				AddUsers:    []int64{2},
				DoneUsers:   []int64{1},
				LastSuccess: t0,
			})
			if !errors.Is(err, state.ErrLeaseLost) {
				t.Fatalf("got error %v, want state.ErrLeaseLost", err)
			}
			if got := MustLoad(t, s); !reflect.DeepEqual(got, want) {
				t.Errorf("got state %+v, want it unchanged: %+v", got, want)
			}
		})
	}
}

func testSeparateConnections(t *testing.T, open opener) {
	a := open("a", newClock().Now)
	b := open("b", newClock().Now)

	MustAcquire(t, a, "run-a", t0, time.Hour)
	MustSave(t, a, "run-a", state.Checkpoint{
		Cursors:     map[state.Key]state.Cursor{{Table: "t", ProjectID: 1}: {UpdatedAt: t0}},
		AddUsers:    []int64{1},
		LastSuccess: t0,
	})

	want := state.State{Cursors: map[state.Key]state.Cursor{}}
	if got := MustLoad(t, b); !reflect.DeepEqual(got, want) {
		t.Errorf("got b's state %+v, want %+v", got, want)
	}
	MustAcquire(t, b, "run-b", t0, time.Hour)
}

// testConcurrentAcquire races two runs for the lease. On the Firestore
// emulator each round takes seconds: the emulator settles the two
// transactions' lock conflict by a lock timeout, and the loser retries.
func testConcurrentAcquire(t *testing.T, open opener) {
	tests := []struct {
		name string

		// open returns the store the two runs use: the same one, or one
		// each as two processes would.
		open func(connection string) (store, store)
	}{
		{
			name: "SameStore",
			open: func(connection string) (store, store) {
				s := open(connection, time.Now)
				return s, s
			},
		},
		{
			name: "TwoStores",
			open: func(connection string) (store, store) {
				return open(connection, time.Now), open(connection, time.Now)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for round := range 2 {
				s1, s2 := tt.open(fmt.Sprintf("%s-%d", tt.name, round))
				stores := []store{s1, s2}

				// Both runs acquire at once.
				var wg sync.WaitGroup
				errs := make([]error, len(stores))
				for i, s := range stores {
					wg.Go(func() {
						errs[i] = s.Acquire(t.Context(), fmt.Sprintf("run-%d", i), t0, time.Hour)
					})
				}
				wg.Wait()

				// Exactly one wins, and the other is told who.
				var winners []string
				var held []*state.HeldError
				for i, err := range errs {
					var h *state.HeldError
					switch {
					case err == nil:
						winners = append(winners, fmt.Sprintf("run-%d", i))
					case errors.As(err, &h):
						held = append(held, h)
					default:
						t.Fatalf("round %d: run-%d: got error %v, want nil or a *state.HeldError", round, i, err)
					}
				}
				if len(winners) != 1 {
					t.Fatalf("round %d: got winners %v, want exactly one", round, winners)
				}
				if got, want := held[0].Lease.RunID, winners[0]; got != want {
					t.Errorf("round %d: got HeldError for %s, want %s", round, got, want)
				}
			}
		})
	}
}

// MustAcquire acquires the lease of s for runID, or fails tb.
func MustAcquire(tb testing.TB, s store, runID string, now time.Time, ttl time.Duration) {
	tb.Helper()
	if err := s.Acquire(context.Background(), runID, now, ttl); err != nil {
		tb.Fatalf("Acquire(%s, %v, %v): %v", runID, now, ttl, err)
	}
}

// MustHeld checks that runID cannot acquire the lease of s at now because
// holder holds it, and returns the error that says so.
func MustHeld(tb testing.TB, s store, runID string, now time.Time, holder string) *state.HeldError {
	tb.Helper()
	err := s.Acquire(context.Background(), runID, now, time.Hour)
	var held *state.HeldError
	if !errors.As(err, &held) {
		tb.Fatalf("Acquire(%s): got error %v, want a *state.HeldError", runID, err)
	}
	if held.Lease.RunID != holder {
		tb.Fatalf("Acquire(%s): got lease of %s, want %s", runID, held.Lease.RunID, holder)
	}
	return held
}

// MustSave saves cp for runID, or fails tb.
func MustSave(tb testing.TB, s store, runID string, cp state.Checkpoint) {
	tb.Helper()
	if err := s.Save(context.Background(), runID, cp); err != nil {
		tb.Fatalf("Save(%s): %v", runID, err)
	}
}

// MustLoad loads the state of s, or fails tb.
func MustLoad(tb testing.TB, s store) state.State {
	tb.Helper()
	st, err := s.Load(context.Background())
	if err != nil {
		tb.Fatalf("Load: %v", err)
	}
	return st
}

// MustUTC checks that every time in st is in UTC.
func MustUTC(tb testing.TB, st state.State) {
	tb.Helper()
	check := func(what string, t time.Time) {
		if t.Location() != time.UTC {
			tb.Errorf("got %s in %v, want UTC", what, t.Location())
		}
	}
	check("LastSuccess", st.LastSuccess)
	for k, c := range st.Cursors {
		check(k.String()+" UpdatedAt", c.UpdatedAt)
		for _, s := range c.Seen {
			check(fmt.Sprintf("%s seen %d", k, s.ID), s.UpdatedAt)
		}
	}
}
