package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gitlabsync "github.com/gitlab-bigquery-sync/gitlabsync"
	"github.com/gitlab-bigquery-sync/gitlabsync/gitlab"
)

func TestMain_ParseFlags(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		code  int // exitCode of ParseFlags' error
		check func(t *testing.T, m *Main)
	}{
		{"Defaults", nil, 0, func(t *testing.T, m *Main) {
			if m.Serve || m.ConfigPath != "" || m.Request.Force || m.Request.Tables != nil || m.Timeout != 0 {
				t.Errorf("got %+v, want zero flags", m)
			}
			if m.LogFormat != "text" || m.BatchSize != gitlabsync.DefaultBatchSize {
				t.Errorf("log format %q, batch size %d; want text, %d", m.LogFormat, m.BatchSize, gitlabsync.DefaultBatchSize)
			}
			want := gitlab.Options{
				RetryMax:       gitlab.DefaultRetryMax,
				RetryWaitMin:   gitlab.DefaultRetryWaitMin,
				RetryWaitMax:   gitlab.DefaultRetryWaitMax,
				RequestTimeout: gitlab.DefaultRequestTimeout,
			}
			if m.GitLab != want {
				t.Errorf("GitLab options = %+v, want %+v", m.GitLab, want)
			}
		}},
		{"Request", []string{"-config", "c.json", "-force", "-tables", "projects, merge_requests", "-full-refresh", "merge_requests"}, 0,
			func(t *testing.T, m *Main) {
				want := gitlabsync.Request{Tables: []string{"projects", "merge_requests"}, Force: true, FullRefresh: []string{"merge_requests"}}
				if got := fmt.Sprint(m.Request); got != fmt.Sprint(want) || m.ConfigPath != "c.json" {
					t.Errorf("request %s, config %q; want %s, c.json", got, m.ConfigPath, fmt.Sprint(want))
				}
			}},
		{"Advanced", []string{"-timeout", "90s", "-retry-max", "2", "-retry-wait-max", "10ms", "-request-timeout", "5s", "-batch-size", "7", "-log-format", "json"}, 0,
			func(t *testing.T, m *Main) {
				want := gitlab.Options{RetryMax: 2, RetryWaitMin: 10 * time.Millisecond, RetryWaitMax: 10 * time.Millisecond, RequestTimeout: 5 * time.Second}
				if m.GitLab != want || m.Timeout != 90*time.Second || m.BatchSize != 7 || m.LogFormat != "json" {
					t.Errorf("got %+v, timeout %s, batch %d, format %s", m.GitLab, m.Timeout, m.BatchSize, m.LogFormat)
				}
			}},
		{"Serve", []string{"serve", "-config", "c.json", "-port", "9000"}, 0, func(t *testing.T, m *Main) {
			if !m.Serve || m.ConfigPath != "c.json" || m.Port != "9000" || m.Host != DefaultHost {
				t.Errorf("serve %v config %q host %q port %q; want true, c.json, %s, 9000", m.Serve, m.ConfigPath, m.Host, m.Port, DefaultHost)
			}
		}},
		{"ServePortFromEnv", []string{"serve"}, 0, func(t *testing.T, m *Main) {
			if m.Port != "8123" {
				t.Errorf("port %q, want $PORT 8123", m.Port)
			}
		}},
		{"Help", []string{"-h"}, 0, nil},
		{"ErrUnknownFlag", []string{"-dataset", "x"}, 2, nil},
		{"ErrServeFlagInRun", []string{"-port", "1"}, 2, nil},
		{"ErrRunFlagInServe", []string{"serve", "-force"}, 2, nil},
		{"ErrArgument", []string{"run"}, 2, nil},
		{"ErrLogFormat", []string{"-log-format", "xml"}, 2, nil},
		{"ErrTimeout", []string{"-timeout", "-1s"}, 2, nil},
		{"ErrRetryMax", []string{"-retry-max", "0"}, 2, nil},
		{"ErrRetryWaitMax", []string{"-retry-wait-max", "0s"}, 2, nil},
		{"ErrRequestTimeout", []string{"-request-timeout", "0s"}, 2, nil},
		{"ErrBatchSize", []string{"-batch-size", "0"}, 2, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout bytes.Buffer
			m := &Main{Args: c.args, Stdout: &stdout, Stderr: &bytes.Buffer{}, Env: mapEnv(map[string]string{"PORT": "8123"})}
			err := m.ParseFlags()
			if got := exitCode(err); got != c.code {
				t.Fatalf("exit code %d (%v), want %d", got, err, c.code)
			}
			if errors.Is(err, flag.ErrHelp) && !strings.Contains(stdout.String(), "Configuration keys") {
				t.Errorf("-h printed no help:\n%s", stdout.String())
			}
			if c.check != nil {
				c.check(t, m)
			}
		})
	}
}

func mapEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestMain_Config(t *testing.T) {
	dir := t.TempDir()
	file := func(name, token string) string {
		path := filepath.Join(dir, name)
		data := fmt.Sprintf(`{"gitlab_token": %q, "gitlab_project_ids": "1", "connection_id": %q}`, token, strings.TrimSuffix(name, ".json"))
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	flagFile, envFile := file("flag.json", "from-flag-file"), file("env.json", "from-env-file")

	cases := []struct {
		name       string
		args       []string
		env        map[string]string
		token, cid string
	}{
		{"ConfigFlag", []string{"-config", flagFile}, nil, "from-flag-file", "flag"},
		{"ConfigFlagWinsOverConfigFile", []string{"-config", flagFile}, map[string]string{"CONFIG_FILE": envFile}, "from-flag-file", "flag"},
		{"ConfigFileEnv", nil, map[string]string{"CONFIG_FILE": envFile}, "from-env-file", "env"},
		{"EnvWinsOverFile", []string{"-config", flagFile}, map[string]string{"GITLAB_TOKEN": "from-env", "CONNECTION_ID": "c2"}, "from-env", "c2"},
		{"EnvOnly", nil, map[string]string{"GITLAB_TOKEN": "from-env", "GITLAB_PROJECT_IDS": "1"}, "from-env", "default"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := &Main{Args: c.args, Env: mapEnv(c.env)}
			if err := m.ParseFlags(); err != nil {
				t.Fatal(err)
			}
			cfg, err := gitlabsync.LoadConfig(m.configEnv)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Token != c.token || cfg.ConnectionID != c.cid {
				t.Errorf("token %q, connection %q; want %q, %q", cfg.Token, cfg.ConnectionID, c.token, c.cid)
			}
		})
	}

	t.Run("ErrMissingFile", func(t *testing.T) {
		var stderr bytes.Buffer
		m := &Main{Args: []string{"-config", filepath.Join(dir, "nope.json")}, Env: mapEnv(nil), Stdout: &bytes.Buffer{}, Stderr: &stderr}
		if code := m.Exec(t.Context()); code != 2 {
			t.Errorf("exit %d, want 2", code)
		}
		if !strings.HasPrefix(stderr.String(), "gitlab-sync: -config: read ") {
			t.Errorf("stderr = %q, want it to blame -config", stderr.String())
		}
	})
}

func TestMain_LogFormatJSON(t *testing.T) {
	h := MustHarness(t)
	r := h.run("-log-format", "json")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) < 4 {
		t.Fatalf("%d log lines, want one per table and project:\n%s", len(lines), r.stderr)
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("log line is not JSON: %s", l)
			continue
		}
		if rec["severity"] == nil || rec["message"] == nil {
			t.Errorf("log line without severity and message: %s", l)
		}
	}
}

func TestTextHandler(t *testing.T) {
	at := time.Date(2024, 5, 1, 12, 30, 45, 0, time.Local)
	cases := []struct {
		name string
		log  func(l *slog.Logger)
		want string
	}{
		{"Attrs", func(l *slog.Logger) {
			l.Info("projects ok", "table", "projects", "rows", 3, "more", false)
		}, "12:30:45 INFO  projects ok table=projects rows=3 more=false\n"},
		{"QuotesAndEmpty", func(l *slog.Logger) {
			l.Warn("skipped", "reason", `403 "Forbidden"`, "cursor", "", "path", "a/b=c")
		}, "12:30:45 WARN  skipped reason=\"403 \\\"Forbidden\\\"\" path=\"a/b=c\"\n"},
		{"RunIDLeftOut", func(l *slog.Logger) {
			l.With("run_id", "r1", "table", "users").Error("users failed", "error", "boom")
		}, "12:30:45 ERROR users failed table=users error=boom\n"},
		{"Groups", func(l *slog.Logger) {
			l.WithGroup("g").Info("m", "k", 1, slog.Group("sub", "x", "y"))
		}, "12:30:45 INFO  m g.k=1 g.sub.x=y\n"},
		{"Time", func(l *slog.Logger) {
			l.Info("m", "since", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
		}, "12:30:45 INFO  m since=2024-01-02T03:04:05Z\n"},
		{"BelowLevel", func(l *slog.Logger) { l.Debug("hidden") }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := newTextLogger(&buf, slog.LevelInfo)
			c.log(slog.New(fixedTime{l.Handler(), at}))
			if got := buf.String(); got != c.want {
				t.Errorf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}

// fixedTime stamps every record with one time.
type fixedTime struct {
	slog.Handler
	t time.Time
}

func (h fixedTime) Handle(ctx context.Context, r slog.Record) error {
	r.Time = h.t
	return h.Handler.Handle(ctx, r)
}

func (h fixedTime) WithAttrs(a []slog.Attr) slog.Handler {
	return fixedTime{h.Handler.WithAttrs(a), h.t}
}

func (h fixedTime) WithGroup(name string) slog.Handler {
	return fixedTime{h.Handler.WithGroup(name), h.t}
}

func TestUsage(t *testing.T) {
	var stdout bytes.Buffer
	(&Main{Stdout: &stdout}).printUsage()
	help := stdout.String()

	// Every configuration key, with its help.
	for _, k := range gitlabsync.Keys {
		if d, ok := keyDocs[k]; !ok || d.doc == "" {
			t.Errorf("configuration key %s has no help", k)
		}
		if !strings.Contains(help, "\n  "+k) {
			t.Errorf("-h does not list configuration key %s", k)
		}
	}
	if got, want := len(keyDocs), len(gitlabsync.Keys); got != want {
		t.Errorf("help documents %d keys, want the %d of gitlabsync.Keys", got, want)
	}

	// Every flag of the command and of serve.
	for _, m := range []*Main{{}, {Serve: true}} {
		m.flagSet().VisitAll(func(f *flag.Flag) {
			if !strings.Contains(help, "\n  -"+f.Name+" ") {
				t.Errorf("-h does not explain -%s", f.Name)
			}
		})
	}
}
