package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// fileVersion is the version of the state file's layout that FileStore
// reads and writes.
const fileVersion = 1

// FileStore keeps the state of one connection in a JSON file, for local
// runs:
//
//	{
//	  "version": 1,
//	  "lease": {"run_id": "…", "since": "…", "expires": "…"},
//	  "last_success": "2024-05-01T00:00:00Z",
//	  "pending_users": [3, 17],
//	  "cursors": {"merge_requests/42": {"updated_at": "…", "seen": [{"id": 7, "updated_at": "…"}]}},
//	  "updated_at": "…"
//	}
//
// Cursors are keyed by Key.String(). lease and last_success are absent when
// there are none.
//
// Every change is a read-modify-write of the whole file under a lock: a
// mutex within the process and an advisory lock (flock) on path+".lock"
// across processes, held only for that change. The new content goes to a
// temporary file in the same directory, which is synced and renamed over the
// file, so a crash leaves either the old or the new state, never a mix.
// Load takes no lock: a rename is atomic, so it reads one whole version.
type FileStore struct {
	// Now returns the current time; Save judges with it whether the lease
	// has expired. Nil means time.Now. Tests set it to move time.
	Now func() time.Time

	path string
	mu   sync.Mutex // serializes read-modify-write within the process
}

// NewFileStore returns a store that keeps its state in the file at path.
// The file and its directory are created by the first change; until then
// the state is empty.
func NewFileStore(path string) *FileStore {
	return &FileStore{path: path}
}

// fileJSON is the state file as encoded.
type fileJSON struct {
	Version      int               `json:"version"`
	Lease        *Lease            `json:"lease,omitempty"`
	LastSuccess  time.Time         `json:"last_success,omitzero"`
	PendingUsers []int64           `json:"pending_users"`
	Cursors      map[string]Cursor `json:"cursors"`
	UpdatedAt    time.Time         `json:"updated_at,omitzero"`
}

// fileContent is the state file as decoded.
type fileContent struct {
	lease *Lease
	state State
}

// Acquire takes the lease for runID until now+ttl. It returns a *HeldError
// when another run holds a lease that has not expired at now. The same
// runID acquiring again extends its lease.
func (s *FileStore) Acquire(ctx context.Context, runID string, now time.Time, ttl time.Duration) error {
	err := s.update(ctx, func(c *fileContent) (bool, error) {
		lease, err := acquireLease(c.lease, runID, now, ttl)
		if err != nil {
			return false, err
		}
		c.lease = &lease
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("acquire lease of %s for run %s: %w", s.path, runID, err)
	}
	return nil
}

// Release gives the lease up if runID holds it, expired or not; otherwise
// it does nothing.
func (s *FileStore) Release(ctx context.Context, runID string) error {
	err := s.update(ctx, func(c *fileContent) (bool, error) {
		if c.lease == nil || c.lease.RunID != runID {
			return false, nil
		}
		c.lease = nil
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("release lease of %s for run %s: %w", s.path, runID, err)
	}
	return nil
}

// Load reads the connection's state. A missing file is an empty state.
func (s *FileStore) Load(ctx context.Context) (State, error) {
	if err := ctx.Err(); err != nil {
		return State{}, fmt.Errorf("load state from %s: %w", s.path, err)
	}
	c, err := s.read()
	if err != nil {
		return State{}, err
	}
	return loadedState(c.state.Cursors, c.state.PendingUsers, c.state.LastSuccess), nil
}

// Save applies cp if runID holds the lease at s.Now; otherwise it returns
// an error wrapping ErrLeaseLost and leaves the file as it was.
func (s *FileStore) Save(ctx context.Context, runID string, cp Checkpoint) error {
	err := s.update(ctx, func(c *fileContent) (bool, error) {
		if !holdsLease(c.lease, runID, s.now()) {
			return false, ErrLeaseLost
		}
		apply(&c.state, cp)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("save checkpoint of run %s to %s: %w", runID, s.path, err)
	}
	return nil
}

// now returns the store's current time.
func (s *FileStore) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// update reads the file, lets fn change it and, if fn says so, writes it
// back, all under the process mutex and the lock file.
func (s *FileStore) update(ctx context.Context, fn func(c *fileContent) (write bool, err error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()

	// Create the directory, then take the lock across processes.
	if err := os.MkdirAll(filepath.Dir(s.path), 0o755); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	unlock, err := lockFile(ctx, s.path+".lock")
	if err != nil {
		return err
	}
	defer unlock()

	// Read, change, write.
	c, err := s.read()
	if err != nil {
		return err
	}
	write, err := fn(&c)
	if err != nil || !write {
		return err
	}
	return s.write(c)
}

// read reads and decodes the state file; a missing file is an empty state.
func (s *FileStore) read() (fileContent, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileContent{state: State{Cursors: make(map[Key]Cursor)}}, nil
	}
	if err != nil {
		return fileContent{}, fmt.Errorf("read state file: %w", err)
	}

	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return fileContent{}, s.corrupt(err)
	}
	if f.Version != fileVersion {
		return fileContent{}, s.corrupt(fmt.Errorf("version %d, want %d", f.Version, fileVersion))
	}
	c := fileContent{
		lease: f.Lease,
		state: State{
			Cursors:      make(map[Key]Cursor, len(f.Cursors)),
			PendingUsers: f.PendingUsers,
			LastSuccess:  f.LastSuccess,
		},
	}
	for name, cur := range f.Cursors {
		k, err := parseKey(name)
		if err != nil {
			return fileContent{}, s.corrupt(err)
		}
		c.state.Cursors[k] = cur
	}
	return c, nil
}

// corrupt returns the error for a state file that cannot be decoded, with
// what to do about it.
func (s *FileStore) corrupt(err error) error {
	return fmt.Errorf("state file %s is corrupt: %w; to start over, move it away "+
		"(mv %s %s.corrupt): the next run then syncs every table from the beginning",
		s.path, err, s.path, s.path)
}

// write encodes c and replaces the state file with it atomically.
func (s *FileStore) write(c fileContent) error {
	f := fileJSON{
		Version:      fileVersion,
		Lease:        c.lease,
		LastSuccess:  c.state.LastSuccess,
		PendingUsers: c.state.PendingUsers,
		Cursors:      make(map[string]Cursor, len(c.state.Cursors)),
		UpdatedAt:    storedTime(s.now()),
	}
	if f.PendingUsers == nil {
		f.PendingUsers = []int64{}
	}
	for k, cur := range c.state.Cursors {
		f.Cursors[k.String()] = cur
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	return writeFileAtomic(s.path, append(data, '\n'))
}

// writeFileAtomic replaces the file at path with data: it writes a
// temporary file in the same directory, syncs it, renames it over path and
// syncs the directory, so that after a crash path holds either the old or
// the new data. A temporary file left by a crash is never read.
func writeFileAtomic(path string, data []byte) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, base+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary state file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	// Write and sync the temporary file.
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp.Name(), err)
	}

	// Rename it over the file and sync the directory to keep the rename.
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace state file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// parseKey parses the "table/project" form of Key.String.
func parseKey(s string) (Key, error) {
	i := strings.LastIndex(s, "/")
	if i <= 0 {
		return Key{}, fmt.Errorf("cursor key %q is not table/project", s)
	}
	id, err := strconv.ParseInt(s[i+1:], 10, 64)
	if err != nil {
		return Key{}, fmt.Errorf("cursor key %q is not table/project", s)
	}
	return Key{Table: s[:i], ProjectID: id}, nil
}
