// Package testenv starts the real services our tests run against: the
// BigQuery emulator in process, a Secret Manager gRPC server in process and
// the Firestore emulator that ships with the Google Cloud CLI.
//
// A test that needs one of them fails when it cannot be had; none skips.
package testenv

import (
	"context"
	"testing"

	"cloud.google.com/go/bigquery"
	"github.com/goccy/bigquery-emulator/server"
	"github.com/goccy/bigquery-emulator/types"
	"google.golang.org/api/option"
)

// BigQueryProject is the project id the BigQuery emulator serves.
const BigQueryProject = "test-project"

// BigQuery is a BigQuery emulator running in this process.
type BigQuery struct {
	URL     string
	Project string
	Client  *bigquery.Client
}

// ClientOptions returns the options that point a BigQuery client at the
// emulator.
func (b *BigQuery) ClientOptions() []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint(b.URL), option.WithoutAuthentication()}
}

// MustBigQuery starts a BigQuery emulator (github.com/goccy/bigquery-emulator)
// for the test, with an empty project, and stops it when the test ends.
func MustBigQuery(tb testing.TB) *BigQuery {
	tb.Helper()
	srv, err := server.New(server.TempStorage)
	if err != nil {
		tb.Fatalf("start BigQuery emulator: %v", err)
	}
	if err := srv.Load(server.StructSource(types.NewProject(BigQueryProject))); err != nil {
		tb.Fatalf("load BigQuery emulator project: %v", err)
	}
	ts := srv.TestServer()
	tb.Cleanup(func() {
		ts.Close()
		_ = srv.Close()
	})

	b := &BigQuery{URL: ts.URL, Project: BigQueryProject}
	client, err := bigquery.NewClient(context.Background(), BigQueryProject, b.ClientOptions()...)
	if err != nil {
		tb.Fatalf("bigquery.NewClient for the emulator: %v", err)
	}
	tb.Cleanup(func() { _ = client.Close() })
	b.Client = client
	return b
}
