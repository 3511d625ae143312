//go:build gitlabsync_testhooks

package main

import (
	"context"
	"os"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

// This file is only in the binary the tests build (go build -tags
// gitlabsync_testhooks). It lets a test kill the process at the one moment
// no test can hit from outside: rows durably written, checkpoint not.

func init() {
	name := os.Getenv(crashAfterUpsertEnv)
	if name == "" {
		return
	}
	wrapDestination = func(d gitlabsync.Destination) gitlabsync.Destination {
		return crashingDest{Destination: d, table: name}
	}
}

// crashingDest kills the process after an upsert into table.
type crashingDest struct {
	gitlabsync.Destination
	table string
}

func (d crashingDest) Upsert(ctx context.Context, def table.Def, batchID string, rows []table.Row) error {
	if err := d.Destination.Upsert(ctx, def, batchID, rows); err != nil {
		return err
	}
	if def.Name == d.table {
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			_ = p.Kill()
			select {} // the signal is on its way
		}
	}
	return nil
}
