package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	secretmanager "cloud.google.com/go/secretmanager/apiv1"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
	"github.com/gitlab-bigquery-sync/gitlabsync/load/duckdb"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

// engine wires the engine for cfg: a DuckDB file and a JSON state file when
// cfg names no BigQuery dataset, else BigQuery and Firestore as the function
// does. The returned function releases what it opened.
func (m *Main) engine(
	ctx context.Context, cfg gitlabsync.Config, log *slog.Logger,
) (*gitlabsync.Engine, func(), error) {
	if cfg.BigQueryDataset != "" {
		return m.cloudEngine(ctx, cfg, log)
	}
	return m.localEngine(ctx, cfg, log)
}

// cloudEngine is the function's engine: BigQuery, Firestore, and the token
// from the configuration or Secret Manager.
func (m *Main) cloudEngine(
	ctx context.Context, cfg gitlabsync.Config, log *slog.Logger,
) (*gitlabsync.Engine, func(), error) {
	cloud, err := gitlabsync.NewCloud(ctx, cfg, m.Cloud)
	if err != nil {
		return nil, nil, fmt.Errorf("bigquery_dataset is set, so this run writes to BigQuery; to write to the local DuckDB file instead, leave bigquery_dataset out: %w", err)
	}
	token, err := cloud.Token(ctx, cfg)
	if err != nil {
		cloud.Close()
		return nil, nil, err
	}
	e, err := cloud.Engine(cfg, token, m.GitLab)
	if err != nil {
		cloud.Close()
		return nil, nil, err
	}
	e.Logger, e.BatchSize = log, m.BatchSize
	log.Info("sync started", "gitlab", cfg.BaseURL, "projects", len(cfg.Projects),
		"bigquery", cfg.BigQueryProject+"."+cfg.BigQueryDataset,
		"firestore", cfg.StateCollection+"/"+cfg.ConnectionID)
	return e, cloud.Close, nil
}

// localEngine writes rows to the DuckDB file duckdb_path and cursors to the
// state file state_path. It holds the state file's run lock until the
// returned function is called.
func (m *Main) localEngine(
	ctx context.Context, cfg gitlabsync.Config, log *slog.Logger,
) (*gitlabsync.Engine, func(), error) {
	token, err := m.localToken(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	opts := m.GitLab
	opts.BaseURL, opts.Token = cfg.BaseURL, token
	src, err := gitlab.NewClient(opts)
	if err != nil {
		return nil, nil, err
	}

	// Only one local run at a time may use a state file.
	lock, err := lockRun(cfg.StatePath)
	switch {
	case errors.Is(err, errRunLocked):
		return nil, nil, heldError{lease: readLease(cfg.StatePath), path: cfg.StatePath}
	case err != nil:
		return nil, nil, err
	}

	dest := &duckDest{path: cfg.DuckDBPath}
	e := &gitlabsync.Engine{
		Config:    cfg,
		Source:    src,
		Dest:      wrapDestination(dest),
		Store:     takeoverStore{FileStore: state.NewFileStore(cfg.StatePath), log: log},
		Logger:    log,
		BatchSize: m.BatchSize,
	}
	closeAll := func() {
		if err := dest.Close(); err != nil {
			log.Warn("close the DuckDB file", "error", err.Error())
		}
		lock.Unlock()
	}
	log.Info("sync started", "gitlab", cfg.BaseURL, "projects", len(cfg.Projects),
		"duckdb", cfg.DuckDBPath, "state", cfg.StatePath)
	return e, closeAll, nil
}

// localToken returns the configured token, reading it from Secret Manager
// when gitlab_token_secret names a version.
func (m *Main) localToken(ctx context.Context, cfg gitlabsync.Config) (string, error) {
	if cfg.TokenSecret == "" {
		return cfg.Token, nil
	}
	sm, err := secretmanager.NewClient(ctx, m.Cloud.SecretManager...)
	if err != nil {
		return "", fmt.Errorf("secretmanager.NewClient (to read gitlab_token_secret): %w", err)
	}
	defer sm.Close()
	return gitlabsync.ReadToken(ctx, cfg, sm)
}

// wrapDestination lets a test build wrap the destination (see
// testhooks.go); it returns d itself otherwise.
var wrapDestination = func(d gitlabsync.Destination) gitlabsync.Destination { return d }

// crashAfterUpsertEnv names a table in a test build: the process kills
// itself (SIGKILL) right after the first batch of that table is written.
const crashAfterUpsertEnv = "GITLAB_SYNC_TEST_CRASH_AFTER_UPSERT"

// duckDest is the DuckDB file as a destination. It opens the file on the
// first Prepare, so a run that does not start (another holds the lease, or
// sync_interval_hours has not passed) leaves the file alone.
type duckDest struct {
	path string

	mu sync.Mutex
	db *duckdb.DB
}

// Prepare opens the file, creating it and its directory if needed, and
// creates the tables.
func (d *duckDest) Prepare(ctx context.Context, defs []table.Def) error {
	d.mu.Lock()
	if d.db == nil {
		if err := os.MkdirAll(filepath.Dir(d.path), 0o755); err != nil {
			d.mu.Unlock()
			return fmt.Errorf("create the directory of duckdb_path: %w", err)
		}
		db, err := duckdb.Open(d.path)
		if err != nil {
			d.mu.Unlock()
			return err
		}
		d.db = db
	}
	db := d.db
	d.mu.Unlock()
	return db.Prepare(ctx, defs)
}

// Upsert writes rows to the file opened by Prepare.
func (d *duckDest) Upsert(ctx context.Context, def table.Def, batchID string, rows []table.Row) error {
	d.mu.Lock()
	db := d.db
	d.mu.Unlock()
	if db == nil {
		return fmt.Errorf("upsert batch %s into %s: the DuckDB file is not open (no Prepare)",
			batchID, def.Name)
	}
	return db.Upsert(ctx, def, batchID, rows)
}

// Close closes the file if it was opened.
func (d *duckDest) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.db == nil {
		return nil
	}
	err := d.db.Close()
	d.db = nil
	return err
}

