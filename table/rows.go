package table

import "time"

// ProjectsDef is the projects table: one row per configured project.
var ProjectsDef = Def{
	Name: Projects,
	Columns: []Column{
		{Name: "id", Type: Int64, Required: true, Description: "GitLab project id"},
		{Name: "name", Type: String},
		{Name: "description", Type: String},
		{Name: "web_url", Type: String},
		{Name: "created_at", Type: Timestamp},
		{Name: "updated_at", Type: Timestamp, Description: "updated_at, or last_activity_at on GitLab versions before 16.x"},
		{Name: "visibility", Type: String},
		{Name: "default_branch", Type: String},
		{Name: "path_with_namespace", Type: String},
		{Name: "name_with_namespace", Type: String},
		{Name: "namespace_id", Type: Int64},
		{Name: "archived", Type: Bool},
		{Name: "last_activity_at", Type: Timestamp},
		{Name: "topics", Type: String, Repeated: true},
		{Name: "star_count", Type: Int64},
		{Name: "forks_count", Type: Int64},
	},
	ClusterBy:     []string{"id"},
	VersionColumn: "updated_at",
}

// Project is a row of the projects table.
type Project struct {
	ProjectID         int64
	Name              string
	Description       string
	WebURL            string
	CreatedAt         *time.Time
	UpdatedAt         *time.Time
	Visibility        string
	DefaultBranch     string
	PathWithNamespace string
	NameWithNamespace string
	NamespaceID       *int64
	Archived          bool
	LastActivityAt    *time.Time
	Topics            []string
	StarCount         int64
	ForksCount        int64
}

// ID implements Row.
func (p Project) ID() int64 { return p.ProjectID }

// Version implements Row.
func (p Project) Version() time.Time { return versionOf(p.UpdatedAt) }

// Values implements Row.
func (p Project) Values() []any {
	return []any{
		p.ProjectID,
		nullString(p.Name),
		nullString(p.Description),
		nullString(p.WebURL),
		nullTime(p.CreatedAt),
		nullTime(p.UpdatedAt),
		nullString(p.Visibility),
		nullString(p.DefaultBranch),
		nullString(p.PathWithNamespace),
		nullString(p.NameWithNamespace),
		nullInt(p.NamespaceID),
		p.Archived,
		nullTime(p.LastActivityAt),
		nonNil(p.Topics),
		p.StarCount,
		p.ForksCount,
	}
}

// MergeRequestsDef is the merge_requests table.
var MergeRequestsDef = Def{
	Name: MergeRequests,
	Columns: []Column{
		{Name: "id", Type: Int64, Required: true, Description: "GitLab merge request id (unique across projects)"},
		{Name: "project_id", Type: Int64},
		{Name: "title", Type: String},
		{Name: "description", Type: String},
		{Name: "state", Type: String, Description: "opened, closed, locked or merged"},
		{Name: "author_id", Type: Int64},
		{Name: "assignee_id", Type: Int64, Description: "first assignee"},
		{Name: "created_at", Type: Timestamp},
		{Name: "updated_at", Type: Timestamp},
		{Name: "merged_at", Type: Timestamp},
		{Name: "closed_at", Type: Timestamp},
		{Name: "source_branch", Type: String},
		{Name: "target_branch", Type: String},
		{Name: "web_url", Type: String},
		{Name: "iid", Type: Int64, Description: "merge request number inside its project"},
		{Name: "draft", Type: Bool},
		{Name: "labels", Type: String, Repeated: true},
		{Name: "assignee_ids", Type: Int64, Repeated: true},
		{Name: "reviewer_ids", Type: Int64, Repeated: true},
		{Name: "merged_by_id", Type: Int64, Description: "merge_user, else merged_by"},
		{Name: "closed_by_id", Type: Int64},
		{Name: "source_project_id", Type: Int64},
		{Name: "target_project_id", Type: Int64},
		{Name: "merge_commit_sha", Type: String},
		{Name: "squash_commit_sha", Type: String},
		{Name: "sha", Type: String},
		{Name: "milestone_id", Type: Int64},
		{Name: "user_notes_count", Type: Int64},
		{Name: "upvotes", Type: Int64},
		{Name: "downvotes", Type: Int64},
		{Name: "imported", Type: Bool},
	},
	PartitionBy:   "created_at",
	ClusterBy:     []string{"id"},
	VersionColumn: "updated_at",
}

