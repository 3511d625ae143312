// Command gitlab-sync runs the sync engine of the SyncGitLab Cloud Function
// from a terminal. With no BigQuery dataset configured it writes rows to a
// local DuckDB file and cursors to a JSON state file; with one, it writes to
// BigQuery and Firestore as the function does. "gitlab-sync serve" serves the
// function itself through the functions framework.
//
//	gitlab-sync -config configuration.json
//	gitlab-sync -config configuration.json -tables merge_requests -full-refresh merge_requests
//	gitlab-sync serve -config configuration.json
//
// Run gitlab-sync -h for every flag and configuration key.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
)

func main() {
	// The first interrupt ends the run cleanly (the lease is given back and
	// the summary printed); a second one kills the process.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(NewMain().Exec(ctx))
}

// Defaults of the flags.
const (
	// DefaultTimeoutMargin is added to max_run_minutes to make the default
	// -timeout: the engine stops itself at max_run_minutes, the deadline
	// only catches what hangs past it.
	DefaultTimeoutMargin = 5 * time.Minute

	// DefaultPort is where serve listens when $PORT is not set.
	DefaultPort = "8080"

	// DefaultHost is the address serve listens on: this machine only.
	DefaultHost = "127.0.0.1"
)

// configFileEnv is the variable gitlabsync.LoadConfig reads the
// configuration file's path from.
const configFileEnv = "CONFIG_FILE"

// Main is the gitlab-sync command: ParseFlags reads Args, Run does the work.
// Its fields let tests drive it in process.
type Main struct {
	// Args are the command-line arguments, without the program name.
	Args []string

	// Env looks up environment variables; nil means os.LookupEnv. serve
	// reads the process environment whatever Env says, as the function
	// does.
	Env func(string) (string, bool)

	// Stdout receives the JSON summary (and -h); Stderr the progress lines
	// and errors.
	Stdout, Stderr io.Writer

	// Cloud points the Google Cloud clients elsewhere (emulators in tests);
	// the zero value uses Google with the environment's credentials.
	Cloud gitlabsync.CloudOptions

	// Set by ParseFlags.
	Serve      bool               // the serve subcommand
	ConfigPath string             // -config
	Request    gitlabsync.Request // -tables, -force, -full-refresh
	Timeout    time.Duration      // -timeout; 0 means max_run_minutes + DefaultTimeoutMargin
	LogFormat  string             // -log-format: text or json
	GitLab     gitlab.Options     // -retry-max, -retry-wait-max, -request-timeout
	BatchSize  int                // -batch-size; 0 means gitlabsync.DefaultBatchSize
	Host, Port string             // serve -host, -port
}

// NewMain returns a Main reading the process's arguments and environment
// and writing to its standard output and error.
func NewMain() *Main {
	return &Main{Args: os.Args[1:], Env: os.LookupEnv, Stdout: os.Stdout, Stderr: os.Stderr}
}

// Exec parses the flags, runs, reports any error on Stderr and returns the
// exit status: 0 when every table succeeded or the run was skipped (and for
// -h), 1 when a table failed or the run could not start, 2 for bad flags or
// configuration.
func (m *Main) Exec(ctx context.Context) int {
	err := m.ParseFlags()
	if err == nil {
		err = m.Run(ctx)
	}
	m.report(err)
	return exitCode(err)
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// ParseFlags reads m.Args into m's fields. It returns flag.ErrHelp after
// printing the help for -h.
func (m *Main) ParseFlags() error {
	args := m.Args
	if len(args) > 0 && args[0] == "serve" {
		m.Serve = true
		args = args[1:]
	}
	fs := m.flagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			m.printUsage()
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q: the only subcommand is serve, given first",
			fs.Arg(0))}
	}
	if m.Serve {
		return nil
	}

	switch {
	case m.LogFormat != "text" && m.LogFormat != "json":
		return usageError{fmt.Sprintf("-log-format %q: want text or json", m.LogFormat)}
	case m.Timeout < 0:
		return usageError{fmt.Sprintf("-timeout %s: want a positive duration, or 0 for max_run_minutes + %s",
			m.Timeout, DefaultTimeoutMargin)}
	case m.GitLab.RetryMax < 1:
		// gitlab.Options reads 0 as its default, so "no retries" cannot be said.
		return usageError{fmt.Sprintf("-retry-max %d: want at least 1", m.GitLab.RetryMax)}
	case m.GitLab.RetryWaitMax <= 0:
		return usageError{fmt.Sprintf("-retry-wait-max %s: want a positive duration",
			m.GitLab.RetryWaitMax)}
	case m.GitLab.RequestTimeout <= 0:
		return usageError{fmt.Sprintf("-request-timeout %s: want a positive duration",
			m.GitLab.RequestTimeout)}
	case m.BatchSize < 1:
		return usageError{fmt.Sprintf("-batch-size %d: want at least 1", m.BatchSize)}
	}
	// The backoff needs its floor at or below its ceiling.
	m.GitLab.RetryWaitMin = min(gitlab.DefaultRetryWaitMin, m.GitLab.RetryWaitMax)
	return nil
}

