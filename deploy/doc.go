// Package deploy holds how the function reaches Google Cloud: the Terraform
// module in terraform/ and the checks that keep it honest.
//
// The package has no code of its own. Its tests parse the module with
// github.com/hashicorp/hcl/v2, without provider schemas (providers cannot be
// downloaded where the tests run, so terraform validate is out of reach), and
// check what a reviewer would otherwise check by eye: every variable is
// documented and typed, every configuration key of configuration_example.json
// has a variable of the same name that reaches the function's environment,
// no IAM resource grants a primitive role or a public member, the scheduler
// calls with an OIDC token, and the function's runtime follows go.mod.
// check-fmt.sh runs terraform fmt over the module.
package deploy
