package gitlabsync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
	"github.com/gitlab-bigquery-sync/gitlabsync/table"
)

// errStop ends a merge request stream early: the run's row cap or time
// budget is reached.
var errStop = errors.New("stop")

// mrCursor is one project's merge request cursor as it moves in a run.
type mrCursor struct {
	updatedAt time.Time
	seen      map[int64]time.Time // id → updated_at of rows written in the overlap
}

func newMRCursor(c state.Cursor) *mrCursor {
	m := &mrCursor{updatedAt: c.UpdatedAt, seen: make(map[int64]time.Time, len(c.Seen))}
	for _, s := range c.Seen {
		m.seen[s.ID] = s.UpdatedAt
	}
	return m
}

// known reports whether this version of the row was written already.
func (m *mrCursor) known(id int64, updated time.Time) bool {
	t, ok := m.seen[id]
	return ok && t.Equal(updated)
}

func (m *mrCursor) add(id int64, updated time.Time) {
	m.seen[id] = updated
	if updated.After(m.updatedAt) {
		m.updatedAt = updated
	}
}

// prune forgets rows older than the overlap, so memory stays bounded.
func (m *mrCursor) prune() {
	floor := m.updatedAt.Add(-Overlap)
	for id, t := range m.seen {
		if t.Before(floor) {
			delete(m.seen, id)
		}
	}
}

// state returns the cursor to save, remembering at most maxSeen rows (the
// latest ones): a row forgotten is written once more, never lost.
func (m *mrCursor) state() state.Cursor {
	m.prune()
	c := state.Cursor{UpdatedAt: m.updatedAt.UTC()}
	for id, t := range m.seen {
		c.Seen = append(c.Seen, state.Seen{ID: id, UpdatedAt: t.UTC()})
	}
	slices.SortFunc(c.Seen, func(a, b state.Seen) int {
		if d := b.UpdatedAt.Compare(a.UpdatedAt); d != 0 {
			return d
		}
		return int(a.ID - b.ID)
	})
	if len(c.Seen) > maxSeen {
		c.Seen = c.Seen[:maxSeen]
	}
	return c
}

// mrBatch gathers merge requests of several projects until it is flushed.
type mrBatch struct {
	rows    []table.Row
	touched map[int64]int  // rows in the batch per project
	users   map[int64]bool // users the rows refer to
}

func newMRBatch() *mrBatch {
	return &mrBatch{touched: map[int64]int{}, users: map[int64]bool{}}
}

// syncMergeRequests streams each project's merge requests changed since its
// cursor into batches; each batch is upserted, then the cursors it covers
// are saved.
func (r *run) syncMergeRequests(ctx context.Context, ts *TableSummary) {
	m := &mrTable{
		run:          r,
		ctx:          ctx,
		ts:           ts,
		batch:        newMRBatch(),
		cursors:      map[int64]*mrCursor{},
		summaries:    map[int64]*ProjectSummary{},
		lastProgress: r.now(),
	}
	for _, p := range r.projects {
		m.project(p)
	}

	// Rows read before a stop or a failure are good: write and checkpoint them.
	if err := m.flush(); err != nil {
		ts.Status, ts.Error = StatusFailed, err.Error()
	}
	for _, ps := range ts.Projects {
		r.logProject(table.MergeRequests, ps)
	}
	if ts.Status == StatusFailed && ts.Error == "" {
		ts.Error = "some projects could not be read; see projects"
	}
}

// mrTable is the merge_requests table as one run syncs it.
type mrTable struct {
	*run
	ctx          context.Context // for writes; reads use run.readCtx
	ts           *TableSummary
	batch        *mrBatch
	cursors      map[int64]*mrCursor
	summaries    map[int64]*ProjectSummary
	stopped      bool // no further project is read
	lastProgress time.Time
}

