package main

import (
	"fmt"
	"strconv"
	"strings"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
)

// keyDoc documents one configuration key for -h.
type keyDoc struct {
	def, doc string
}

// keyDocs documents every key of gitlabsync.Keys (a test checks that none is
// missing); "" as default means none.
var keyDocs = map[string]keyDoc{
	"gitlab_token": {"",
		"token with the read_api scope (GITLAB_TOKEN wins); never printed"},
	"gitlab_token_secret": {"",
		"or read it from Secret Manager: projects/P/secrets/S/versions/V"},
	"gitlab_base_url": {gitlabsync.DefaultBaseURL,
		"the GitLab instance, without /api/v4; may carry a subpath"},
	"gitlab_project_ids": {"",
		"projects to sync: numeric ids or group/project paths, comma-separated"},
	"start_date": {"",
		"first sync reads merge requests updated since (2024-01-31 or RFC 3339)"},
	"sync_projects_table": {"true",
		"sync the projects table"},
	"sync_merge_requests_table": {"true",
		"sync the merge_requests table"},
	"sync_users_table": {"true",
		"sync the users table (the users merge requests refer to)"},
	"max_records_per_sync": {strconv.Itoa(gitlabsync.DefaultMaxRecordsPerSync),
		"rows per table per run, the next run goes on (0: no cap)"},
	"sync_interval_hours": {strconv.Itoa(gitlabsync.DefaultSyncIntervalHours),
		"skip a run this soon after the last successful one (0: never; see -force)"},
	"max_run_minutes": {strconv.Itoa(gitlabsync.DefaultMaxRunMinutes),
		"time budget; the run then stops cleanly and the next one goes on"},
	"bigquery_project": {"",
		"project of BigQuery and Firestore; empty: the credentials' project"},
	"bigquery_dataset": {"",
		"set: rows go to this BigQuery dataset, state to Firestore"},
	"bigquery_location": {gitlabsync.DefaultBigQueryLocation,
		"location of a dataset the sync creates"},
	"state_collection": {gitlabsync.DefaultStateCollection,
		"Firestore collection of the state (with a dataset)"},
	"connection_id": {gitlabsync.DefaultConnectionID,
		"separates connections that share a state collection"},
	"duckdb_path": {gitlabsync.DefaultDuckDBPath,
		"DuckDB file the rows go to (without a dataset)"},
	"state_path": {gitlabsync.DefaultStatePath,
		"JSON file of the cursors and the run lease (without a dataset)"},
}

const usageHead = `gitlab-sync syncs GitLab projects, merge requests and users incrementally, with
the engine of the SyncGitLab Cloud Function.

Usage:
  gitlab-sync [flags]            run one sync and exit
  gitlab-sync serve [flags]      serve SyncGitLab over HTTP, for curl calls

Without bigquery_dataset, rows go to the DuckDB file duckdb_path (tables projects,
merge_requests, users) and cursors to the JSON file state_path, both relative to
the current directory. With it, rows go to BigQuery and state to Firestore, as
in the function, with the environment's Google credentials.

The JSON summary of the run goes to standard output, progress to standard error.
Exit status: 0 every table ok (or the run skipped), 1 a table failed or the run
could not start (another run is in progress, GitLab cannot be reached),
2 bad flags or configuration.

Flags:
  -config FILE           the configuration: a JSON object of the keys below, as in
                         configuration_example.json; environment variables named
                         after the keys in upper case (GITLAB_TOKEN) win over it.
                         Without it: $CONFIG_FILE if set, else the environment only
  -force                 run even if sync_interval_hours has not passed
  -tables LIST           sync only these tables, such as projects,merge_requests
  -full-refresh LIST     read these tables from the beginning (or start_date)
                         instead of from their cursors; rows are still upserted
  -timeout DURATION      deadline of the whole run (default max_run_minutes + 5m)
  -log-format FORMAT     progress as text lines for people, or json: the
                         function's structured logs (default text)

Advanced flags:
  -retry-max N           retries of a GitLab request on 429, 5xx or network errors (default %s)
  -retry-wait-max D      longest wait between retries, 429s included (default %s)
  -request-timeout D     deadline of each GitLab request (default %s)
  -batch-size N          rows per write and checkpoint (default %s)

serve flags:
  -config FILE           as above; serve exports it as CONFIG_FILE
  -host HOST             address to listen on (default %s; 0.0.0.0 in a container)
  -port PORT             port to listen on (default $PORT, else %s)
serve runs the function as deployed: every call writes to BigQuery and Firestore,
so it needs BIGQUERY_* set (bigquery_dataset defaults to %s there), Google
credentials and Firestore. Call it with: curl -X POST 'localhost:8080/?force=true'
(query parameters or JSON body: tables, force, full_refresh).

Configuration keys (default in brackets):
`

// printUsage prints the help of -h, the same for the command and serve, on
// Stdout.
func (m *Main) printUsage() {
	run := (&Main{}).flagSet() // the defaults of the run's flags
	var b strings.Builder
	fmt.Fprintf(&b, usageHead,
		run.Lookup("retry-max").DefValue, run.Lookup("retry-wait-max").DefValue,
		run.Lookup("request-timeout").DefValue, run.Lookup("batch-size").DefValue,
		DefaultHost, DefaultPort, gitlabsync.DefaultBigQueryDataset)
	for _, k := range gitlabsync.Keys {
		d := keyDocs[k]
		if d.def != "" {
			k += " [" + d.def + "]"
		}
		fmt.Fprintf(&b, "  %s\n        %s\n", k, d.doc)
	}
	fmt.Fprint(m.Stdout, b.String())
}
