package gitlabsync

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Defaults of the configuration.
const (
	DefaultBaseURL            = "https://gitlab.com"
	DefaultMaxRecordsPerSync  = 10000
	DefaultSyncIntervalHours  = 1
	DefaultMaxRunMinutes      = 50
	DefaultBigQueryDataset    = "gitlab"
	DefaultBigQueryLocation   = "US"
	DefaultStateCollection    = "gitlab_sync"
	DefaultConnectionID       = "default"
	DefaultDuckDBPath         = "warehouse.duckdb"
	DefaultStatePath          = "state.json"
	configFileEnv             = "CONFIG_FILE"
	tokenEnv                  = "GITLAB_TOKEN"
	secretNamePattern         = `^projects/[^/]+/secrets/[^/]+/versions/[^/]+$`
	maxConfiguredProjects     = 1000
	maxRecordsPerSyncLimit    = 100_000_000
	maxSyncIntervalHoursLimit = 24 * 365
)

// Config is the connector's configuration, read once per run from
// environment variables and/or a JSON file (CONFIG_FILE).
type Config struct {
	// Token is the GitLab token (gitlab_token, or GITLAB_TOKEN). Empty
	// when TokenSecret names a Secret Manager version to read it from.
	Token string

	// TokenSecret is a Secret Manager version name,
	// projects/P/secrets/S/versions/V (gitlab_token_secret).
	TokenSecret string

	// BaseURL is the GitLab instance (gitlab_base_url, default
	// https://gitlab.com); it may carry a subpath.
	BaseURL string

	// Projects lists the configured projects, numeric ids or
	// group/sub/project paths (gitlab_project_ids, comma-separated).
	Projects []string

	// StartDate bounds the first sync of merge requests: older updates are
	// not read (start_date; zero means all).
	StartDate time.Time

	// SyncProjects, SyncMergeRequests and SyncUsers enable the tables
	// (sync_*_table, default true).
	SyncProjects, SyncMergeRequests, SyncUsers bool

	// MaxRecordsPerSync caps the rows each table writes in one run
	// (max_records_per_sync, default 10000; 0 means no cap).
	MaxRecordsPerSync int

	// SyncInterval: a run sooner than this after the start of the last
	// successful run is skipped unless forced (sync_interval_hours, default
	// 1; 0 turns the guard off).
	SyncInterval time.Duration

	// MaxRunTime is the run's time budget (max_run_minutes, default 50).
	MaxRunTime time.Duration

	// BigQueryProject, BigQueryDataset and BigQueryLocation say where rows
	// go (bigquery_project, default the environment's project;
	// bigquery_dataset, default gitlab; bigquery_location, default US).
	BigQueryProject, BigQueryDataset, BigQueryLocation string

	// StateCollection is the Firestore collection of the state
	// (state_collection, default gitlab_sync).
	StateCollection string

	// ConnectionID separates the state of several connections sharing a
	// collection or file (connection_id, default "default").
	ConnectionID string

	// DuckDBPath and StatePath are where the local command writes rows and
	// cursors when no BigQuery dataset is configured (duckdb_path, default
	// warehouse.duckdb; state_path, default state.json).
	DuckDBPath, StatePath string
}

// Keys lists every configuration key, in the order of
// configuration_example.json.
var Keys = []string{
	"gitlab_token", "gitlab_token_secret", "gitlab_base_url", "gitlab_project_ids", "start_date",
	"sync_projects_table", "sync_merge_requests_table", "sync_users_table",
	"max_records_per_sync", "sync_interval_hours", "max_run_minutes",
	"bigquery_project", "bigquery_dataset", "bigquery_location",
	"state_collection", "connection_id", "duckdb_path", "state_path",
}

// ConfigError lists every problem found in a configuration.
type ConfigError struct {
	Problems []string
}

func (e *ConfigError) Error() string {
	return "configuration: " + strings.Join(e.Problems, "; ")
}

