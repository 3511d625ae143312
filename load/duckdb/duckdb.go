// Package duckdb writes the sync's tables to a local DuckDB file, for people
// who run gitlab-sync without a cloud account.
//
// It owns the file: it creates the tables from their table.Def, adds the
// columns a newer Def brings, and upserts rows by id. It knows nothing of
// GitLab, of cursors or of BigQuery; table/ says what the tables hold and the
// caller says when to write them.
//
// Types map as follows: INT64 is BIGINT, STRING is VARCHAR, BOOL is BOOLEAN,
// DATE is DATE, a repeated column is a list (VARCHAR[], BIGINT[]), and
// TIMESTAMP is a plain TIMESTAMP that holds the instant in UTC. Plain
// TIMESTAMP, not TIMESTAMPTZ, keeps what is stored and what a query shows
// independent of the session's time zone; any time.Time is stored as its UTC
// instant and reads back as a time.Time in UTC.
package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	duckdbdriver "github.com/duckdb/duckdb-go/v2"
)

// DB is a DuckDB file holding the sync's tables. It implements
// gitlabsync.Destination. Its methods are safe for concurrent use; writes
// (Prepare and Upsert) run one at a time.
type DB struct {
	path string
	db   *sql.DB

	// write serializes Prepare and Upsert: DuckDB aborts a transaction that
	// updates a row another open transaction has updated.
	write sync.Mutex
}

// Open opens the DuckDB file at path, creating it when it does not exist.
// The directory that holds it must exist.
func Open(path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("open duckdb: empty path")
	}

	// DuckDB would report a missing directory as an I/O error on the file;
	// name the directory instead.
	dir := filepath.Dir(path)
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("open duckdb %s: directory %s does not exist", path, dir)
	case err != nil:
		return nil, fmt.Errorf("open duckdb %s: %w", path, err)
	case !info.IsDir():
		return nil, fmt.Errorf("open duckdb %s: %s is not a directory", path, dir)
	}

	connector, err := duckdbdriver.NewConnector(path, nil)
	if err != nil {
		return nil, fmt.Errorf("open duckdb %s: %w", path, err)
	}
	db := sql.OpenDB(connector)

	// sql.OpenDB connects lazily; connect once so that a file DuckDB cannot
	// use (locked by another process, not a database) fails here.
	if err := db.PingContext(context.Background()); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open duckdb %s: %w", path, err)
	}
	return &DB{path: path, db: db}, nil
}

// Close checkpoints and closes the file. Rows written by a successful Upsert
// are durable before Close; Close only folds the write-ahead log into the
// file.
func (db *DB) Close() error {
	if err := db.db.Close(); err != nil {
		return fmt.Errorf("close duckdb %s: %w", db.path, err)
	}
	return nil
}

// SQL returns the underlying database, for queries and tests. Writing through
// it bypasses the serialization of Prepare and Upsert.
func (db *DB) SQL() *sql.DB {
	return db.db
}
