package main

import (
	"context"
	"fmt"
	"net"
	"os"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
)

// functionName is the entry point the root package registers in its init.
const functionName = "SyncGitLab"

// serve serves the SyncGitLab function through the functions framework
// until ctx is done. The function reads its configuration from the process
// environment on every call; -config is exported as CONFIG_FILE for it. The
// configuration is checked once here so that a mistake shows at start.
func (m *Main) serve(ctx context.Context) error {
	if m.ConfigPath != "" {
		if err := os.Setenv(configFileEnv, m.ConfigPath); err != nil {
			return fmt.Errorf("export -config as %s: %w", configFileEnv, err)
		}
	}
	cfg, err := gitlabsync.LoadConfig(m.configEnv)
	if err != nil {
		return err
	}
	if err := os.Setenv("FUNCTION_TARGET", functionName); err != nil {
		return fmt.Errorf("set FUNCTION_TARGET: %w", err)
	}

	dataset := cfg.BigQueryDataset
	if dataset == "" {
		dataset = gitlabsync.DefaultBigQueryDataset
	}
	project := cfg.BigQueryProject
	if project == "" {
		project = "(the credentials' project)"
	}
	addr := net.JoinHostPort(m.Host, m.Port)
	fmt.Fprintf(m.Stderr, "gitlab-sync: serving %s on http://%s/ for %d projects "+
		"into BigQuery %s.%s, state in Firestore %s/%s\n",
		functionName, addr, len(cfg.Projects), project, dataset, cfg.StateCollection, cfg.ConnectionID)
	fmt.Fprintf(m.Stderr, "gitlab-sync: try: curl -X POST 'http://%s/?force=true'\n", addr)

	errc := make(chan error, 1)
	go func() { errc <- funcframework.StartHostPort(m.Host, m.Port) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", addr, err)
	case <-ctx.Done():
		return nil
	}
}
