//go:build !unix

package state

import (
	"context"
	"errors"
)

// lockFile would lock the state file across processes; it is only written
// for unix systems, where the local runs happen.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	return nil, errors.New("state file locking needs a unix system (flock)")
}

// syncDir does nothing where directories cannot be synced.
func syncDir(path string) error { return nil }