// flagSet declares the flags of the command (or of serve) on m's fields.
func (m *Main) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("gitlab-sync", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed by Exec and printUsage
	fs.StringVar(&m.ConfigPath, "config", "", "")
	if m.Serve {
		port, ok := m.getenv("PORT")
		if !ok || port == "" {
			port = DefaultPort
		}
		fs.StringVar(&m.Host, "host", DefaultHost, "")
		fs.StringVar(&m.Port, "port", port, "")
		return fs
	}
	fs.BoolVar(&m.Request.Force, "force", false, "")
	fs.Func("tables", "", func(s string) error {
		m.Request.Tables = gitlabsync.SplitList(s)
		return nil
	})
	fs.Func("full-refresh", "", func(s string) error {
		m.Request.FullRefresh = gitlabsync.SplitList(s)
		return nil
	})
	fs.DurationVar(&m.Timeout, "timeout", 0, "")
	fs.StringVar(&m.LogFormat, "log-format", "text", "")
	fs.IntVar(&m.GitLab.RetryMax, "retry-max", gitlab.DefaultRetryMax, "")
	fs.DurationVar(&m.GitLab.RetryWaitMax, "retry-wait-max", gitlab.DefaultRetryWaitMax, "")
	fs.DurationVar(&m.GitLab.RequestTimeout, "request-timeout", gitlab.DefaultRequestTimeout, "")
	fs.IntVar(&m.BatchSize, "batch-size", gitlabsync.DefaultBatchSize, "")
	return fs
}

func (m *Main) getenv(key string) (string, bool) {
	if m.Env == nil {
		return os.LookupEnv(key)
	}
	return m.Env(key)
}

// configEnv is the lookup LoadConfig gets: -config answers CONFIG_FILE,
// the environment everything else (and CONFIG_FILE without -config).
func (m *Main) configEnv(key string) (string, bool) {
	if key == configFileEnv && m.ConfigPath != "" {
		return m.ConfigPath, true
	}
	return m.getenv(key)
}

