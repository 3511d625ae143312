// Command gitlabsim serves the GitLab simulator of package gitlabtest, loaded with the
// recorded samples, so that a person can run the sync against it.
//
//	GITLAB_SIM_TOKEN=secret go run ./gitlab/gitlabtest/gitlabsim -prefix /gitlab
//
// It prints one line with the base URL to give the client and the projects it serves, then
// answers until interrupted. Flags:
//
//	-addr     address to listen on (default 127.0.0.1:9999)
//	-token    token requests must carry (default $GITLAB_SIM_TOKEN; required)
//	-prefix   path prefix of a self-managed instance under a subpath, such as /gitlab
//	-latency  latency added to every response, such as 50ms
//	-zone     time zone of timestamps the simulator writes, such as Europe/Paris (default UTC)
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab/gitlabtest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gitlabsim:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gitlabsim", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:9999", "address to listen on")
	token := fs.String("token", os.Getenv("GITLAB_SIM_TOKEN"),
		"token requests must carry (default $GITLAB_SIM_TOKEN)")
	prefix := fs.String("prefix", "", "path prefix of a self-managed instance, such as /gitlab")
	latency := fs.Duration("latency", 0, "latency added to every response")
	zone := fs.String("zone", "", "time zone of timestamps the simulator writes (default UTC)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *token == "" {
		return errors.New("a token is required: set -token or GITLAB_SIM_TOKEN")
	}
	opts := gitlabtest.Options{Token: *token, Prefix: *prefix, Latency: *latency}
	if *zone != "" {
		loc, err := time.LoadLocation(*zone)
		if err != nil {
			return fmt.Errorf("load zone %q: %w", *zone, err)
		}
		opts.Zone = loc
	}

	srv := gitlabtest.NewUnstartedServer(opts)
	if err := srv.LoadSamples(); err != nil {
		return fmt.Errorf("load samples: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}

	var projects []string
	for _, id := range srv.ProjectIDs() {
		projects = append(projects, fmt.Sprintf("%d %s", id, srv.ProjectPath(id)))
	}
	fmt.Printf("gitlabsim: serving http://%s%s; projects: %s\n",
		ln.Addr(), strings.TrimRight(opts.Prefix, "/"), strings.Join(projects, ", "))

	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	return hs.Serve(ln)
}
