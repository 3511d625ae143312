#!/usr/bin/env bash
# Checks that the Terraform module in deploy/terraform is formatted as
# `terraform fmt` writes it. Only the CLI is needed, no provider: fmt works
# offline. A terraform already on PATH is used; otherwise v1.5.7 is built
# from the Go module proxy into $(go env GOPATH)/bin (a few minutes on 2 cores).
set -euo pipefail

readonly TERRAFORM_VERSION=v1.5.7

cd "$(dirname "${BASH_SOURCE[0]}")/.."

gobin="$(go env GOPATH)/bin"
export PATH="$PATH:$gobin"

if ! command -v terraform >/dev/null 2>&1; then
	echo "check-fmt: terraform not found, installing ${TERRAFORM_VERSION} with go install" >&2
	go install "github.com/hashicorp/terraform@${TERRAFORM_VERSION}"
fi

# No CLI configuration is needed for fmt; this keeps a missing one from
# printing a warning. Terraform also stays off the network: no version check.
export TF_CLI_CONFIG_FILE=/dev/null
export CHECKPOINT_DISABLE=1

echo "check-fmt: $(terraform version 2>/dev/null | sed -n 1p)" >&2
if ! terraform fmt -check -recursive -diff deploy/terraform; then
	echo "check-fmt: run 'terraform fmt -recursive deploy/terraform' and commit the result" >&2
	exit 1
fi
echo "check-fmt: deploy/terraform is formatted" >&2