// project reads one configured project's changed merge requests into the
// batch, flushing it whenever it is full.
func (m *mrTable) project(p resolved) {
	ts := m.ts
	ps := &ProjectSummary{Project: p.ref, Status: StatusOK}
	ts.Projects = append(ts.Projects, ps)
	if p.err != nil {
		if !m.projectFailure(ts, ps, p.err) {
			ts.Status = StatusFailed
		}
		return
	}
	pid := p.row.ProjectID
	ps.ProjectID = pid
	if !m.stopped && m.overBudget() {
		m.stopped = true
		ts.More, ts.StopReason = true, "max_run_minutes"
	}
	if m.stopped {
		ps.Status, ps.Reason = StatusSkipped, "not reached: "+ts.StopReason
		return
	}
	m.summaries[pid] = ps

	old := m.st.Cursors[state.Key{Table: table.MergeRequests, ProjectID: pid}]
	if ts.FullRefresh {
		old = state.Cursor{}
	}
	cur := newMRCursor(old)
	m.cursors[pid] = cur
	ps.CursorBefore = formatCursor(old.UpdatedAt)
	ps.CursorAfter = ps.CursorBefore
	since := m.Config.StartDate
	if !old.UpdatedAt.IsZero() {
		since = old.UpdatedAt.Add(-Overlap)
	}

	before := m.Source.Requests()
	err := m.Source.MergeRequests(m.readCtx, pid, since, func(page []table.MergeRequest) error {
		return m.page(pid, old.UpdatedAt, cur, page)
	})
	ps.Requests = m.Source.Requests() - before

	switch {
	case err == nil:
	case errors.Is(err, errStop):
		m.stopped = true
	case m.readCtx.Err() != nil && m.ctx.Err() == nil:
		// The budget ran out inside a request: what was read is kept.
		m.stopped = true
		ts.More, ts.StopReason = true, "max_run_minutes"
	case gitlab.ClassifyError(err) == gitlab.SkipProject:
		ps.Status, ps.Reason = StatusSkipped, err.Error()
	default:
		ps.Status, ps.Reason = StatusFailed, err.Error()
		ts.Status, ts.Error = StatusFailed, err.Error()
		if gitlab.ClassifyError(err) == gitlab.FailRun {
			m.fatal = err
		}
		m.stopped = true
		ts.StopReason = "error"
	}
}

// page takes a page of one project's merge requests into the batch. It
// returns errStop when the row cap or the time budget is reached.
func (m *mrTable) page(pid int64, oldCursor time.Time, cur *mrCursor, page []table.MergeRequest) error {
	ts, limit := m.ts, int64(m.Config.MaxRecordsPerSync)
	for _, mr := range page {
		updated := mr.Version()
		if cur.known(mr.MergeRequestID, updated) {
			continue
		}
		// Rows from the overlap before the old cursor are written but never
		// stop the run: stopping among them would not move the cursor, and
		// the next run would meet them again.
		if limit > 0 && ts.RowsWritten+int64(len(m.batch.rows)) >= limit && updated.After(oldCursor) {
			ts.More, ts.StopReason = true, "max_records_per_sync"
			return errStop
		}
		cur.add(mr.MergeRequestID, updated)
		m.batch.rows = append(m.batch.rows, mr)
		m.batch.touched[pid]++
		for _, id := range mr.UserIDs() {
			if !m.pending[id] {
				m.batch.users[id] = true
			}
		}
	}
	cur.prune()
	if len(m.batch.rows) >= m.batchSize() {
		if err := m.flush(); err != nil {
			return err
		}
	}
	if m.now().Sub(m.lastProgress) >= progressEvery {
		m.lastProgress = m.now()
		m.log.Info(fmt.Sprintf("merge_requests: project %d in progress", pid),
			logTable, table.MergeRequests, logProjectID, pid,
			logRows, ts.RowsWritten+int64(len(m.batch.rows)), logCursor, formatCursor(cur.updatedAt))
	}
	if m.overBudget() {
		ts.More, ts.StopReason = true, "max_run_minutes"
		return errStop
	}
	return nil
}

// flush writes the batch and, once it is durable, the cursors of the
// projects it covers and the users it refers to.
func (m *mrTable) flush() error {
	b := m.batch
	if len(b.rows) == 0 {
		return nil
	}
	m.batch = newMRBatch()
	cp := state.Checkpoint{Cursors: map[state.Key]state.Cursor{}}
	for pid := range b.touched {
		cp.Cursors[state.Key{Table: table.MergeRequests, ProjectID: pid}] = m.cursors[pid].state()
	}
	if m.Config.SyncUsers {
		for id := range b.users {
			cp.AddUsers = append(cp.AddUsers, id)
		}
	}
	if err := m.write(m.ctx, table.MergeRequestsDef, b.rows, cp); err != nil {
		// Neither rows nor cursors are trusted after a failed write: the
		// next run reads them again from the last checkpoint.
		for pid := range b.touched {
			m.summaries[pid].Status, m.summaries[pid].Reason = StatusFailed, "rows not written: "+err.Error()
		}
		return err
	}
	for pid, n := range b.touched {
		m.summaries[pid].CursorAfter = formatCursor(m.cursors[pid].updatedAt)
		m.summaries[pid].RowsWritten += int64(n)
	}
	for _, id := range cp.AddUsers {
		m.pending[id] = true
	}
	m.ts.RowsWritten += int64(len(b.rows))
	return nil
}
