package gitlabsync

import (
	"time"
)

// Statuses of a run, a table and a project in a Summary.
const (
	StatusOK      = "ok"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
)

// Summary is the answer of a run: what each table and project wrote, how
// many requests it took, where the cursors stood before and after.
type Summary struct {
	RunID        string          `json:"run_id"`
	ConnectionID string          `json:"connection_id"`
	Status       string          `json:"status"`
	SkipReason   string          `json:"skip_reason,omitempty"`
	More         bool            `json:"more"`
	StartedAt    time.Time       `json:"started_at"`
	FinishedAt   time.Time       `json:"finished_at"`
	DurationMS   int64           `json:"duration_ms"`
	RowsWritten  int64           `json:"rows_written"`
	Requests     int64           `json:"requests"`
	Tables       []*TableSummary `json:"tables"`
	Error        string          `json:"error,omitempty"`
}

// TableSummary is one table of a run.
type TableSummary struct {
	Table       string            `json:"table"`
	Status      string            `json:"status"`
	RowsWritten int64             `json:"rows_written"`
	Requests    int64             `json:"requests"`
	DurationMS  int64             `json:"duration_ms"`
	More        bool              `json:"more,omitempty"`
	StopReason  string            `json:"stop_reason,omitempty"`
	FullRefresh bool              `json:"full_refresh,omitempty"`
	Error       string            `json:"error,omitempty"`
	Projects    []*ProjectSummary `json:"projects,omitempty"`

	// PendingBefore and PendingAfter count the users waiting to be fetched
	// (users table only).
	PendingBefore *int `json:"pending_users_before,omitempty"`
	PendingAfter  *int `json:"pending_users_after,omitempty"`

	started time.Time
}

// ProjectSummary is one project of one table.
type ProjectSummary struct {
	Project      string `json:"project"`
	ProjectID    int64  `json:"project_id,omitempty"`
	Status       string `json:"status"`
	Reason       string `json:"reason,omitempty"`
	RowsWritten  int64  `json:"rows_written"`
	Requests     int64  `json:"requests"`
	CursorBefore string `json:"cursor_before,omitempty"`
	CursorAfter  string `json:"cursor_after,omitempty"`
}

// Failed reports whether any table failed.
func (s *Summary) Failed() bool { return s.Status == StatusFailed }

func formatCursor(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
