package gitlabsync

import (
	"io"
	"log/slog"
)

// Log keys, so every line of every component spells them alike.
const (
	logRun       = "run_id"
	logTable     = "table"
	logProject   = "project"
	logProjectID = "project_id"
	logRows      = "rows"
	logRequests  = "requests"
	logCursor    = "cursor"
	logError     = "error"
	logDuration  = "duration_ms"
	logStatus    = "status"
)

// NewJSONLogger returns a logger writing JSON lines that Cloud Logging reads:
// "severity" instead of "level" (with Cloud Logging's names) and "message"
// instead of "msg".
func NewJSONLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.LevelKey:
				return slog.String("severity", severity(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				a.Key = "message"
			case slog.TimeKey:
				a.Key = "time"
			}
			return a
		},
	}))
}

func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

// discard is a logger that writes nothing.
var discard = slog.New(slog.DiscardHandler)

func loggerOr(l *slog.Logger) *slog.Logger {
	if l == nil {
		return discard
	}
	return l
}
