// Command bqemulator serves the BigQuery emulator the tests use
// (github.com/goccy/bigquery-emulator) on a local port, so that the function
// can be tried by hand with BIGQUERY_EMULATOR_HOST pointing at it.
//
//	go run ./internal/testenv/bqemulator -project demo -addr 127.0.0.1:9050
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/goccy/bigquery-emulator/server"
	"github.com/goccy/bigquery-emulator/types"
)

func main() {
	project := flag.String("project", "demo", "project id to serve")
	addr := flag.String("addr", "127.0.0.1:9050", "HTTP address to listen on")
	flag.Parse()

	if err := run(*project, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "bqemulator:", err)
		os.Exit(1)
	}
}

func run(project, addr string) error {
	srv, err := server.New(server.TempStorage)
	if err != nil {
		return fmt.Errorf("start emulator: %w", err)
	}
	defer srv.Close()
	if err := srv.Load(server.StructSource(types.NewProject(project))); err != nil {
		return fmt.Errorf("load project %s: %w", project, err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv.SetListenCallback(func(httpAddr, _ string) {
		fmt.Printf("bqemulator: project %s at http://%s (BIGQUERY_EMULATOR_HOST=%s)\n", project, httpAddr, httpAddr)
	})
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ctx, addr, "127.0.0.1:0") }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}
