// Package load writes the sync's rows to BigQuery: it creates the dataset
// and tables (package table defines them), adds columns when a table grows,
// and upserts each batch by id through a staging table and a MERGE.
//
// It knows nothing of GitLab or of cursors; the caller moves a cursor only
// after Upsert returns nil. DuckDB, for local runs, lives in load/duckdb so
// that the Cloud Function never links it.
package load

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"cloud.google.com/go/bigquery"
	"google.golang.org/api/googleapi"

	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

// StagingPrefix starts the name of each table's staging table, which holds
// the last batch merged. Each connection has its own, so two connections
// writing one dataset never merge each other's batches.
const StagingPrefix = "_staging_"

// BigQuery writes tables into one dataset.
type BigQuery struct {
	client   *bigquery.Client
	dataset  string
	location string

	// Connection names this writer's staging tables (default "default").
	Connection string

	// jobLocation is where the dataset lives, learnt by Prepare: jobs must
	// run there, whatever location a missing dataset would be created in.
	jobLocation string

	// Now stamps _synced_at; nil means time.Now.
	Now func() time.Time
}

// NewBigQuery returns a writer into dataset (created in location when
// missing) of the client's project.
func NewBigQuery(client *bigquery.Client, dataset, location string) *BigQuery {
	return &BigQuery{client: client, dataset: dataset, location: location}
}

// Schema returns the BigQuery schema of a table, _synced_at included.
func Schema(def table.Def) bigquery.Schema {
	s := make(bigquery.Schema, 0, len(def.Columns)+1)
	for _, c := range def.Columns {
		s = append(s, &bigquery.FieldSchema{
			Name:        c.Name,
			Type:        fieldType(c.Type),
			Repeated:    c.Repeated,
			Required:    c.Required && !c.Repeated,
			Description: c.Description,
		})
	}
	return append(s, &bigquery.FieldSchema{
		Name:        table.SyncedAt,
		Type:        bigquery.TimestampFieldType,
		Description: "when the sync last wrote this row",
	})
}

func fieldType(t table.Type) bigquery.FieldType {
	switch t {
	case table.Int64:
		return bigquery.IntegerFieldType
	case table.Bool:
		return bigquery.BooleanFieldType
	case table.Timestamp:
		return bigquery.TimestampFieldType
	case table.Date:
		return bigquery.DateFieldType
	}
	return bigquery.StringFieldType
}

// Prepare creates the dataset and the tables when missing, and adds the
// columns a table lacks. Columns are never dropped or retyped.
func (b *BigQuery) Prepare(ctx context.Context, defs []table.Def) error {
	ds := b.client.Dataset(b.dataset)
	b.jobLocation = b.location
	if md, err := ds.Metadata(ctx); err == nil {
		if md.Location != "" {
			b.jobLocation = md.Location
		}
	} else {
		if !isNotFound(err) {
			return fmt.Errorf("read dataset %s: %w", b.dataset, err)
		}
		md := &bigquery.DatasetMetadata{
			Location:    b.location,
			Description: "GitLab projects, merge requests and users, written by gitlabsync",
		}
		if err := ds.Create(ctx, md); err != nil && !isAlreadyExists(err) {
			return fmt.Errorf("create dataset %s in %s: %w", b.dataset, b.location, err)
		}
	}
	for _, def := range defs {
		if err := b.prepareTable(ctx, def); err != nil {
			return err
		}
	}
	return nil
}

