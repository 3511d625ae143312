// Package gitlabsync syncs GitLab projects, merge requests and users into
// BigQuery (or, from cmd/gitlab-sync, a DuckDB file), incrementally.
//
// The package owns the sync loop, the configuration and the run summary, and
// the small interfaces the loop consumes (Source, Destination, Store). The
// adapters live in gitlab/ (reads GitLab), load/ (writes BigQuery; DuckDB in
// load/duckdb) and state/ (Firestore or a JSON file); none imports another.
// function.go wires them into the Cloud Function SyncGitLab.
package gitlabsync

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

// Tunables of the sync loop.
const (
	// DefaultBatchSize is how many rows go into one upsert, and so how often
	// a long table checkpoints. BigQuery allows 1,500 load jobs per table per
	// day; at 5,000 rows a batch, a 1,000,000-row backfill takes 200.
	DefaultBatchSize = 5000

	// Overlap is how far before its cursor a table is read again. GitLab
	// stamps updated_at before its transaction commits, so a change can
	// become visible after later ones; re-reading a few minutes catches it.
	// Rows re-read unchanged are recognised (state.Cursor.Seen) and skipped.
	Overlap = 5 * time.Minute

	// maxSeen bounds the rows a cursor remembers from its overlap.
	maxSeen = 1000

	// leaseMargin is added to the run's time budget to make the lease's
	// lifetime, so that a lease left by a crashed run expires on its own
	// before the next hourly call. A run's context ends at its budget plus
	// 5 minutes (function.go), so a live run never outlasts its lease.
	leaseMargin = 6 * time.Minute

	// progressEvery is how often a long table logs its progress.
	progressEvery = 10 * time.Second
)

// Request narrows one run. It can never change where data comes from or
// goes to.
type Request struct {
	// Tables lists the tables to sync, a subset of those enabled; empty
	// means all of them.
	Tables []string `json:"tables,omitempty"`

	// Force runs even when sync_interval_hours has not passed.
	Force bool `json:"force,omitempty"`

	// FullRefresh lists tables to read from the beginning (or start_date)
	// instead of from their cursors; rows are still upserted.
	FullRefresh []string `json:"full_refresh,omitempty"`
}

// Engine runs syncs of one connection.
type Engine struct {
	Config Config
	Source Source
	Dest   Destination
	Store  Store

	// Logger receives one line per table and project; nil discards.
	Logger *slog.Logger

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// BatchSize is the number of rows per upsert and checkpoint
	// (DefaultBatchSize when 0).
	BatchSize int
}

// ErrUnknownTable is returned by Run for a Request naming a table that is
// not one of projects, merge_requests, users.
var ErrUnknownTable = errors.New("unknown table")

// Validate checks a request against the configuration.
func (r Request) Validate(cfg Config) error {
	enabled := cfg.Tables()
	for _, list := range [][]string{r.Tables, r.FullRefresh} {
		for _, t := range list {
			if _, ok := table.ByName(t); !ok {
				return fmt.Errorf("%w %q: want projects, merge_requests or users", ErrUnknownTable, t)
			}
			if !slices.Contains(enabled, t) {
				return fmt.Errorf("table %q is disabled by its sync_%s_table flag", t, t)
			}
		}
	}
	if slices.Contains(r.FullRefresh, table.Users) {
		return errors.New("full_refresh of users: users have no cursor; a full refresh of merge_requests fetches every user they refer to again")
	}
	return nil
}

// Run syncs the tables the request names, in the order projects,
// merge_requests, users. It returns an error only when the run could not
// start (the lease is held: *state.HeldError, or the state could not be
// read); every failure after that is reported in the summary.
func (e *Engine) Run(ctx context.Context, req Request) (*Summary, error) {
	if err := req.Validate(e.Config); err != nil {
		return nil, err
	}
	r := &run{Engine: e, req: req, log: loggerOr(e.Logger)}
	return r.do(ctx)
}

