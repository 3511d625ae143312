package duckdb

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	duckdbdriver "github.com/duckdb/duckdb-go/v2"

	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

// stagingTable names the rows of a batch inside the upsert statement.
const stagingTable = "batch_rows"

// Upsert writes rows to def's table, keyed by id, in one transaction: a row
// is inserted, or replaces the stored row with its id unless the stored row
// has a later def.VersionColumn. A NULL version counts as the earliest, so a
// row without one replaces only a stored row without one. When
// def.VersionColumn is "" the row written last wins. Rows of one batch that
// share an id are first reduced to the latest one (table.Dedupe). Every row
// written gets _synced_at set to the time of the call, in UTC. A failed
// batch writes nothing.
//
// When Upsert returns nil the transaction is committed to DuckDB's
// write-ahead log: the rows survive the process ending without Close.
// Writing the same batch twice leaves the same rows; only _synced_at moves.
// batchID only labels errors: the keyed upsert is what makes a repeated
// batch harmless.
func (db *DB) Upsert(ctx context.Context, def table.Def, batchID string, rows []table.Row) error {
	if err := db.upsert(ctx, def, rows); err != nil {
		return fmt.Errorf("upsert %d rows of batch %s into %s in %s: %w",
			len(rows), batchID, def.Name, db.path, err)
	}
	return nil
}

// upsert does the work of Upsert.
func (db *DB) upsert(ctx context.Context, def table.Def, rows []table.Row) error {
	cols, err := columnsOf(def)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}

	// Keep one row per id, so that the statement never meets an id twice.
	rows = table.Dedupe(rows)

	types, err := stagingTypes(cols[:len(cols)-1])
	if err != nil {
		return err
	}
	query := upsertSQL(def, cols, time.Now().UTC())

	db.write.Lock()
	defer db.write.Unlock()

	conn, err := db.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()

	return conn.Raw(func(driverConn any) error {
		return upsertOn(ctx, driverConn, query, types, cols[:len(cols)-1], rows)
	})
}

// upsertOn runs the upsert on one DuckDB connection. The batch goes through
// a query appender, which hands the rows to the statement as the table
// stagingTable without a round trip per row; BEGIN and COMMIT around it make
// the batch one transaction whatever the appender's flushes.
func upsertOn(
	ctx context.Context,
	driverConn any,
	query string,
	types []duckdbdriver.TypeInfo,
	cols []column,
	rows []table.Row,
) (err error) {
	conn, ok := driverConn.(driver.Conn)
	if !ok {
		return fmt.Errorf("connection is a %T, not a driver.Conn", driverConn)
	}
	execer, ok := driverConn.(driver.ExecerContext)
	if !ok {
		return fmt.Errorf("connection is a %T, not a driver.ExecerContext", driverConn)
	}

	// Open the transaction; roll it back on any error below.
	if _, err := execer.ExecContext(ctx, "BEGIN TRANSACTION", nil); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err == nil {
			return
		}
		if _, rbErr := execer.ExecContext(context.WithoutCancel(ctx), "ROLLBACK", nil); rbErr != nil {
			err = errors.Join(err, fmt.Errorf("rollback: %w", rbErr))
		}
	}()

	// Stage every row; closing the appender runs the upsert statement.
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	appender, err := duckdbdriver.NewQueryAppender(conn, query, stagingTable, types, names)
	if err != nil {
		return fmt.Errorf("duckdb.NewQueryAppender: %w", err)
	}
	discard := func() {
		// Clear first, or Close would run the statement on the staged rows.
		_ = appender.Clear()
		_ = appender.Close()
	}
	values := make([]driver.Value, len(cols))
	for _, r := range rows {
		if err := stagingValues(values, cols, r); err != nil {
			discard()
			return err
		}
		if err := appender.AppendRow(values...); err != nil {
			discard()
			return fmt.Errorf("stage row %d: %w", r.ID(), err)
		}
	}
	if err := appender.CloseWithCancel(ctx); err != nil {
		return fmt.Errorf("write rows: %w", err)
	}

	if _, err := execer.ExecContext(ctx, "COMMIT", nil); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// stagingValues fills values with the row's values as the appender takes
