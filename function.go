package gitlabsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/functions"

	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
	"github.com/gitlab-bigquery-sync/gitlabsync/state"
)

func init() {
	functions.HTTP("SyncGitLab", SyncGitLab)
}

// defaultService serves the deployed function: configuration from the
// environment, Google Cloud clients with the runtime's credentials.
var defaultService = &Service{}

// SyncGitLab is the Cloud Function: each call runs one sync and answers
// with its JSON summary.
func SyncGitLab(w http.ResponseWriter, r *http.Request) {
	defaultService.ServeHTTP(w, r)
}

// Service answers sync calls. Its zero value reads the environment and
// talks to Google Cloud; tests point it at emulators.
type Service struct {
	// Env looks up configuration variables; nil means os.LookupEnv.
	Env func(string) (string, bool)

	// Cloud points the Google Cloud clients elsewhere (emulators).
	Cloud CloudOptions

	// GitLab adjusts the GitLab client's options (retry waits in tests).
	GitLab gitlab.Options

	// Logger receives the run's logs; nil means JSON lines on stdout.
	Logger *slog.Logger

	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// BatchSize overrides DefaultBatchSize when not 0.
	BatchSize int

	mu    sync.Mutex
	cloud *Cloud
}

// maxRequestBody bounds what a call may send.
const maxRequestBody = 64 << 10

// runGrace is how long past its budget a run may take to write its last
// batch and checkpoint before its context is cancelled.
const runGrace = 5 * time.Minute

// ServeHTTP runs one sync. It answers 200 when every table succeeded (or the
// run was skipped), 500 when any failed or the configuration is bad, 409
// when another run holds the lease, 400 for a bad request; always JSON.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := s.logger()
	req, err := parseRequest(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Status: StatusFailed, Error: err.Error()})
		return
	}
	env := s.Env
	if env == nil {
		env = os.LookupEnv
	}
	cfg, err := LoadConfig(env)
	if err != nil {
		body := errorBody{Status: StatusFailed, Error: err.Error()}
		var ce *ConfigError
		if errors.As(err, &ce) {
			body.Problems = ce.Problems
		}
		log.Error("bad configuration", logError, err.Error())
		writeJSON(w, http.StatusInternalServerError, body)
		return
	}
	if err := req.Validate(cfg); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Status: StatusFailed, Error: err.Error()})
		return
	}

	// The run is bounded by its own budget, not by the caller: Cloud
	// Scheduler stops waiting after 30 minutes, and a run cut then would
	// throw away the batch it was writing.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), cfg.MaxRunTime+runGrace)
	defer cancel()
	sum, err := s.run(ctx, cfg, req, log)
	var held *state.HeldError
	switch {
	case errors.As(err, &held):
		log.Warn("another run holds the lease", "holder", held.Lease.RunID, "since", held.Lease.Since)
		writeJSON(w, http.StatusConflict, errorBody{
			Status:     "conflict",
			Error:      "another sync of this connection is running; try again after it ends",
			HeldBy:     held.Lease.RunID,
			HeldSince:  held.Lease.Since.UTC().Format(time.RFC3339),
			HeldExpire: held.Lease.Expires.UTC().Format(time.RFC3339),
		})
	case err != nil:
		log.Error("run did not start", logError, err.Error())
		writeJSON(w, http.StatusInternalServerError, errorBody{Status: StatusFailed, Error: err.Error()})
	case sum.Failed():
		writeJSON(w, http.StatusInternalServerError, sum)
	default:
		writeJSON(w, http.StatusOK, sum)
	}
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return NewJSONLogger(os.Stdout, slog.LevelInfo)
}

// run wires the engine for cfg and runs it.
func (s *Service) run(ctx context.Context, cfg Config, req Request, log *slog.Logger) (*Summary, error) {
	cloud, err := s.clients(cfg)
	if err != nil {
		return nil, err
	}
	token, err := cloud.Token(ctx, cfg)
	if err != nil {
		return nil, err
	}
	engine, err := cloud.Engine(cfg, token, s.GitLab)
	if err != nil {
		return nil, err
	}
	engine.Logger, engine.Now, engine.BatchSize = log, s.Now, s.BatchSize
	return engine.Run(ctx, req)
}

// clients returns the instance's Google Cloud clients, building them on the
// first call (and again only if the configuration points elsewhere).
func (s *Service) clients(cfg Config) (*Cloud, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cloud != nil && s.cloud.key == cloudKey(cfg, s.Cloud) {
		return s.cloud, nil
	}
	if s.cloud != nil {
		s.cloud.Close()
		s.cloud = nil
	}
	// Clients outlive the request that builds them.
	c, err := NewCloud(context.Background(), cfg, s.Cloud)
	if err != nil {
		return nil, err
	}
	s.cloud = c
	return c, nil
}

// Close closes the service's clients.
func (s *Service) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cloud != nil {
		s.cloud.Close()
		s.cloud = nil
	}
}

// errorBody is the JSON answer of a call that produced no summary.
type errorBody struct {
	Status     string   `json:"status"`
	Error      string   `json:"error"`
	Problems   []string `json:"problems,omitempty"`
	HeldBy     string   `json:"held_by,omitempty"`
	HeldSince  string   `json:"held_since,omitempty"`
	HeldExpire string   `json:"held_until,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// parseRequest reads the narrowing of a run from the query string
// (tables=a,b&force=true&full_refresh=c) and/or a JSON body with the same
// keys. Nothing else is accepted: a call cannot change where data comes
// from or goes to.
func parseRequest(r *http.Request) (Request, error) {
	var req Request
	if r.Method != http.MethodPost {
		return req, fmt.Errorf("method %s: use POST; a GET (a browser, a health check) never starts a sync", r.Method)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return req, fmt.Errorf("read request body: %w", err)
	}
	if len(body) > maxRequestBody {
		return req, fmt.Errorf("request body over %d bytes", maxRequestBody)
	}
	if s := strings.TrimSpace(string(body)); s != "" {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			return req, fmt.Errorf("request body: %v; a call may only send {\"tables\": [...], \"force\": true, \"full_refresh\": [...]}: where data comes from and goes to is configuration", err)
		}
	}
	for key, vals := range r.URL.Query() {
		v := strings.Join(vals, ",")
		switch key {
		case "tables":
			req.Tables = append(req.Tables, SplitList(v)...)
		case "full_refresh":
			req.FullRefresh = append(req.FullRefresh, SplitList(v)...)
		case "force":
			b, err := strconv.ParseBool(v)
			if err != nil {
				return req, fmt.Errorf("force=%q: want true or false", v)
			}
			req.Force = req.Force || b
		default:
			return req, fmt.Errorf("query parameter %q: a call may only send tables, force and full_refresh; where data comes from and goes to is configuration", key)
		}
	}
	return req, nil
}

// SplitList splits a comma-separated list, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
