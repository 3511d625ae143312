# Two kinds of variables live here.
#
# The first group carries the function's configuration. Each has the same
# name as its key in configuration_example.json, the function reads it from
# the environment variable named as its upper case (sync_users_table ->
# SYNC_USERS_TABLE), and its default is the function's own default. Three
# keys have no variable on purpose:
#   - gitlab_token: a variable would copy the token into the Terraform state.
#     The module creates an empty Secret Manager secret instead, you add the
#     token as a version of it (README.md), and the function gets
#     GITLAB_TOKEN_SECRET, the name of that secret's latest version.
#   - duckdb_path, state_path: used only by local runs (cmd/gitlab-sync).
#
# The second group describes the deployment itself.

# ---------------------------------------------------------------------------
# Function configuration (same names as configuration_example.json)
# ---------------------------------------------------------------------------

variable "gitlab_base_url" {
  description = "Base URL of the GitLab instance, scheme included; it may have a subpath (https://example.com/gitlab)."
  type        = string
  default     = "https://gitlab.com"

  validation {
    condition     = can(regex("^https?://[^/]+", var.gitlab_base_url)) && !can(regex("/api(/|$)", var.gitlab_base_url))
    error_message = "The gitlab_base_url value must be the instance's address, http:// or https:// and a host (and a subpath if any), without /api/v4."
  }
}

variable "gitlab_project_ids" {
  description = "Comma-separated GitLab projects to sync, each a numeric id or a group/sub/project path (\"278964,gitlab-org/gitlab-runner\"). Required."
  type        = string

  # The same rules as the function's: items are trimmed of spaces and
  # slashes, and empty items are ignored.
  validation {
    condition     = length(compact([for s in split(",", var.gitlab_project_ids) : trim(trimspace(s), "/")])) > 0
    error_message = "The gitlab_project_ids value must list at least one project."
  }

  validation {
    condition     = length(compact([for s in split(",", var.gitlab_project_ids) : trim(trimspace(s), "/")])) <= 1000
    error_message = "The gitlab_project_ids value must list at most 1000 projects."
  }

  validation {
    condition = alltrue([
      for p in compact([for s in split(",", var.gitlab_project_ids) : trim(trimspace(s), "/")]) :
      can(regex("^([1-9][0-9]*|[A-Za-z0-9_.][A-Za-z0-9_.+-]*(/[A-Za-z0-9_.][A-Za-z0-9_.+-]*)+)$", p))
    ])
    error_message = "Each project in gitlab_project_ids must be a numeric id (278964) or a group/sub/project path."
  }
}

variable "start_date" {
  description = "Time that bounds the first sync (\"2024-01-01T00:00:00Z\"; a date or a time without zone is read as UTC); \"\" syncs everything. Later runs start from their cursors."
  type        = string
  default     = ""

  validation {
    condition = (
      var.start_date == "" ||
      can(formatdate("YYYY", var.start_date)) ||
      can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}:[0-9]{2})?$", var.start_date))
    )
    error_message = "The start_date value must be \"\", an RFC 3339 time such as 2024-01-01T00:00:00Z, or a UTC date such as 2024-01-01."
  }
}

variable "sync_projects_table" {
  description = "Whether to sync the projects table."
  type        = bool
  default     = true
}

variable "sync_merge_requests_table" {
  description = "Whether to sync the merge_requests table."
  type        = bool
  default     = true
}

variable "sync_users_table" {
  description = "Whether to sync the users table."
  type        = bool
  default     = true
}

variable "max_records_per_sync" {
  description = "Most rows written per table in one run; 0 means no limit. A run that stops at the limit checkpoints and answers more:true, and the next run goes on from there."
  type        = number
  default     = 10000

  validation {
    condition     = var.max_records_per_sync >= 0 && var.max_records_per_sync <= 100000000 && floor(var.max_records_per_sync) == var.max_records_per_sync
    error_message = "The max_records_per_sync value must be a whole number from 0 to 100000000."
  }
}

variable "sync_interval_hours" {
  description = "Hours between syncs, a whole number. The function skips a call that comes sooner than this (less a small slack) after the start of the last complete run; 0 turns that guard off. The scheduler's cron is built from it unless var.schedule is set, which it must be when the value does not divide 24."
  type        = number
  default     = 1

  validation {
    condition     = var.sync_interval_hours >= 0 && var.sync_interval_hours <= 8760 && floor(var.sync_interval_hours) == var.sync_interval_hours
    error_message = "The sync_interval_hours value must be a whole number from 0 to 8760."
  }
}

variable "max_run_minutes" {
  description = "The function's own time budget for one run, in minutes. Past it the run stops taking pages, checkpoints and answers more:true. max_run_minutes*60 + run_margin_seconds must not exceed function_timeout_seconds, so that a run ends cleanly before the platform kills it."
  type        = number
  default     = 50

  validation {
    condition     = var.max_run_minutes >= 1 && floor(var.max_run_minutes) == var.max_run_minutes
    error_message = "The max_run_minutes value must be a whole number, 1 or more."
  }
}

variable "bigquery_project" {
  description = "Project that holds the BigQuery dataset and runs the load jobs; \"\" means project_id. The function also keeps its Firestore state in this project, so its (default) Firestore database must exist there."
  type        = string
  default     = ""
}