// them: dates become time.Time, the rest pass through.
func stagingValues(values []driver.Value, cols []column, r table.Row) error {
	vals := r.Values()
	if len(vals) != len(cols) {
		return fmt.Errorf("row %d: %d values for %d columns", r.ID(), len(vals), len(cols))
	}
	for i, v := range vals {
		if s, ok := v.(string); ok && cols[i].Type == table.Date && !cols[i].Repeated {
			d, err := time.Parse(time.DateOnly, s)
			if err != nil {
				return fmt.Errorf("row %d column %s: parse date %q: %w", r.ID(), cols[i].Name, s, err)
			}
			v = d
		}
		values[i] = v
	}
	return nil
}

// stagingTypes returns the appender's type for each column.
func stagingTypes(cols []column) ([]duckdbdriver.TypeInfo, error) {
	types := make([]duckdbdriver.TypeInfo, len(cols))
	for i, c := range cols {
		t, err := typeInfo(c)
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", c.Name, err)
		}
		types[i] = t
	}
	return types, nil
}

// driverTypes maps each column type to the driver's type of one value.
var driverTypes = map[table.Type]duckdbdriver.Type{
	table.Int64:     duckdbdriver.TYPE_BIGINT,
	table.String:    duckdbdriver.TYPE_VARCHAR,
	table.Bool:      duckdbdriver.TYPE_BOOLEAN,
	table.Timestamp: duckdbdriver.TYPE_TIMESTAMP,
	table.Date:      duckdbdriver.TYPE_DATE,
}

// typeInfo returns the driver's type of a column.
func typeInfo(c column) (duckdbdriver.TypeInfo, error) {
	t, ok := driverTypes[c.Type]
	if !ok {
		return nil, fmt.Errorf("unknown type %q", c.Type)
	}
	info, err := duckdbdriver.NewTypeInfo(t)
	if err != nil {
		return nil, fmt.Errorf("duckdb.NewTypeInfo: %w", err)
	}
	if !c.Repeated {
		return info, nil
	}
	list, err := duckdbdriver.NewListInfo(info)
	if err != nil {
		return nil, fmt.Errorf("duckdb.NewListInfo: %w", err)
	}
	return list, nil
}

// upsertSQL returns the statement that moves the staged rows into the table:
//
//	INSERT INTO t (id, …, _synced_at) SELECT id, …, TIMESTAMP '…' FROM batch_rows
//	ON CONFLICT (id) DO UPDATE SET … = excluded.…
//	WHERE excluded.v >= t.v OR t.v IS NULL
//
// cols ends with _synced_at, which takes the value syncedAt.
func upsertSQL(def table.Def, cols []column, syncedAt time.Time) string {
	t := ident(def.Name)
	names := make([]string, len(cols))
	selects := make([]string, len(cols))
	var sets []string
	for i, c := range cols {
		names[i] = ident(c.Name)
		selects[i] = ident(c.Name)
		if c.Name == table.SyncedAt {
			selects[i] = "TIMESTAMP '" + syncedAt.Format("2006-01-02 15:04:05.999999") + "'"
		}
		if !strings.EqualFold(c.Name, table.Key) {
			sets = append(sets, fmt.Sprintf("%s = excluded.%s", ident(c.Name), ident(c.Name)))
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s)\n", t, strings.Join(names, ", "))
	fmt.Fprintf(&b, "SELECT %s FROM %s\n", strings.Join(selects, ", "), stagingTable)
	fmt.Fprintf(&b, "ON CONFLICT (%s) DO UPDATE SET %s", ident(table.Key), strings.Join(sets, ", "))
	if v := def.VersionColumn; v != "" {
		v = ident(v)
		fmt.Fprintf(&b, "\nWHERE excluded.%s >= %s.%s OR %s.%s IS NULL", v, t, v, t, v)
	}
	return b.String()
}
