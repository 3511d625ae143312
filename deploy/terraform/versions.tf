terraform {
  # 1.5 is the oldest release this module is formatted and checked with
  # (deploy/check-fmt.sh); check blocks and preconditions need >= 1.2.
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 5.0 renamed the secret's automatic replication to "auto {}".
      version = ">= 5.0, < 8.0"
    }
    archive = {
      source = "hashicorp/archive"
      # 2.4 added glob patterns to archive_file's excludes.
      version = ">= 2.4.0"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