// LoadConfig reads the configuration: the JSON file named by CONFIG_FILE (if
// set), then environment variables (upper-case key names), which win. env
// looks a variable up (os.LookupEnv in production). The result is validated;
// a *ConfigError lists every bad key at once.
func LoadConfig(env func(string) (string, bool)) (Config, error) {
	values := map[string]string{}
	var problems []string
	if path, ok := env(configFileEnv); ok && path != "" {
		fileValues, err := readConfigFile(path)
		if err != nil {
			return Config{}, &ConfigError{Problems: []string{err.Error()}}
		}
		values = fileValues
	}
	for _, k := range Keys {
		if v, ok := env(strings.ToUpper(k)); ok {
			values[k] = v
		}
	}
	cfg, parseProblems := parseConfig(values)
	problems = append(problems, parseProblems...)
	problems = append(problems, cfg.problems()...)
	if len(problems) > 0 {
		return cfg, &ConfigError{Problems: problems}
	}
	return cfg, nil
}

// readConfigFile reads a JSON object of keys to strings, numbers or booleans.
func readConfigFile(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CONFIG_FILE: read %s: %w", path, err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("CONFIG_FILE: %s is not a JSON object of keys to values (like configuration_example.json): %w", path, err)
	}
	known := map[string]bool{}
	for _, k := range Keys {
		known[k] = true
	}
	out := make(map[string]string, len(raw))
	var unknown []string
	for k, v := range raw {
		if !known[k] {
			unknown = append(unknown, k)
			continue
		}
		switch v := v.(type) {
		case string:
			out[k] = v
		case bool:
			out[k] = strconv.FormatBool(v)
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case nil:
			// null means "not set".
		default:
			return nil, fmt.Errorf("CONFIG_FILE: %s: key %s must be a string, number or boolean", path, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("CONFIG_FILE: %s: unknown keys %s; the keys are those of configuration_example.json",
			path, strings.Join(unknown, ", "))
	}
	return out, nil
}

// parseConfig turns key/value strings into a Config with defaults, noting
// every value that does not parse.
func parseConfig(v map[string]string) (Config, []string) {
	var problems []string
	bad := func(key, value, want string) {
		problems = append(problems, fmt.Sprintf("%s=%q: %s", key, value, want))
	}
	str := func(key, def string) string {
		if s := strings.TrimSpace(v[key]); s != "" {
			return s
		}
		return def
	}
	boolean := func(key string) bool {
		s := strings.ToLower(strings.TrimSpace(v[key]))
		switch s {
		case "", "true":
			return true
		case "false":
			return false
		}
		bad(key, v[key], `want "true" or "false"`)
		return true
	}
	integer := func(key string, def, limit int) int {
		s := strings.TrimSpace(v[key])
		if s == "" {
			return def
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > limit {
			bad(key, s, fmt.Sprintf("want a whole number from 0 to %d", limit))
			return def
		}
		return n
	}

	c := Config{
		Token:             strings.TrimSpace(v["gitlab_token"]),
		TokenSecret:       str("gitlab_token_secret", ""),
		BaseURL:           strings.TrimRight(str("gitlab_base_url", DefaultBaseURL), "/"),
		SyncProjects:      boolean("sync_projects_table"),
		SyncMergeRequests: boolean("sync_merge_requests_table"),
		SyncUsers:         boolean("sync_users_table"),
		MaxRecordsPerSync: integer("max_records_per_sync", DefaultMaxRecordsPerSync, maxRecordsPerSyncLimit),
		SyncInterval:      time.Duration(integer("sync_interval_hours", DefaultSyncIntervalHours, maxSyncIntervalHoursLimit)) * time.Hour,
		MaxRunTime:        time.Duration(integer("max_run_minutes", DefaultMaxRunMinutes, 24*60)) * time.Minute,
		BigQueryProject:   str("bigquery_project", ""),
		BigQueryDataset:   str("bigquery_dataset", ""),
		BigQueryLocation:  str("bigquery_location", DefaultBigQueryLocation),
		StateCollection:   str("state_collection", DefaultStateCollection),
		ConnectionID:      str("connection_id", DefaultConnectionID),
		DuckDBPath:        str("duckdb_path", DefaultDuckDBPath),
		StatePath:         str("state_path", DefaultStatePath),
	}
	for _, p := range strings.Split(v["gitlab_project_ids"], ",") {
		if p = strings.Trim(strings.TrimSpace(p), "/"); p != "" {
			c.Projects = append(c.Projects, p)
		}
	}
	if s := strings.TrimSpace(v["start_date"]); s != "" {
		t, err := parseStartDate(s)
		if err != nil {
			bad("start_date", s, "want an RFC 3339 time such as 2024-01-31T00:00:00Z, or a date such as 2024-01-31 (UTC)")
		}
		c.StartDate = t
	}
	return c, problems
}

// parseStartDate reads RFC 3339, or a date or a time without zone as UTC.
func parseStartDate(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, errors.New("not a time")
}

var (
	projectPathPattern = regexp.MustCompile(`^[A-Za-z0-9_.][A-Za-z0-9_.+-]*(/[A-Za-z0-9_.][A-Za-z0-9_.+-]*)+$`)
	projectIDPattern   = regexp.MustCompile(`^[1-9][0-9]*$`)
	datasetPattern     = regexp.MustCompile(`^[A-Za-z0-9_]{1,1000}$`)
	connectionPattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,100}$`)
	secretPattern      = regexp.MustCompile(secretNamePattern)
)

// problems checks what parsed; it never mentions the token's value.
func (c Config) problems() []string {
	var p []string
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		p = append(p, fmt.Sprintf("gitlab_base_url=%q: want the instance's address, such as https://gitlab.com or https://example.com/gitlab", c.BaseURL))
	} else if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		p = append(p, fmt.Sprintf("gitlab_base_url=%q: use https; over http the token would cross the network in clear", c.BaseURL))
	} else if strings.Contains(u.Path, "/api/") || strings.HasSuffix(u.Path, "/api") {
		p = append(p, fmt.Sprintf("gitlab_base_url=%q: give the instance's address without /api/v4", c.BaseURL))
	}
	if c.TokenSecret != "" && !secretPattern.MatchString(c.TokenSecret) {
		// The value is not quoted: it may be a token pasted in the wrong key.
		p = append(p, "gitlab_token_secret is not a Secret Manager version name: want projects/PROJECT/secrets/NAME/versions/VERSION (VERSION may be latest); to give the token itself, use gitlab_token")
	}
	if (c.SyncProjects || c.SyncMergeRequests) && len(c.Projects) == 0 {
		p = append(p, "gitlab_project_ids is empty: list the projects to sync, comma-separated numeric ids or group/sub/project paths")
	}
	if len(c.Projects) > maxConfiguredProjects {
		p = append(p, fmt.Sprintf("gitlab_project_ids lists %d projects: at most %d per connection", len(c.Projects), maxConfiguredProjects))
	}
	for _, ref := range c.Projects {
		if !projectIDPattern.MatchString(ref) && !projectPathPattern.MatchString(ref) {
			p = append(p, fmt.Sprintf("gitlab_project_ids has %q: want a numeric id such as 278964 or a path such as group/sub/project", ref))
		}
	}
	if !c.SyncProjects && !c.SyncMergeRequests && !c.SyncUsers {
		p = append(p, "sync_projects_table, sync_merge_requests_table and sync_users_table are all false: enable at least one table")
	}
	if c.Token == "" && c.TokenSecret == "" {
		p = append(p, "gitlab_token is empty: set gitlab_token (or GITLAB_TOKEN) to a token with the read_api scope, or name its Secret Manager version in gitlab_token_secret")
	}
	if c.MaxRunTime < time.Minute {
		p = append(p, "max_run_minutes=0: want at least 1 minute of run time")
	}
	if !c.StartDate.IsZero() && c.StartDate.After(time.Now().Add(24*time.Hour)) {
		p = append(p, fmt.Sprintf("start_date=%q: lies in the future, so nothing would be synced", c.StartDate.Format(time.RFC3339)))
	}
	if c.BigQueryDataset != "" && !datasetPattern.MatchString(c.BigQueryDataset) {
		p = append(p, fmt.Sprintf("bigquery_dataset=%q: want letters, digits and underscores", c.BigQueryDataset))
	}
	if !connectionPattern.MatchString(c.StateCollection) {
		p = append(p, fmt.Sprintf("state_collection=%q: want a Firestore collection id of letters, digits, _ and -", c.StateCollection))
	}
	if !connectionPattern.MatchString(c.ConnectionID) {
		p = append(p, fmt.Sprintf("connection_id=%q: want letters, digits, _ and -", c.ConnectionID))
	}
	return p
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Tables returns the enabled tables in the order a run syncs them.
func (c Config) Tables() []string {
	var out []string
	if c.SyncProjects {
		out = append(out, "projects")
	}
	if c.SyncMergeRequests {
		out = append(out, "merge_requests")
	}
	if c.SyncUsers {
		out = append(out, "users")
	}
	return out
}