// Run runs one sync (or serves, for serve) with the parsed flags. The JSON
// summary goes to Stdout once the run has started, whatever its outcome.
func (m *Main) Run(ctx context.Context) error {
	if m.Serve {
		return m.serve(ctx)
	}

	// Read the configuration and check the request against it.
	cfg, err := gitlabsync.LoadConfig(m.configEnv)
	if err != nil {
		return err
	}
	if err := m.Request.Validate(cfg); err != nil {
		return usageError{err.Error()}
	}
	timeout := m.Timeout
	if timeout == 0 {
		timeout = cfg.MaxRunTime + DefaultTimeoutMargin
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log := m.logger()

	// Fail at once, and clearly, when GitLab cannot be reached at all.
	if err := checkReachable(ctx, cfg.BaseURL, m.GitLab.RetryWaitMax); err != nil {
		return err
	}

	// Wire the engine and run it.
	engine, closeEngine, err := m.engine(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeEngine()
	sum, err := engine.Run(ctx, m.Request)
	var held *state.HeldError
	switch {
	case errors.As(err, &held):
		return heldError{lease: held.Lease}
	case err != nil:
		return fmt.Errorf("start the run: %w", err)
	}

	// The summary is the command's answer, whatever the outcome.
	out, err := json.MarshalIndent(sum, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the summary: %w", err)
	}
	if _, err := fmt.Fprintf(m.Stdout, "%s\n", out); err != nil {
		return fmt.Errorf("write the summary: %w", err)
	}
	if sum.Status == gitlabsync.StatusSkipped {
		fmt.Fprintln(m.Stderr,
			"gitlab-sync: run skipped: sync_interval_hours has not passed; -force runs it now")
	}
	for _, line := range skippedProjects(sum) {
		fmt.Fprintf(m.Stderr, "gitlab-sync: %s\n", line)
	}
	if sum.Failed() {
		return runFailedError{sum: sum, timeout: timeout, ctxErr: ctx.Err()}
	}
	return nil
}

// logger returns the engine's logger: lines for people on Stderr, or with
// -log-format json the function's JSON lines.
func (m *Main) logger() *slog.Logger {
	if m.LogFormat == "json" {
		return gitlabsync.NewJSONLogger(m.Stderr, slog.LevelInfo)
	}
	return newTextLogger(m.Stderr, slog.LevelInfo)
}

// heldError says that another run holds the lease of the connection.
type heldError struct {
	lease state.Lease
	path  string // the state file, when the run is local
}

func (e heldError) Error() string {
	msg := "another run of this connection is in progress"
	if e.lease.RunID != "" {
		msg = fmt.Sprintf("another run (%s) of this connection has held its lease since %s",
			e.lease.RunID, e.lease.Since.Local().Format(time.RFC3339))
	}
	if e.path != "" {
		msg += fmt.Sprintf(" and is using %s", e.path)
	}
	msg += "; wait for it to end and run again"
	if !e.lease.Expires.IsZero() {
		msg += fmt.Sprintf(" (its lease expires at %s at the latest)",
			e.lease.Expires.Local().Format(time.RFC3339))
	}
	return msg
}

// runFailedError is a run that started and in which a table failed; the
// summary says what happened.
type runFailedError struct {
	sum     *gitlabsync.Summary
	timeout time.Duration
	ctxErr  error
}

func (e runFailedError) Error() string {
	return "the run failed: " + strings.Join(e.lines(), "; ")
}

// lines lists what failed, one item a line, for people.
func (e runFailedError) lines() []string {
	var out []string
	if e.sum.Error != "" {
		out = append(out, e.sum.Error)
	}
	for _, ts := range e.sum.Tables {
		if ts.Status != gitlabsync.StatusFailed {
			continue
		}
		if e.sum.Error == "" || !strings.HasPrefix(ts.Error, "not run: ") {
			out = append(out, fmt.Sprintf("%s: %s", ts.Table, ts.Error))
		}
		for _, ps := range ts.Projects {
			same := ps.Reason == ts.Error || ps.Reason == e.sum.Error
			if ps.Status == gitlabsync.StatusFailed && !same {
				out = append(out, fmt.Sprintf("%s: project %s: %s", ts.Table, ps.Project, ps.Reason))
			}
		}
	}
	switch {
	case errors.Is(e.ctxErr, context.DeadlineExceeded):
		out = append(out, fmt.Sprintf("stopped by -timeout %s; raise it, or lower max_run_minutes "+
			"so that the run stops itself in time", e.timeout))
	case errors.Is(e.ctxErr, context.Canceled):
		out = append(out, "interrupted")
	}
	return out
}

// skippedProjects lists the projects a run left out because the token may
// not see them (403, 404: often a mistyped path), once each: a run that
// skips them still succeeds, so they are easy to miss.
func skippedProjects(sum *gitlabsync.Summary) []string {
	var out []string
	seen := map[string]bool{}
	for _, ts := range sum.Tables {
		for _, ps := range ts.Projects {
			notReached := strings.HasPrefix(ps.Reason, "not reached: ")
			if ps.Status != gitlabsync.StatusSkipped || notReached || seen[ps.Project] {
				continue
			}
			seen[ps.Project] = true
			out = append(out, fmt.Sprintf("project %s skipped: %s", ps.Project, ps.Reason))
		}
	}
	return out
}

// exitCode returns the exit status for an error of ParseFlags or Run.
func exitCode(err error) int {
	var ce *gitlabsync.ConfigError
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ce), errors.As(err, &ue):
		return 2
	}
	return 1
}

// report prints err for people on Stderr, one problem a line.
func (m *Main) report(err error) {
	var (
		ce     *gitlabsync.ConfigError
		ue     usageError
		failed runFailedError
	)
	var lines []string
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return
	case errors.As(err, &ce):
		for _, p := range ce.Problems {
			if m.ConfigPath != "" {
				p = strings.Replace(p, configFileEnv+": ", "-config: ", 1)
			}
			lines = append(lines, p)
		}
		lines = append(lines, "run gitlab-sync -h for every configuration key")
	case errors.As(err, &ue):
		lines = []string{ue.msg, "run gitlab-sync -h for help"}
	case errors.As(err, &failed):
		lines = []string{"the run failed:"}
		for _, l := range failed.lines() {
			lines = append(lines, "  "+l)
		}
		if failed.sum.Error == "" {
			lines = append(lines, "the summary on standard output has the details; "+
				"the next run resumes from the last checkpoint")
		}
	default:
		lines = []string{err.Error()}
	}
	for _, l := range lines {
		fmt.Fprintf(m.Stderr, "gitlab-sync: %s\n", l)
	}
}
