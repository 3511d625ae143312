package duckdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

// column is a column of a DuckDB table, table.SyncedAt included.
type column struct {
	table.Column

	// sqlType is the DuckDB type, spelled as duckdb_columns() reports it.
	sqlType string
}

// baseTypes maps each column type to the DuckDB type of one value.
var baseTypes = map[table.Type]string{
	table.Int64:     "BIGINT",
	table.String:    "VARCHAR",
	table.Bool:      "BOOLEAN",
	table.Timestamp: "TIMESTAMP",
	table.Date:      "DATE",
}

// columnsOf checks def and returns its columns followed by _synced_at.
func columnsOf(def table.Def) ([]column, error) {
	if def.Name == "" {
		return nil, errors.New("table has no name")
	}

	all := make([]table.Column, 0, len(def.Columns)+1)
	all = append(all, def.Columns...)
	all = append(all, table.Column{Name: table.SyncedAt, Type: table.Timestamp})

	cols := make([]column, 0, len(all))
	seen := make(map[string]bool, len(all))
	for _, c := range all {
		base, ok := baseTypes[c.Type]
		if !ok {
			return nil, fmt.Errorf("column %s: unknown type %q", c.Name, c.Type)
		}
		switch {
		case c.Name == "":
			return nil, errors.New("column with no name")
		case seen[strings.ToLower(c.Name)] && c.Name == table.SyncedAt:
			return nil, fmt.Errorf("column %s: set by the writer, not part of a Def", c.Name)
		case seen[strings.ToLower(c.Name)]:
			return nil, fmt.Errorf("column %s: defined twice", c.Name)
		}
		seen[strings.ToLower(c.Name)] = true

		if c.Repeated {
			base += "[]"
		}
		cols = append(cols, column{Column: c, sqlType: base})
	}

	// The key and the version column must be single values of the right type.
	if i := indexOf(cols, table.Key); i < 0 || cols[i].sqlType != "BIGINT" {
		return nil, fmt.Errorf("key column %s: missing or not INT64", table.Key)
	}
	if v := def.VersionColumn; v != "" {
		if i := indexOf(cols, v); i < 0 || cols[i].sqlType != "TIMESTAMP" {
			return nil, fmt.Errorf("version column %s: missing or not TIMESTAMP", v)
		}
	}
	return cols, nil
}

// indexOf returns the position of the column named name, or -1.
func indexOf(cols []column, name string) int {
	for i, c := range cols {
		if strings.EqualFold(c.Name, name) {
			return i
		}
	}
	return -1
}

// Prepare creates the tables of defs that do not exist, and adds to the
// existing ones the columns their Def has and they lack (_synced_at
// included). It drops nothing and changes no column: a column whose type
// differs from its Def is an error. Each table is prepared in its own
// transaction, so calling Prepare again after an error is safe.
func (db *DB) Prepare(ctx context.Context, defs []table.Def) error {
	db.write.Lock()
	defer db.write.Unlock()

	for _, def := range defs {
		if err := db.prepare(ctx, def); err != nil {
			return fmt.Errorf("prepare table %s in %s: %w", def.Name, db.path, err)
		}
	}
	return nil
}

// prepare creates or extends one table.
func (db *DB) prepare(ctx context.Context, def table.Def) error {
	cols, err := columnsOf(def)
	if err != nil {
		return err
	}

	tx, err := db.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()

	// Create the table with every column, when it is missing.
	if _, err := tx.ExecContext(ctx, createTableSQL(def.Name, cols)); err != nil {
		return fmt.Errorf("create table: %w", err)
	}

	// Add the columns an older table lacks; refuse a column of another type.
	have, err := existingColumns(ctx, tx, def.Name)
	if err != nil {
		return err
	}
	for _, c := range cols {
		got, ok := have[strings.ToLower(c.Name)]
		if ok && got != c.sqlType {
			return fmt.Errorf("column %s is %s, want %s", c.Name, got, c.sqlType)
		}
		if ok {
			continue
		}
		q := fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s", ident(def.Name), ident(c.Name), c.sqlType)
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("add column %s %s: %w", c.Name, c.sqlType, err)
		}
	}

	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// createTableSQL returns the CREATE TABLE IF NOT EXISTS statement for a
// table. Required columns are NOT NULL here only: a column added later to a
// table with rows cannot be.
func createTableSQL(name string, cols []column) string {
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE TABLE IF NOT EXISTS %s (", ident(name))
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %s", ident(c.Name), c.sqlType)
		switch {
		case strings.EqualFold(c.Name, table.Key):
			b.WriteString(" PRIMARY KEY")
		case c.Required:
			b.WriteString(" NOT NULL")
		}
	}
	b.WriteString(")")
	return b.String()
}

// existingColumns returns the lower-cased names and the types of the
// columns of table name in the main schema of the open file.
func existingColumns(ctx context.Context, tx *sql.Tx, name string) (map[string]string, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT column_name, data_type
		FROM duckdb_columns()
		WHERE database_name = current_database() AND schema_name = 'main' AND table_name = ?`,
		name)
	if err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	defer rows.Close()

	have := make(map[string]string)
	for rows.Next() {
		var col, typ string
		if err := rows.Scan(&col, &typ); err != nil {
			return nil, fmt.Errorf("list columns: %w", err)
		}
		have[strings.ToLower(col)] = typ
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list columns: %w", err)
	}
	return have, nil
}

// ident quotes a table or column name for DuckDB SQL.
func ident(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}
