package state_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/state"
)

func TestFileStore_AtomicWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")

	// A temporary file left by a crash is ignored.
	leftover := path + ".tmp-12345"
	if err := os.WriteFile(leftover, []byte(`{"version": 1, "cursors": {`), 0o600); err != nil {
		t.Fatal(err)
	}

	s := state.NewFileStore(path)
	s.Now = newClock().Now
	MustAcquire(t, s, "run-1", t0, time.Hour)
	for i := range 5 {
		MustSave(t, s, "run-1", state.Checkpoint{
			Cursors: map[state.Key]state.Cursor{
				{Table: "merge_requests", ProjectID: 42}: {UpdatedAt: t0.Add(time.Duration(i) * time.Minute)},
			},
			AddUsers: []int64{int64(i)},
		})

		// After each save the file is whole, in the documented layout.
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Version      int                        `json:"version"`
			Lease        map[string]any             `json:"lease"`
			PendingUsers []int64                    `json:"pending_users"`
			Cursors      map[string]json.RawMessage `json:"cursors"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("save %d: file is not valid JSON: %v\n%s", i, err, data)
		}
		if f.Version != 1 || f.Lease["run_id"] != "run-1" || len(f.PendingUsers) != i+1 {
			t.Errorf("save %d: got version %d, lease %v, pending_users %v; want 1, run-1, %d users",
				i, f.Version, f.Lease, f.PendingUsers, i+1)
		}
		if _, ok := f.Cursors["merge_requests/42"]; !ok {
			t.Errorf("save %d: got cursors %v, want key merge_requests/42", i, f.Cursors)
		}
	}

	// Only the state file, its lock file and the leftover remain.
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := []string{"state.json", "state.json.lock", "state.json.tmp-12345"}
	if !slices.Equal(got, want) {
		t.Errorf("got files %v, want %v", got, want)
	}
}

func TestFileStore_Corrupt(t *testing.T) {
	tests := []struct {
		name    string
		content string
	}{
		{name: "Truncated", content: `{"version": 1, "cursors": {`},
		{name: "Empty", content: ""},
		{name: "OtherVersion", content: `{"version": 2}`},
		{name: "NoVersion", content: `{"cursors": {}}`},
		{name: "BadKey", content: `{"version": 1, "cursors": {"merge_requests": {"updated_at": "2024-05-01T00:00:00Z"}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			s := state.NewFileStore(path)

			_, err := s.Load(t.Context())
			if err == nil {
				t.Fatalf("Load: got no error, want one")
			}
			for _, want := range []string{path + " is corrupt", "move it away", "mv " + path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Load: got error %q, want it to contain %q", err, want)
				}
			}

			// Changes fail too and leave the file alone.
			if err := s.Acquire(t.Context(), "run-1", t0, time.Hour); err == nil {
				t.Errorf("Acquire: got no error, want one")
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(data); got != tt.content {
				t.Errorf("got file %q, want it unchanged: %q", got, tt.content)
			}
		})
	}
}

func TestFileStore_Directory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s := state.NewFileStore(filepath.Join(dir, "state.json"))

	// Load creates nothing.
	MustLoad(t, s)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("after Load: got Stat error %v, want the directory not to exist", err)
	}

	// The first change creates the directory and the file.
	MustAcquire(t, s, "run-1", t0, time.Hour)
	if _, err := os.Stat(filepath.Join(dir, "state.json")); err != nil {
		t.Fatalf("after Acquire: %v", err)
	}
}

// TestFileStore_TwoProcesses checks that stores on the same file, as two
// processes would have, keep each other's lease and changes: their locks are
// separate, so only the lock file keeps them apart.
func TestFileStore_TwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	open := func() *state.FileStore {
		s := state.NewFileStore(path)
		s.Now = newClock().Now
		return s
	}
	a, b := open(), open()

	// The lease of one is seen by the other.
	MustAcquire(t, a, "run-1", t0, time.Hour)
	MustHeld(t, b, "run-2", t0, "run-1")

	// Saves by both at once, for the same run, lose no change.
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			if err := s.Save(t.Context(), "run-1", state.Checkpoint{AddUsers: []int64{int64(i)}}); err != nil {
				t.Errorf("Save(%d): %v", i, err)
			}
		})
	}
	wg.Wait()
	var want []int64
	for i := range n {
		want = append(want, int64(i))
	}
	if got := MustLoad(t, b).PendingUsers; !reflect.DeepEqual(got, want) {
		t.Errorf("got PendingUsers %v, want %v", got, want)
	}
}
