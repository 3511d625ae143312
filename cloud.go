package gitlabsync

import (
	"context"
	"fmt"
	"os"
	"strings"

	"cloud.google.com/go/bigquery"
	"cloud.google.com/go/firestore"
	secretmanager "cloud.google.com/go/secretmanager/apiv1"
	"cloud.google.com/go/secretmanager/apiv1/secretmanagerpb"
	"google.golang.org/api/option"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
	"github.com/gitlab-bigquery-sync/gitlabsync/load"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
)

// CloudOptions points the Google Cloud clients somewhere other than Google
// (emulators in tests). The zero value uses Google with the environment's
// credentials and project.
type CloudOptions struct {
	BigQuery      []option.ClientOption
	Firestore     []option.ClientOption
	SecretManager []option.ClientOption

	// FirestoreProject is the project of the Firestore database; "" means
	// bigquery_project, else the environment's project.
	FirestoreProject string
}

// BigQueryEmulatorEnv names the variable that points BigQuery at an
// emulator (host:port), as FIRESTORE_EMULATOR_HOST does for Firestore. For
// local runs against github.com/goccy/bigquery-emulator; never set it in the
// cloud.
const BigQueryEmulatorEnv = "BIGQUERY_EMULATOR_HOST"

// Cloud holds the Google Cloud clients of one process. They are built once
// and reused across runs, as clients are meant to be.
type Cloud struct {
	BigQuery      *bigquery.Client
	Firestore     *firestore.Client
	SecretManager *secretmanager.Client

	key string // what the clients were built for
}

// NewCloud builds the clients a configuration needs: BigQuery and Firestore,
// and Secret Manager when the token is to be read from it.
func NewCloud(ctx context.Context, cfg Config, opts CloudOptions) (*Cloud, error) {
	c := &Cloud{key: cloudKey(cfg, opts)}
	bqProject := cfg.BigQueryProject
	if bqProject == "" {
		bqProject = bigquery.DetectProjectID
	}
	bqOpts := opts.BigQuery
	if host := os.Getenv(BigQueryEmulatorEnv); host != "" && len(bqOpts) == 0 {
		if !strings.Contains(host, "://") {
			host = "http://" + host
		}
		bqOpts = []option.ClientOption{option.WithEndpoint(host), option.WithoutAuthentication()}
	}
	var err error
	if c.BigQuery, err = bigquery.NewClient(ctx, bqProject, bqOpts...); err != nil {
		return nil, fmt.Errorf("bigquery.NewClient for project %q (it needs Google credentials, e.g. gcloud auth application-default login; without bigquery_project the project is detected from them): %w",
			cfg.BigQueryProject, err)
	}
	fsProject := opts.FirestoreProject
	if fsProject == "" {
		fsProject = cfg.BigQueryProject
	}
	if fsProject == "" {
		fsProject = firestore.DetectProjectID
	}
	if c.Firestore, err = firestore.NewClient(ctx, fsProject, opts.Firestore...); err != nil {
		c.Close()
		return nil, fmt.Errorf("firestore.NewClient: %w", err)
	}
	if cfg.TokenSecret != "" {
		if c.SecretManager, err = secretmanager.NewClient(ctx, opts.SecretManager...); err != nil {
			c.Close()
			return nil, fmt.Errorf("secretmanager.NewClient: %w", err)
		}
	}
	return c, nil
}

func cloudKey(cfg Config, opts CloudOptions) string {
	return strings.Join([]string{cfg.BigQueryProject, opts.FirestoreProject, fmt.Sprint(cfg.TokenSecret != "")}, "|")
}

// Close closes every client.
func (c *Cloud) Close() {
	if c.BigQuery != nil {
		_ = c.BigQuery.Close()
	}
	if c.Firestore != nil {
		_ = c.Firestore.Close()
	}
	if c.SecretManager != nil {
		_ = c.SecretManager.Close()
	}
}

// Token returns the GitLab token: the Secret Manager version named by
// gitlab_token_secret when set, else gitlab_token. Errors never carry it.
func (c *Cloud) Token(ctx context.Context, cfg Config) (string, error) {
	return ReadToken(ctx, cfg, c.SecretManager)
}

// ReadToken returns the configured token, reading it from Secret Manager
// when cfg names a secret version (sm must then be non-nil).
func ReadToken(ctx context.Context, cfg Config, sm *secretmanager.Client) (string, error) {
	if cfg.TokenSecret == "" {
		return cfg.Token, nil
	}
	if sm == nil {
		return "", fmt.Errorf("read gitlab_token_secret %s: no Secret Manager client", cfg.TokenSecret)
	}
	resp, err := sm.AccessSecretVersion(ctx, &secretmanagerpb.AccessSecretVersionRequest{Name: cfg.TokenSecret})
	if err != nil {
		return "", fmt.Errorf("read gitlab_token_secret %s (the function's service account needs roles/secretmanager.secretAccessor on it): %w",
			cfg.TokenSecret, err)
	}
	token := strings.TrimSpace(string(resp.GetPayload().GetData()))
	if token == "" {
		return "", fmt.Errorf("read gitlab_token_secret %s: the secret version is empty; add the token with gcloud secrets versions add", cfg.TokenSecret)
	}
	return token, nil
}

// Engine returns an engine that reads GitLab with token and writes to
// BigQuery, keeping state in Firestore.
func (c *Cloud) Engine(cfg Config, token string, gl gitlab.Options) (*Engine, error) {
	gl.BaseURL, gl.Token = cfg.BaseURL, token
	src, err := gitlab.NewClient(gl)
	if err != nil {
		return nil, err
	}
	dataset := cfg.BigQueryDataset
	if dataset == "" {
		dataset = DefaultBigQueryDataset
	}
	bq := load.NewBigQuery(c.BigQuery, dataset, cfg.BigQueryLocation)
	bq.Connection = cfg.ConnectionID
	return &Engine{
		Config: cfg,
		Source: src,
		Dest:   bq,
		Store:  state.NewFirestoreStore(c.Firestore, cfg.StateCollection, cfg.ConnectionID),
	}, nil
}

// Compile-time checks that the adapters fit the loop.
var (
	_ Source      = (*gitlab.Client)(nil)
	_ Destination = (*load.BigQuery)(nil)
	_ Store       = (*state.FirestoreStore)(nil)
	_ Store       = (*state.FileStore)(nil)
)
