output "function_url" {
  description = "HTTPS URL of the function. Calls need an ID token of a principal with roles/run.invoker on the function's Cloud Run service."
  value       = google_cloudfunctions2_function.sync.url
}

output "function_name" {
  description = "Name of the function (gcloud functions ... NAME --region REGION)."
  value       = google_cloudfunctions2_function.sync.name
}

output "runtime_service_account_email" {
  description = "Service account the function runs as."
  value       = google_service_account.runtime.email
}

output "invoker_service_account_email" {
  description = "Service account whose OIDC token Cloud Scheduler sends to the function."
  value       = google_service_account.invoker.email
}

output "dataset_id" {
  description = "BigQuery dataset the function writes to, as project.dataset."
  value       = "${local.bigquery_project}.${var.create_dataset ? google_bigquery_dataset.gitlab[0].dataset_id : var.bigquery_dataset}"
}

output "secret_id" {
  description = "Secret Manager secret that must hold the GitLab token (add it with gcloud secrets versions add, see README.md)."
  value       = google_secret_manager_secret.gitlab_token.secret_id
}

output "secret_version_name" {
  description = "Version name the function reads (its GITLAB_TOKEN_SECRET)."
  value       = "${google_secret_manager_secret.gitlab_token.id}/versions/latest"
}

output "scheduler_job_name" {
  description = "Name of the Cloud Scheduler job (gcloud scheduler jobs run NAME --location REGION starts it now)."
  value       = google_cloud_scheduler_job.sync.name
}

output "schedule" {
  description = "Cron expression of the scheduler job and its time zone."
  value       = "${local.schedule} (${var.scheduler_time_zone})"
}

output "manual_run_command" {
  description = "Starts one sync now, as you (your account needs roles/run.invoker on the function, which project Owners and Editors have)."
  value       = "curl -X POST -H \"Authorization: Bearer $(gcloud auth print-identity-token)\" ${google_cloudfunctions2_function.sync.url}"
}
