//go:build !unix

package main

import "errors"

// errRunLocked is returned by lockRun when another process holds the lock.
var errRunLocked = errors.New("another run holds the run lock")

// runLock is held by a local run for as long as it uses a state file.
type runLock struct{}

// lockRun fails: local runs keep their state with state.FileStore, which
// needs a unix system.
func lockRun(statePath string) (*runLock, error) {
	return nil, errors.New("local runs need a unix system (the state file is locked with flock)")
}

// Unlock does nothing.
func (l *runLock) Unlock() {}
