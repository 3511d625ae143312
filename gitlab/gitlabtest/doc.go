// Package gitlabtest simulates the part of GitLab that the sync reads: REST API v4 version,
// projects, project merge requests and users, and the GraphQL users(ids:) query. End-to-end
// tests and benchmarks aim the real client (gitlab.com/gitlab-org/api/client-go/v2) at it;
// the gitlabsim command serves it for people.
//
// The simulator answers with bodies shaped exactly like recordings of real GitLab servers,
// embedded from testdata/ (testdata/SOURCES.md says where each comes from; it lists every
// shared sample, of which testdata/ holds the ones used here). Each entity is kept as its recorded JSON
// object, key order, nulls and nested user objects included, and a mutation changes only the
// fields it names. The behaviour follows GitLab where it is documented or recorded:
// inclusive updated_after/updated_before filters, offset pagination headers and Link
// relations, totals left out past 10,000 rows, 401/403/404 bodies, RateLimit-* headers. Faults
// (429, 5xx, slow answers) are injected on demand, and counters and a request log let a test
// check what a client sent.
//
// A typical test:
//
//	srv := gitlabtest.NewSampleServer(gitlabtest.Options{Token: "t"})
//	defer srv.Close()
//	client, err := gitlab.NewClient("t", gitlab.WithBaseURL(srv.URL()))
//
// The package owns only the simulation; it knows nothing about BigQuery, Firestore or the
// sync's own types.
package gitlabtest