// run is the state of one Engine.Run.
type run struct {
	*Engine
	req      Request
	log      *slog.Logger
	id       string
	started  time.Time
	deadline time.Time
	readCtx  context.Context // ends with the time budget: GitLab reads stop there
	st       state.State
	sum      *Summary
	projects []resolved // configured projects, in order
	pending  map[int64]bool
	fatal    error // a failure that ends the whole run (401)
	batches  int   // batches written so far, for batch ids
}

// resolved is a configured project and what resolving it gave.
type resolved struct {
	ref      string
	row      table.Project
	err      error
	requests int64
}

func (e *Engine) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Engine) batchSize() int {
	if e.BatchSize > 0 {
		return e.BatchSize
	}
	return DefaultBatchSize
}

func newRunID(t time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

func (r *run) do(ctx context.Context) (*Summary, error) {
	r.started = r.now()
	r.id = newRunID(r.started)
	r.deadline = r.started.Add(r.Config.MaxRunTime)
	r.log = r.log.With(logRun, r.id)
	r.sum = &Summary{RunID: r.id, ConnectionID: r.Config.ConnectionID, Status: StatusOK, StartedAt: r.started.UTC()}
	requestsAtStart := r.Source.Requests()

	// Take the lease, and give it back however the run ends.
	if err := r.Store.Acquire(ctx, r.id, r.started, r.Config.MaxRunTime+leaseMargin); err != nil {
		return nil, err
	}
	defer func() {
		// The request's context may be done; the lease must go anyway.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := r.Store.Release(rctx, r.id); err != nil {
			r.log.Warn("release the run lease; it expires on its own", logError, err.Error())
		}
	}()

	// Reads from GitLab end with the budget; writes get the caller's context,
	// which leaves them time to land and checkpoint.
	readCtx, cancelRead := context.WithTimeout(ctx, r.Config.MaxRunTime)
	defer cancelRead()
	r.readCtx = readCtx

	st, err := r.Store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the sync state: %w", err)
	}
	r.st = st

	// Skip a run that comes too soon after the last successful one.
	if reason := r.tooSoon(); reason != "" {
		r.sum.Status = StatusSkipped
		r.sum.SkipReason = reason
		r.finish(requestsAtStart)
		return r.sum, nil
	}

	tables := r.req.Tables
	if len(tables) == 0 {
		tables = r.Config.Tables()
	}
	defs := make([]table.Def, 0, len(tables))
	for _, name := range table.Names {
		if slices.Contains(tables, name) {
			def, _ := table.ByName(name)
			defs = append(defs, def)
		}
	}
	if err := r.Dest.Prepare(ctx, defs); err != nil {
		r.sum.Status = StatusFailed
		r.sum.Error = fmt.Sprintf("prepare tables: %v", err)
		r.finish(requestsAtStart)
		r.log.Error("prepare tables", logError, err.Error())
		return r.sum, nil
	}

	r.pending = make(map[int64]bool, len(st.PendingUsers))
	for _, id := range st.PendingUsers {
		r.pending[id] = true
	}
	if slices.Contains(tables, table.Projects) || slices.Contains(tables, table.MergeRequests) {
		r.resolveProjects(r.readCtx)
		r.checkSomeProjectReadable()
	}
	for _, def := range defs {
		r.syncTable(ctx, def)
	}
	if r.fatal != nil {
		r.sum.Status = StatusFailed
		r.sum.Error = r.fatal.Error()
	}

	// Only a complete, clean run counts for sync_interval_hours.
	if r.sum.Status == StatusOK && !r.sum.More && len(r.req.Tables) == 0 {
		if err := r.Store.Save(ctx, r.id, state.Checkpoint{LastSuccess: r.started.UTC()}); err != nil {
			r.log.Warn("record the successful run", logError, err.Error())
		}
	}
	r.finish(requestsAtStart)
	return r.sum, nil
}