// takeoverStore is the state file of a run holding the file's run lock. No
// other local run can then be alive, so a lease found in the file was left
// by a run that was killed before it could give it back: it is taken over
// at once instead of blocking every run until it expires.
//
// NOTE: this holds because every local run takes the run lock first; a
// program using state.FileStore on the same file without it is not seen.
type takeoverStore struct {
	*state.FileStore
	log *slog.Logger
}

// Acquire takes the lease, taking over one left by a dead run.
func (s takeoverStore) Acquire(ctx context.Context, runID string, now time.Time, ttl time.Duration) error {
	err := s.FileStore.Acquire(ctx, runID, now, ttl)
	var held *state.HeldError
	if !errors.As(err, &held) {
		return err
	}
	if err := s.FileStore.Release(ctx, held.Lease.RunID); err != nil {
		return fmt.Errorf("take over the lease of run %s: %w", held.Lease.RunID, err)
	}
	s.log.Warn(fmt.Sprintf("took over the lease of run %s, which ended without giving it back "+
		"(killed?); its last checkpoint stands and rows it wrote after it are written again",
		held.Lease.RunID),
		"previous_run", held.Lease.RunID, "since", held.Lease.Since)
	return s.FileStore.Acquire(ctx, runID, now, ttl)
}

// readLease returns the lease recorded in the state file at path, or a
// zero Lease when it cannot tell. It is only used to explain a refusal.
func readLease(path string) state.Lease {
	var f struct {
		Lease *state.Lease `json:"lease"`
	}
	data, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(data, &f) != nil || f.Lease == nil {
		return state.Lease{}
	}
	return *f.Lease
}

// reachAttempts is how many times checkReachable dials before giving up.
const reachAttempts = 3

// checkReachable dials the GitLab instance's host, so that a wrong address
// or a network that is down ends the run at once with a clear message
// instead of after every project's request has been retried. Behind a
// proxy it checks nothing: only the proxy can tell.
func checkReachable(ctx context.Context, baseURL string, wait time.Duration) error {
	u, err := url.Parse(baseURL)
	if err != nil {
		return fmt.Errorf("gitlab_base_url %q: %w", baseURL, err)
	}
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: u}); err != nil || p != nil {
		return nil
	}
	addr := u.Host
	if u.Port() == "" {
		port := "443"
		if u.Scheme == "http" {
			port = "80"
		}
		addr = net.JoinHostPort(u.Hostname(), port)
	}

	dialer := &net.Dialer{Timeout: 10 * time.Second}
	wait = min(wait, time.Second)
	for attempt := 1; ; attempt++ {
		conn, err := dialer.DialContext(ctx, "tcp", addr)
		if err == nil {
			conn.Close()
			return nil
		}
		if attempt == reachAttempts || ctx.Err() != nil {
			return fmt.Errorf("cannot reach GitLab at %s (gitlab_base_url) after %d attempts: %w; "+
				"check the address and the network", baseURL, attempt, err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}
