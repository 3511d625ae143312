locals {
  # Where the tables and the Firestore state live; "" means the function's
  # own project.
  bigquery_project = var.bigquery_project != "" ? var.bigquery_project : var.project_id

  source_dir = var.source_dir != "" ? var.source_dir : "${path.module}/../.."

  # Left out of the uploaded source: what the function's build does not need,
  # and local files that may hold a token or local state. Patterns are
  # doublestar globs relative to source_dir; "**/x" also matches a top-level x.
  source_excludes = [
    ".git",
    ".github",
    ".ci",
    "deploy",
    "cmd",
    "**/testdata",
    "**/*.duckdb",
    "**/*.duckdb.wal",
    "**/.terraform",
    "**/*.tfstate",
    "**/*.tfstate.*",
    "**/*.tfvars",
    ".env",
    "configuration.json",
    "state.json",
  ]

  # Cloud Scheduler's cron cannot say "every 5 hours" evenly across days, so
  # the derived schedule exists only for intervals that divide 24.
  cron_hours = [1, 2, 3, 4, 6, 8, 12, 24]
  derived_schedule = (
    var.sync_interval_hours == 1 ? "0 * * * *" :
    var.sync_interval_hours == 24 ? "0 0 * * *" :
    "0 */${var.sync_interval_hours} * * *"
  )
  schedule = var.schedule != "" ? var.schedule : local.derived_schedule

  # Cloud Scheduler waits at most 30 minutes for an HTTP target; the function
  # may run longer (see README.md: a retry meets the lease and gets 409).
  attempt_deadline_seconds = min(var.function_timeout_seconds, 1800)

  apis = toset([
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])
}

# ---------------------------------------------------------------------------
# APIs
# ---------------------------------------------------------------------------

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? local.apis : toset([])

  project = var.project_id
  service = each.value

  # Other things in the project may use these APIs too.
  disable_on_destroy = false
}

# ---------------------------------------------------------------------------
# Service accounts and their roles
# ---------------------------------------------------------------------------

# The identity the function runs as. It gets exactly four roles, each on the
# narrowest resource that works.
resource "google_service_account" "runtime" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-run"
  display_name = "GitLab to BigQuery sync (runtime)"
  description  = "Runs the ${var.name_prefix} function: writes the ${var.bigquery_dataset} dataset, keeps state in Firestore, reads the GitLab token secret."

  depends_on = [google_project_service.apis]
}

# The identity Cloud Scheduler calls the function as. Its only role is
# roles/run.invoker on the function's Cloud Run service.
resource "google_service_account" "invoker" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-invoker"
  display_name = "GitLab to BigQuery sync (scheduler invoker)"
  description  = "Cloud Scheduler calls the ${var.name_prefix} function with an OIDC token of this account."

  depends_on = [google_project_service.apis]
}

# Create, update and delete tables and rows in the one dataset.
resource "google_bigquery_dataset_iam_member" "runtime_data_editor" {
  project    = local.bigquery_project
  dataset_id = var.create_dataset ? google_bigquery_dataset.gitlab[0].dataset_id : var.bigquery_dataset
  role       = "roles/bigquery.dataEditor"
  member     = "serviceAccount:${google_service_account.runtime.email}"
}

# Run load and query (MERGE) jobs. Jobs belong to a project, not a dataset,
# so this role cannot be narrower.
resource "google_project_iam_member" "runtime_job_user" {
  project = local.bigquery_project
  role    = "roles/bigquery.jobUser"
  member  = "serviceAccount:${google_service_account.runtime.email}"
}

# Read and write Firestore documents (cursors and the run lease). Firestore
# grants data access per project. The function opens Firestore in the
# BigQuery project (BIGQUERY_PROJECT), so that is where this role goes.
resource "google_project_iam_member" "runtime_datastore_user" {
  project = local.bigquery_project
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.runtime.email}"
}

# Read the GitLab token, from this one secret only.
resource "google_secret_manager_secret_iam_member" "runtime_token_accessor" {
  project   = var.project_id
  secret_id = google_secret_manager_secret.gitlab_token.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.runtime.email}"
}

# Let the scheduler's account call the function. A 2nd gen function is served
# by a Cloud Run service, and invoking it is checked against that service's
# policy; service_config[0].service is its full name
# (projects/P/locations/L/services/S), which may differ from the function's.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.sync.service_config[0].service
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.invoker.email}"
}

# ---------------------------------------------------------------------------
# Data and secret
# ---------------------------------------------------------------------------

resource "google_bigquery_dataset" "gitlab" {
  count = var.create_dataset ? 1 : 0

  project     = local.bigquery_project
  dataset_id  = var.bigquery_dataset
  location    = var.bigquery_location
  description = "GitLab projects, merge requests and users, written by the ${var.name_prefix} function."
  labels      = var.labels

  # A destroy fails while the dataset still has tables, rather than dropping
  # synced data.
  delete_contents_on_destroy = false

  depends_on = [google_project_service.apis]
}