// syncTable syncs one table and adds its summary to the run's.
func (r *run) syncTable(ctx context.Context, def table.Def) {
	ts := &TableSummary{Table: def.Name, Status: StatusOK, started: r.now(),
		FullRefresh: slices.Contains(r.req.FullRefresh, def.Name)}
	r.sum.Tables = append(r.sum.Tables, ts)
	if r.fatal != nil {
		ts.Status, ts.Error = StatusFailed, "not run: "+r.fatal.Error()
		return
	}
	before := r.Source.Requests()
	switch def.Name {
	case table.Projects:
		r.syncProjects(ctx, ts)
	case table.MergeRequests:
		r.syncMergeRequests(ctx, ts)
	case table.Users:
		r.syncUsers(ctx, ts)
	}
	ts.Requests += r.Source.Requests() - before
	if def.Name == table.Projects {
		// Resolving the projects served the projects table.
		for _, p := range ts.Projects {
			ts.Requests += p.Requests
		}
	}
	ts.DurationMS = r.now().Sub(ts.started).Milliseconds()
	r.sum.RowsWritten += ts.RowsWritten
	r.sum.More = r.sum.More || ts.More
	if ts.Status == StatusFailed {
		r.sum.Status = StatusFailed
	}
	r.logTable(ts)
}

// tooSoon returns why the run should be skipped, or "".
func (r *run) tooSoon() string {
	interval := r.Config.SyncInterval
	last := r.st.LastSuccess
	// A call that names tables asks for them now.
	if r.req.Force || len(r.req.Tables) > 0 || len(r.req.FullRefresh) > 0 || interval <= 0 || last.IsZero() {
		return ""
	}
	// Scheduled runs drift by seconds to minutes; allow a tenth of the
	// interval (at most 5 minutes) so an hourly run is not skipped for
	// starting a minute early.
	slack := min(interval/10, 5*time.Minute)
	next := last.Add(interval - slack)
	if r.started.Before(next) {
		return fmt.Sprintf("the last successful run started at %s, less than sync_interval_hours (%s) ago; next run after %s, or call with force",
			last.UTC().Format(time.RFC3339), interval, next.UTC().Format(time.RFC3339))
	}
	return ""
}

func (r *run) finish(requestsAtStart int64) {
	end := r.now()
	r.sum.FinishedAt = end.UTC()
	r.sum.DurationMS = end.Sub(r.started).Milliseconds()
	r.sum.Requests = r.Source.Requests() - requestsAtStart
	if r.sum.Tables == nil {
		r.sum.Tables = []*TableSummary{}
	}
	level := slog.LevelInfo
	if r.sum.Status == StatusFailed {
		level = slog.LevelError
	}
	attrs := []any{logStatus, r.sum.Status, logRows, r.sum.RowsWritten, logRequests, r.sum.Requests,
		"more", r.sum.More, logDuration, r.sum.DurationMS}
	if r.sum.SkipReason != "" {
		attrs = append(attrs, "reason", r.sum.SkipReason)
	}
	r.log.Log(context.Background(), level, "run "+r.sum.Status, attrs...)
}

func (r *run) logTable(ts *TableSummary) {
	level := slog.LevelInfo
	attrs := []any{logTable, ts.Table, logStatus, ts.Status, logRows, ts.RowsWritten,
		logRequests, ts.Requests, logDuration, ts.DurationMS, "more", ts.More}
	if ts.Error != "" {
		level = slog.LevelError
		attrs = append(attrs, logError, ts.Error)
	}
	r.log.Log(context.Background(), level, ts.Table+" "+ts.Status, attrs...)
}

// overBudget reports whether the run's time budget is spent.
func (r *run) overBudget() bool { return !r.now().Before(r.deadline) }

// Reasons a configured project is left out of a run without failing it.
var (
	errOutOfTime = errors.New("not reached: max_run_minutes spent")
	errDuplicate = errors.New("listed twice in gitlab_project_ids")
)

