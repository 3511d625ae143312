// Package table defines the three tables the sync writes: their names,
// columns, types and keys, and the Go rows that fill them.
//
// It is the one place both sides of a sync agree on: gitlab/ turns GitLab's
// answers into these rows and load/ writes them to BigQuery or DuckDB.
// Neither of those imports the other; both import this package.
package table

import (
	"time"
)

// Names of the tables, as they appear in BigQuery and DuckDB.
const (
	Projects      = "projects"
	MergeRequests = "merge_requests"
	Users         = "users"
)

// Names lists every table in the order a run syncs them.
var Names = []string{Projects, MergeRequests, Users}

// Type is a column's type, spelled as in BigQuery standard SQL.
type Type string

// Column types used by the tables.
const (
	Int64     Type = "INT64"
	String    Type = "STRING"
	Bool      Type = "BOOL"
	Timestamp Type = "TIMESTAMP"
	Date      Type = "DATE"
)

// Column is one column of a table.
type Column struct {
	Name string
	Type Type

	// Repeated makes the column an array of Type (ARRAY<Type> in BigQuery,
	// Type[] in DuckDB). A repeated column is never NULL, only empty.
	Repeated bool

	// Required marks a column that is never NULL.
	Required bool

	// Description is shown in the BigQuery schema.
	Description string
}

// SyncedAt is the column every table gets: when the row was last written.
const SyncedAt = "_synced_at"

// Def describes a table. Its key is always the "id" column.
type Def struct {
	Name    string
	Columns []Column

	// PartitionBy is a TIMESTAMP column to partition the BigQuery table by
	// month, or "" for none.
	PartitionBy string

	// ClusterBy lists the columns BigQuery clusters the table by; clustering
	// by id keeps the upsert's MERGE from scanning the whole table.
	ClusterBy []string

	// VersionColumn names the TIMESTAMP column whose larger value wins when
	// two versions of a row meet, or "" when the row written last wins.
	VersionColumn string
}

// Key is the name of the column every table is keyed by.
const Key = "id"

// Row is one row of a table, ready to be written.
type Row interface {
	// ID is the row's key.
	ID() int64

	// Version orders two versions of the same row: the later one wins.
	// A zero time means the row carries no version; then the row written
	// last wins.
	Version() time.Time

	// Values returns the row's values in the order of its Def's Columns
	// (without _synced_at). NULL is nil; timestamps are time.Time in UTC;
	// dates are strings "YYYY-MM-DD"; repeated columns are []int64 or
	// []string.
	Values() []any
}

// ByName returns the definition of the table with the given name.
func ByName(name string) (Def, bool) {
	switch name {
	case Projects:
		return ProjectsDef, true
	case MergeRequests:
		return MergeRequestsDef, true
	case Users:
		return UsersDef, true
	}
	return Def{}, false
}

// Dedupe keeps one row per id, the one with the latest Version (the later
// one in the slice when versions tie or are zero). It keeps the order of first
// appearance, so its result does not depend on map iteration.
func Dedupe(rows []Row) []Row {
	index := make(map[int64]int, len(rows))
	out := rows[:0:0]
	for _, r := range rows {
		i, ok := index[r.ID()]
		if !ok {
			index[r.ID()] = len(out)
			out = append(out, r)
			continue
		}
		if !r.Version().Before(out[i].Version()) {
			out[i] = r
		}
	}
	return out
}

// nullString returns nil for "" so that an absent text is NULL, not empty.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nullTime returns nil for a nil or zero time, else the time in UTC.
func nullTime(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return t.UTC()
}

// nullInt returns nil for a nil pointer.
func nullInt(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// nonNil returns an empty slice for nil, since repeated columns are never NULL.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