// MergeRequest is a row of the merge_requests table.
type MergeRequest struct {
	MergeRequestID  int64
	ProjectID       int64
	Title           string
	Description     string
	State           string
	AuthorID        *int64
	AssigneeID      *int64
	CreatedAt       *time.Time
	UpdatedAt       *time.Time
	MergedAt        *time.Time
	ClosedAt        *time.Time
	SourceBranch    string
	TargetBranch    string
	WebURL          string
	IID             int64
	Draft           bool
	Labels          []string
	AssigneeIDs     []int64
	ReviewerIDs     []int64
	MergedByID      *int64
	ClosedByID      *int64
	SourceProjectID int64
	TargetProjectID int64
	MergeCommitSHA  string
	SquashCommitSHA string
	SHA             string
	MilestoneID     *int64
	UserNotesCount  int64
	Upvotes         int64
	Downvotes       int64
	Imported        bool
}

// ID implements Row.
func (m MergeRequest) ID() int64 { return m.MergeRequestID }

// Version implements Row.
func (m MergeRequest) Version() time.Time { return versionOf(m.UpdatedAt) }

// Values implements Row.
func (m MergeRequest) Values() []any {
	return []any{
		m.MergeRequestID,
		m.ProjectID,
		nullString(m.Title),
		nullString(m.Description),
		nullString(m.State),
		nullInt(m.AuthorID),
		nullInt(m.AssigneeID),
		nullTime(m.CreatedAt),
		nullTime(m.UpdatedAt),
		nullTime(m.MergedAt),
		nullTime(m.ClosedAt),
		nullString(m.SourceBranch),
		nullString(m.TargetBranch),
		nullString(m.WebURL),
		m.IID,
		m.Draft,
		nonNil(m.Labels),
		nonNil(m.AssigneeIDs),
		nonNil(m.ReviewerIDs),
		nullInt(m.MergedByID),
		nullInt(m.ClosedByID),
		m.SourceProjectID,
		m.TargetProjectID,
		nullString(m.MergeCommitSHA),
		nullString(m.SquashCommitSHA),
		nullString(m.SHA),
		nullInt(m.MilestoneID),
		m.UserNotesCount,
		m.Upvotes,
		m.Downvotes,
		m.Imported,
	}
}

// UserIDs returns every user the merge request refers to: author,
// assignees, reviewers, the user who merged it and the one who closed it.
func (m MergeRequest) UserIDs() []int64 {
	var ids []int64
	for _, p := range []*int64{m.AuthorID, m.AssigneeID, m.MergedByID, m.ClosedByID} {
		if p != nil {
			ids = append(ids, *p)
		}
	}
	ids = append(ids, m.AssigneeIDs...)
	ids = append(ids, m.ReviewerIDs...)
	return ids
}

// UsersDef is the users table: every user a synced merge request refers to.
var UsersDef = Def{
	Name: Users,
	Columns: []Column{
		{Name: "id", Type: Int64, Required: true, Description: "GitLab user id"},
		{Name: "username", Type: String},
		{Name: "name", Type: String},
		{Name: "email", Type: String, Description: "email when the token may see it, else public_email, else NULL"},
		{Name: "state", Type: String, Description: "active, blocked, deactivated, banned, ldap_blocked, blocked_pending_approval"},
		{Name: "created_at", Type: Timestamp},
		{Name: "last_activity_on", Type: Date},
		{Name: "web_url", Type: String},
		{Name: "avatar_url", Type: String},
		{Name: "bot", Type: Bool},
	},
	ClusterBy: []string{"id"},
}

// User is a row of the users table.
type User struct {
	UserID         int64
	Username       string
	Name           string
	Email          string
	State          string
	CreatedAt      *time.Time
	LastActivityOn string // YYYY-MM-DD, or "" when unknown
	WebURL         string
	AvatarURL      string
	Bot            bool
}

// ID implements Row.
func (u User) ID() int64 { return u.UserID }

// Version implements Row. Users carry no update time: the last write wins.
func (u User) Version() time.Time { return time.Time{} }

// Values implements Row.
func (u User) Values() []any {
	return []any{
		u.UserID,
		nullString(u.Username),
		nullString(u.Name),
		nullString(u.Email),
		nullString(u.State),
		nullTime(u.CreatedAt),
		nullString(u.LastActivityOn),
		nullString(u.WebURL),
		nullString(u.AvatarURL),
		u.Bot,
	}
}

func versionOf(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