// resolveProjects fetches each configured project once: its numeric id for
// the cursors, its row for the projects table.
func (r *run) resolveProjects(ctx context.Context) {
	first := map[int64]string{}
	for _, ref := range r.Config.Projects {
		if r.fatal != nil {
			r.projects = append(r.projects, resolved{ref: ref, err: r.fatal})
			continue
		}
		if r.overBudget() {
			r.projects = append(r.projects, resolved{ref: ref, err: errOutOfTime})
			continue
		}
		before := r.Source.Requests()
		p, err := r.Source.Project(ctx, ref)
		if gitlab.ClassifyError(err) == gitlab.FailRun {
			r.fatal = err
		}
		if ctx.Err() != nil && err != nil {
			err = errOutOfTime
		}
		if err == nil {
			if other, ok := first[p.ProjectID]; ok {
				err = fmt.Errorf("%w: same project as %q", errDuplicate, other)
			}
			first[p.ProjectID] = ref
		}
		r.projects = append(r.projects, resolved{ref: ref, row: p, err: err, requests: r.Source.Requests() - before})
	}
}

// checkSomeProjectReadable fails the run when GitLab refused every
// configured project: a wrong gitlab_base_url (a missing subpath) or a token
// without access looks exactly like that, and must not pass for a quiet,
// successful run.
func (r *run) checkSomeProjectReadable() {
	if r.fatal != nil || len(r.projects) == 0 {
		return
	}
	for _, p := range r.projects {
		if p.err == nil || gitlab.ClassifyError(p.err) != gitlab.SkipProject {
			return
		}
	}
	r.fatal = fmt.Errorf("none of the %d configured projects could be read (403/404): check gitlab_base_url (with its subpath, if GitLab lives under one), gitlab_project_ids, and that the token can see the projects",
		len(r.projects))
}

// projectFailure fills a project summary from the error that kept it out of
// the table and says whether the project was only skipped.
func (r *run) projectFailure(ts *TableSummary, ps *ProjectSummary, err error) (skipped bool) {
	ps.Reason = err.Error()
	switch {
	case errors.Is(err, errOutOfTime):
		ts.More, ts.StopReason = true, "max_run_minutes"
	case errors.Is(err, errDuplicate), gitlab.ClassifyError(err) == gitlab.SkipProject:
	default:
		ps.Status = StatusFailed
		return false
	}
	ps.Status = StatusSkipped
	return true
}

// syncProjects writes the configured projects that changed since their
// cursor. Their rows came with resolving them.
func (r *run) syncProjects(ctx context.Context, ts *TableSummary) {
	full := ts.FullRefresh
	var rows []table.Row
	cursors := map[state.Key]state.Cursor{}
	for _, p := range r.projects {
		ps := &ProjectSummary{Project: p.ref, Status: StatusOK, Requests: p.requests}
		ts.Projects = append(ts.Projects, ps)
		if p.err != nil {
			if !r.projectFailure(ts, ps, p.err) {
				ts.Status = StatusFailed
			}
			continue
		}
		ps.ProjectID = p.row.ProjectID
		key := state.Key{Table: table.Projects, ProjectID: p.row.ProjectID}
		old := r.st.Cursors[key]
		ps.CursorBefore = formatCursor(old.UpdatedAt)
		ps.CursorAfter = ps.CursorBefore
		version := p.row.Version()
		if !full && !old.UpdatedAt.IsZero() && version.Equal(old.UpdatedAt) {
			continue // unchanged since the last run
		}
		if r.Config.MaxRecordsPerSync > 0 && len(rows) >= r.Config.MaxRecordsPerSync {
			ts.More, ts.StopReason = true, "max_records_per_sync"
			continue
		}
		rows = append(rows, p.row)
		cursors[key] = state.Cursor{UpdatedAt: version}
		ps.RowsWritten = 1
		ps.CursorAfter = formatCursor(version)
	}
	if ts.Status == StatusFailed {
		ts.Error = "some projects could not be read; see projects"
	}
	defer func() {
		for _, ps := range ts.Projects {
			r.logProject(table.Projects, ps)
		}
	}()
	if len(rows) == 0 {
		return
	}
	if err := r.write(ctx, table.ProjectsDef, rows, state.Checkpoint{Cursors: cursors}); err != nil {
		ts.Status, ts.Error = StatusFailed, err.Error()
		for _, ps := range ts.Projects {
			if ps.RowsWritten > 0 {
				ps.Status, ps.Reason = StatusFailed, "row not written"
				ps.RowsWritten, ps.CursorAfter = 0, ps.CursorBefore
			}
		}
		return
	}
	ts.RowsWritten = int64(len(rows))
}

