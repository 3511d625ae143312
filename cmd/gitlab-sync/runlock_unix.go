//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// errRunLocked is returned by lockRun when another process holds the lock.
var errRunLocked = errors.New("another run holds the run lock")

// runLock is held by a local run for as long as it uses a state file.
type runLock struct{ f *os.File }

// lockRun takes the run lock of the state file at statePath: an advisory
// lock (flock) on statePath+".run.lock", without waiting. The system drops
// it when the process ends, however it ends, so holding it proves that no
// other local run of the state file is alive. It is a different file from
// the one state.FileStore locks for each change.
func lockRun(statePath string) (*runLock, error) {
	path := statePath + ".run.lock"
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create the directory of state_path: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open run lock: %w", err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	switch {
	case errors.Is(err, syscall.EWOULDBLOCK):
		f.Close()
		return nil, errRunLocked
	case err != nil:
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &runLock{f: f}, nil
}

// Unlock releases the lock. The lock file stays: removing it would let two
// processes lock two different files of the same name.
func (l *runLock) Unlock() {
	_ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	_ = l.f.Close()
}