# The container only. Its value (the GitLab token) is added outside
# Terraform, so that it never lands in the state: see README.md.
resource "google_secret_manager_secret" "gitlab_token" {
  project   = var.project_id
  secret_id = "${var.name_prefix}-gitlab-token"
  labels    = var.labels

  replication {
    auto {}
  }

  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------------------
# Function source
# ---------------------------------------------------------------------------

data "archive_file" "source" {
  type        = "zip"
  source_dir  = local.source_dir
  output_path = "${path.module}/.build/source.zip"
  excludes    = concat(local.source_excludes, var.source_excludes)
}

resource "google_storage_bucket" "source" {
  project  = var.project_id
  name     = "${var.project_id}-${var.name_prefix}-source"
  location = var.region
  labels   = var.labels

  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Holds only build inputs that Terraform can upload again.
  force_destroy = true

  depends_on = [google_project_service.apis]
}

# The object name carries the archive's hash, so a change in the source
# makes a new object and a new build of the function.
resource "google_storage_bucket_object" "source" {
  bucket = google_storage_bucket.source.name
  name   = "source/${data.archive_file.source.output_md5}.zip"
  source = data.archive_file.source.output_path
}

# ---------------------------------------------------------------------------
# Function
# ---------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "sync" {
  project     = var.project_id
  location    = var.region
  name        = var.name_prefix
  description = "Syncs GitLab projects, merge requests and users into BigQuery."
  labels      = var.labels

  build_config {
    # Must follow the go directive of go.mod (go 1.26 -> go126);
    # deploy/terraform_test.go checks it.
    runtime     = "go126"
    entry_point = "SyncGitLab"
    service_account = (
      var.build_service_account == "" ? null :
      startswith(var.build_service_account, "projects/") ? var.build_service_account :
      "projects/${var.project_id}/serviceAccounts/${var.build_service_account}"
    )

    source {
      storage_source {
        bucket = google_storage_bucket.source.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    # One instance, one request at a time: the Firestore lease already allows
    # only one run per connection, and a second instance would only wait for
    # it and answer 409.
    max_instance_count               = 1
    min_instance_count               = 0
    max_instance_request_concurrency = 1
    available_memory                 = var.function_memory
    timeout_seconds                  = var.function_timeout_seconds
    ingress_settings                 = var.ingress_settings
    all_traffic_on_latest_revision   = true
    service_account_email            = google_service_account.runtime.email

    # Keys are the upper case of the configuration keys. Numbers and booleans
    # are written as the function parses them ("50", "true").
    environment_variables = {
      GITLAB_TOKEN_SECRET       = "${google_secret_manager_secret.gitlab_token.id}/versions/latest"
      GITLAB_BASE_URL           = var.gitlab_base_url
      GITLAB_PROJECT_IDS        = var.gitlab_project_ids
      START_DATE                = var.start_date
      SYNC_PROJECTS_TABLE       = tostring(var.sync_projects_table)
      SYNC_MERGE_REQUESTS_TABLE = tostring(var.sync_merge_requests_table)
      SYNC_USERS_TABLE          = tostring(var.sync_users_table)
      MAX_RECORDS_PER_SYNC      = tostring(var.max_records_per_sync)
      SYNC_INTERVAL_HOURS       = tostring(var.sync_interval_hours)
      MAX_RUN_MINUTES           = tostring(var.max_run_minutes)
      BIGQUERY_PROJECT          = var.bigquery_project != "" ? var.bigquery_project : var.project_id
      BIGQUERY_DATASET          = var.bigquery_dataset
      BIGQUERY_LOCATION         = var.bigquery_location
      STATE_COLLECTION          = var.state_collection
      CONNECTION_ID             = var.connection_id
    }
  }

  lifecycle {
    # The function stops itself after max_run_minutes and then still has to
    # finish a page, its load job and the checkpoint; the platform kills the
    # request at timeout_seconds.
    precondition {
      condition     = var.max_run_minutes * 60 + var.run_margin_seconds <= var.function_timeout_seconds
      error_message = "max_run_minutes*60 + run_margin_seconds must not exceed function_timeout_seconds: lower max_run_minutes or raise function_timeout_seconds (3600 at most)."
    }
  }

  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------------------
# Schedule
# ---------------------------------------------------------------------------

resource "google_cloud_scheduler_job" "sync" {
  project     = var.project_id
  region      = var.region
  name        = "${var.name_prefix}-schedule"
  description = "Calls the ${var.name_prefix} function (${local.schedule}, ${var.scheduler_time_zone})."
  schedule    = local.schedule
  time_zone   = var.scheduler_time_zone

  # 30 minutes is Cloud Scheduler's maximum for HTTP targets. A longer run
  # goes on after the scheduler stops waiting, and a retry meanwhile finds
  # the lease held and gets 409 without changing anything.
  attempt_deadline = "${local.attempt_deadline_seconds}s"

  retry_config {
    retry_count          = var.scheduler_retry_count
    min_backoff_duration = "300s"
    max_backoff_duration = "1800s"
    max_doublings        = 2
  }

  http_target {
    http_method = "POST"
    uri         = google_cloudfunctions2_function.sync.url

    # Cloud Run checks an OIDC (ID) token whose audience is the service URL.
    oidc_token {
      service_account_email = google_service_account.invoker.email
      audience              = google_cloudfunctions2_function.sync.url
    }
  }

  lifecycle {
    precondition {
      condition     = var.schedule != "" || contains(local.cron_hours, var.sync_interval_hours)
      error_message = "sync_interval_hours must be 1, 2, 3, 4, 6, 8, 12 or 24 to derive a cron schedule; for another interval set var.schedule to a cron expression."
    }
  }

  # Do not fire before the invoker may call the function and the function
  # may reach its data.
  depends_on = [
    google_cloud_run_v2_service_iam_member.invoker,
    google_bigquery_dataset_iam_member.runtime_data_editor,
    google_project_iam_member.runtime_job_user,
    google_project_iam_member.runtime_datastore_user,
    google_secret_manager_secret_iam_member.runtime_token_accessor,
  ]
}