// write upserts a batch and, once it is durable, saves the checkpoint.
func (r *run) write(ctx context.Context, def table.Def, rows []table.Row, cp state.Checkpoint) error {
	batchID := fmt.Sprintf("%s_%s_%s_%d", r.Config.ConnectionID, r.id, def.Name, r.batchSeq())
	if err := r.Dest.Upsert(ctx, def, batchID, rows); err != nil {
		return fmt.Errorf("write %d rows to %s: %w", len(rows), def.Name, err)
	}
	if err := r.Store.Save(ctx, r.id, cp); err != nil {
		return fmt.Errorf("checkpoint %s after writing %d rows (they are written; the next run re-reads them): %w",
			def.Name, len(rows), err)
	}
	return nil
}

func (r *run) batchSeq() int {
	r.batches++
	return r.batches
}

func (r *run) logProject(tableName string, ps *ProjectSummary) {
	level := slog.LevelInfo
	attrs := []any{logTable, tableName, logProject, ps.Project, logProjectID, ps.ProjectID,
		logStatus, ps.Status, logRows, ps.RowsWritten, logRequests, ps.Requests,
		"cursor_before", ps.CursorBefore, "cursor_after", ps.CursorAfter}
	if ps.Reason != "" {
		attrs = append(attrs, "reason", ps.Reason)
		if ps.Status == StatusFailed {
			level = slog.LevelError
		} else {
			level = slog.LevelWarn
		}
	}
	r.log.Log(context.Background(), level, fmt.Sprintf("%s: project %s %s", tableName, ps.Project, ps.Status), attrs...)
}

// syncUsers fetches the users merge requests refer to that are not written
// yet, in batches, and writes them.
// TODO: refresh users no new merge request refers to; their state and
// last_activity_on go stale until one does, or until a full refresh of
// merge_requests fetches every user again.
func (r *run) syncUsers(ctx context.Context, ts *TableSummary) {
	ids := make([]int64, 0, len(r.pending))
	for id := range r.pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	before := len(ids)
	ts.PendingBefore = &before
	limit := r.Config.MaxRecordsPerSync
	done := 0
	defer func() {
		after := len(ids) - done
		ts.PendingAfter = &after
	}()

	for done < len(ids) {
		if r.overBudget() {
			ts.More, ts.StopReason = true, "max_run_minutes"
			return
		}
		if limit > 0 && ts.RowsWritten >= int64(limit) {
			ts.More, ts.StopReason = true, "max_records_per_sync"
			return
		}
		n := min(r.batchSize(), len(ids)-done)
		if limit > 0 {
			n = min(n, limit-int(ts.RowsWritten))
		}
		chunk := ids[done : done+n]
		users, err := r.Source.Users(r.readCtx, chunk)
		if err != nil && r.readCtx.Err() != nil && ctx.Err() == nil {
			ts.More, ts.StopReason = true, "max_run_minutes"
			return
		}
		if err != nil {
			ts.Status, ts.Error = StatusFailed, err.Error()
			if gitlab.ClassifyError(err) == gitlab.FailRun {
				r.fatal = err
			}
			return
		}
		rows := make([]table.Row, len(users))
		for i, u := range users {
			rows[i] = u
		}
		// Ids GitLab no longer knows (deleted users) leave the queue too.
		cp := state.Checkpoint{DoneUsers: chunk}
		if len(rows) > 0 {
			err = r.write(ctx, table.UsersDef, rows, cp)
		} else {
			err = r.Store.Save(ctx, r.id, cp)
		}
		if err != nil {
			ts.Status, ts.Error = StatusFailed, err.Error()
			return
		}
		for _, id := range chunk {
			delete(r.pending, id)
		}
		done += n
		ts.RowsWritten += int64(len(rows))
	}
}