variable "bigquery_dataset" {
  description = "BigQuery dataset the tables are written to. Created by this module when create_dataset is true; otherwise it must already exist."
  type        = string
  default     = "gitlab"

  validation {
    # The function's own limit is 1000 characters (BigQuery's is 1024).
    condition     = can(regex("^[A-Za-z0-9_]+$", var.bigquery_dataset)) && length(var.bigquery_dataset) <= 1000
    error_message = "The bigquery_dataset value must be 1 to 1000 letters, digits and underscores."
  }
}

variable "bigquery_location" {
  description = "BigQuery location of the dataset and its jobs (\"US\", \"EU\", \"europe-west1\"...)."
  type        = string
  default     = "US"

  validation {
    condition     = trimspace(var.bigquery_location) != ""
    error_message = "The bigquery_location value must not be empty."
  }
}

variable "state_collection" {
  description = "Firestore collection, in the (default) database of the BigQuery project, that holds the cursors and the run lease."
  type        = string
  default     = "gitlab_sync"

  validation {
    condition     = can(regex("^[^/]+$", var.state_collection))
    error_message = "The state_collection value must be a non-empty collection id without \"/\"."
  }
}

variable "connection_id" {
  description = "Name of this connection. Each connection keeps its own cursors and lease, so two deployments with different ids can share a collection."
  type        = string
  default     = "default"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,100}$", var.connection_id))
    error_message = "The connection_id value must be 1 to 100 letters, digits, \"_\" or \"-\"."
  }
}

# ---------------------------------------------------------------------------
# Deployment
# ---------------------------------------------------------------------------

variable "project_id" {
  description = "Google Cloud project that runs the function, the scheduler job, the secret and the source bucket."
  type        = string
}

variable "region" {
  description = "Region of the function, the scheduler job and the source bucket."
  type        = string
  default     = "us-central1"
}

variable "name_prefix" {
  description = "Prefix of every resource name: the function, both service accounts (<prefix>-run, <prefix>-invoker), the secret (<prefix>-gitlab-token), the scheduler job and the source bucket."
  type        = string
  default     = "gitlab-sync"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,20}[a-z0-9]$", var.name_prefix))
    error_message = "The name_prefix value must be 2 to 22 characters: lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "labels" {
  description = "Labels added to the function, the source bucket, the dataset and the secret."
  type        = map(string)
  default     = {}
}

variable "enable_apis" {
  description = "Whether to enable the Google Cloud APIs the deployment needs (they are left enabled on destroy). Set false when they are managed elsewhere."
  type        = bool
  default     = true
}

variable "create_dataset" {
  description = "Whether to create the BigQuery dataset. When false, bigquery_dataset must already exist in bigquery_project: the runtime service account may create tables in it but not datasets."
  type        = bool
  default     = true
}

variable "source_dir" {
  description = "Root of this repository (the directory holding go.mod), zipped and uploaded as the function's source; \"\" means two levels above this module (\"$${path.module}/../..\"). A variable's default cannot refer to path.module, hence the empty default."
  type        = string
  default     = ""
}

variable "source_excludes" {
  description = "Extra paths or glob patterns, relative to source_dir, left out of the uploaded source. Version control, the deploy and cmd directories, test data, DuckDB files and local config or state files are always left out."
  type        = list(string)
  default     = []
}

variable "function_timeout_seconds" {
  description = "Request timeout of the function, in seconds; 3600 is the 2nd gen HTTP maximum and leaves room for a backfill."
  type        = number
  default     = 3600

  validation {
    condition     = var.function_timeout_seconds >= 60 && var.function_timeout_seconds <= 3600 && floor(var.function_timeout_seconds) == var.function_timeout_seconds
    error_message = "The function_timeout_seconds value must be a whole number from 60 to 3600."
  }
}

variable "run_margin_seconds" {
  description = "Time kept between the end of the function's budget (max_run_minutes) and the platform's timeout, for the last page, its load job and the checkpoint."
  type        = number
  default     = 300

  validation {
    condition     = var.run_margin_seconds >= 60
    error_message = "The run_margin_seconds value must be at least 60."
  }
}

variable "function_memory" {
  description = "Memory of the function's instance, as Cloud Run writes it (\"512M\", \"1Gi\")."
  type        = string
  default     = "512M"
}

variable "ingress_settings" {
  description = "Who can reach the function's URL: ALLOW_ALL (still authenticated: only holders of roles/run.invoker get in), ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB. ALLOW_INTERNAL_ONLY also blocks the manual curl run from outside the project's network."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress_settings)
    error_message = "The ingress_settings value must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "build_service_account" {
  description = "Email of an existing service account that Cloud Build uses to build the function; \"\" uses the platform's default. Set it when the project's default build account lacks permissions (it needs roles/cloudbuild.builds.builder)."
  type        = string
  default     = ""
}

variable "schedule" {
  description = "Cron expression of the scheduler job; \"\" builds it from sync_interval_hours, which then must be 1, 2, 3, 4, 6, 8, 12 or 24."
  type        = string
  default     = ""
}

variable "scheduler_time_zone" {
  description = "Time zone of the scheduler's cron expression (tz database name)."
  type        = string
  default     = "Etc/UTC"
}

variable "scheduler_retry_count" {
  description = "How many times Cloud Scheduler retries a failed call. A retry that arrives while a run still holds the lease gets HTTP 409 and changes nothing."
  type        = number
  default     = 2

  validation {
    condition     = var.scheduler_retry_count >= 0 && var.scheduler_retry_count <= 5 && floor(var.scheduler_retry_count) == var.scheduler_retry_count
    error_message = "The scheduler_retry_count value must be a whole number from 0 to 5."
  }
}