func (b *BigQuery) prepareTable(ctx context.Context, def table.Def) error {
	t := b.client.Dataset(b.dataset).Table(def.Name)
	want := Schema(def)
	md, err := t.Metadata(ctx)
	if err != nil {
		if !isNotFound(err) {
			return fmt.Errorf("read table %s.%s: %w", b.dataset, def.Name, err)
		}
		tm := &bigquery.TableMetadata{
			Schema:      want,
			Description: "written by gitlabsync, one row per " + strings.TrimSuffix(def.Name, "s") + " id",
		}
		if def.PartitionBy != "" {
			tm.TimePartitioning = &bigquery.TimePartitioning{Type: bigquery.MonthPartitioningType, Field: def.PartitionBy}
		}
		if len(def.ClusterBy) > 0 {
			tm.Clustering = &bigquery.Clustering{Fields: def.ClusterBy}
		}
		if err := t.Create(ctx, tm); err != nil && !isAlreadyExists(err) {
			return fmt.Errorf("create table %s.%s: %w", b.dataset, def.Name, err)
		}
		return nil
	}

	// Add what the definition has and the table lacks.
	have := make(map[string]bool, len(md.Schema))
	for _, f := range md.Schema {
		have[strings.ToLower(f.Name)] = true
	}
	grown := append(bigquery.Schema{}, md.Schema...)
	for _, f := range want {
		if !have[strings.ToLower(f.Name)] {
			added := *f
			added.Required = false // BigQuery adds only NULLABLE or REPEATED columns
			grown = append(grown, &added)
		}
	}
	if len(grown) == len(md.Schema) {
		return nil
	}
	if _, err := t.Update(ctx, bigquery.TableMetadataToUpdate{Schema: grown}, md.ETag); err != nil {
		return fmt.Errorf("add %d columns to %s.%s: %w", len(grown)-len(md.Schema), b.dataset, def.Name, err)
	}
	return nil
}

// Upsert writes rows into the table keyed by id: it keeps the latest version
// of each id in the batch, loads the batch into the table's staging table
// (one load job, WRITE_TRUNCATE) and MERGEs the staging table into the
// table. A stored row is replaced unless it has a later version.
//
// Both jobs get ids derived from batchID and the rows, so a retried step is
// recognised: a job that already ran is waited for, not run again.
func (b *BigQuery) Upsert(ctx context.Context, def table.Def, batchID string, rows []table.Row) error {
	rows = table.Dedupe(rows)
	if len(rows) == 0 {
		return nil
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	body, err := encodeRows(def, rows, now().UTC())
	if err != nil {
		return fmt.Errorf("encode %d rows of %s: %w", len(rows), def.Name, err)
	}
	sum := sha256.Sum256(body)
	jobBase := jobID(batchID, hex.EncodeToString(sum[:6]))

	// Load the batch into the staging table.
	staging := b.client.Dataset(b.dataset).Table(b.stagingName(def))
	src := bigquery.NewReaderSource(bytes.NewReader(body))
	src.SourceFormat = bigquery.JSON
	src.Schema = Schema(def)
	loader := staging.LoaderFrom(src)
	loader.WriteDisposition = bigquery.WriteTruncate
	loader.CreateDisposition = bigquery.CreateIfNeeded
	loader.JobID = jobBase + "_load"
	loader.Location = b.jobLocation
	if err := b.runJob(ctx, loader.JobID, func() (*bigquery.Job, error) { return loader.Run(ctx) }); err != nil {
		return fmt.Errorf("load %d rows into %s.%s: %w", len(rows), b.dataset, staging.TableID, err)
	}

	// Merge the staging table into the table.
	q := b.client.Query(MergeSQL(b.client.Project(), b.dataset, staging.TableID, def))
	q.JobID = jobBase + "_merge"
	q.Location = b.jobLocation
	if err := b.runJob(ctx, q.JobID, func() (*bigquery.Job, error) { return q.Run(ctx) }); err != nil {
		return fmt.Errorf("merge %d rows into %s.%s: %w", len(rows), b.dataset, def.Name, err)
	}
	return nil
}

// runJob starts a job and waits for it. When a job with this id exists
// already (a retried step), it waits for that one instead.
func (b *BigQuery) runJob(ctx context.Context, id string, start func() (*bigquery.Job, error)) error {
	job, err := start()
	if isAlreadyExists(err) {
		job, err = b.client.JobFromIDLocation(ctx, id, b.jobLocation)
	}
	if err != nil {
		return fmt.Errorf("start job %s: %w", id, err)
	}
	status, err := job.Wait(ctx)
	if err != nil {
		return fmt.Errorf("wait for job %s: %w", id, err)
	}
	if err := status.Err(); err != nil {
		return fmt.Errorf("job %s: %w", id, err)
	}
	return nil
}

// stagingName returns the name of the staging table of def for this
// writer's connection.
func (b *BigQuery) stagingName(def table.Def) string {
	conn := b.Connection
	if conn == "" {
		conn = "default"
	}
	return StagingPrefix + def.Name + "_" + jobIDUnsafe.ReplaceAllString(conn, "_")
}

// MergeSQL returns the MERGE that upserts the staging table into def.
func MergeSQL(project, dataset, staging string, def table.Def) string {
	target := fmt.Sprintf("`%s.%s.%s`", project, dataset, def.Name)
	source := fmt.Sprintf("`%s.%s.%s`", project, dataset, staging)

	cols := make([]string, 0, len(def.Columns)+1)
	for _, c := range def.Columns {
		cols = append(cols, c.Name)
	}
	cols = append(cols, table.SyncedAt)

	sets := make([]string, 0, len(cols))
	vals := make([]string, 0, len(cols))
	for _, c := range cols {
		if c != table.Key {
			sets = append(sets, fmt.Sprintf("%s = S.%s", c, c))
		}
		vals = append(vals, "S."+c)
	}
	matched := "WHEN MATCHED"
	if v := def.VersionColumn; v != "" {
		matched += fmt.Sprintf(" AND (T.%s IS NULL OR S.%s >= T.%s)", v, v, v)
	}
	return fmt.Sprintf("MERGE %s T\nUSING %s S\nON T.%s = S.%s\n%s THEN UPDATE SET %s\nWHEN NOT MATCHED THEN INSERT (%s) VALUES (%s)",
		target, source, table.Key, table.Key, matched,
		strings.Join(sets, ", "), strings.Join(cols, ", "), strings.Join(vals, ", "))
}

// encodeRows writes rows as newline-delimited JSON, as a load job reads it.
func encodeRows(def table.Def, rows []table.Row, syncedAt time.Time) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	obj := make(map[string]any, len(def.Columns)+1)
	for _, r := range rows {
		vals := r.Values()
		if len(vals) != len(def.Columns) {
			return nil, fmt.Errorf("row %d has %d values for %d columns", r.ID(), len(vals), len(def.Columns))
		}
		clear(obj)
		for i, c := range def.Columns {
			obj[c.Name] = jsonValue(vals[i])
		}
		obj[table.SyncedAt] = jsonValue(syncedAt)
		if err := enc.Encode(obj); err != nil {
			return nil, fmt.Errorf("row %d: %w", r.ID(), err)
		}
	}
	return buf.Bytes(), nil
}

// jsonValue turns a row value into what a JSON load job reads.
func jsonValue(v any) any {
	if t, ok := v.(time.Time); ok {
		return t.UTC().Format("2006-01-02 15:04:05.000000") + " UTC"
	}
	return v
}

var jobIDUnsafe = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

// jobID makes a BigQuery job id (letters, digits, _ and -, at most 1,024).
func jobID(batchID, suffix string) string {
	id := "gitlabsync_" + jobIDUnsafe.ReplaceAllString(batchID, "_") + "_" + suffix
	if len(id) > 1000 {
		id = id[:1000]
	}
	return id
}

func isNotFound(err error) bool {
	var e *googleapi.Error
	return errors.As(err, &e) && e.Code == http.StatusNotFound
}

func isAlreadyExists(err error) bool {
	var e *googleapi.Error
	return errors.As(err, &e) && e.Code == http.StatusConflict
}
