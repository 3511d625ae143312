package main

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
)

// newTextLogger returns a logger writing lines for people to w.
func newTextLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(&textHandler{w: w, mu: &sync.Mutex{}, level: level})
}

// textHandler writes one line per record: the local time, the level, the
// message, then key=value pairs, such as
//
//	14:03:07 INFO  merge_requests: project 278964 ok project_id=278964 rows=20 requests=1
//
// Empty values are left out, and so is the run id, which the summary
// carries; -log-format json keeps everything.
type textHandler struct {
	w     io.Writer
	mu    *sync.Mutex // shared by the handlers of one logger
	level slog.Leveler
	attrs []byte // preformatted attributes from WithAttrs
	group string // prefix of keys from WithGroup, ending in "."
}

// Enabled reports whether l is at or above the handler's level.
func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// Handle writes r as one line.
func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	b := make([]byte, 0, 256)
	if !r.Time.IsZero() {
		b = r.Time.Local().AppendFormat(b, "15:04:05")
		b = append(b, ' ')
	}
	b = append(b, levelName(r.Level)...)
	b = append(b, ' ')
	b = append(b, r.Message...)
	b = append(b, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		b = appendAttr(b, h.group, a)
		return true
	})
	b = append(b, '\n')

	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := h.w.Write(b)
	return err
}

// WithAttrs returns a handler that adds attrs to every line.
func (h *textHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.attrs = append([]byte(nil), h.attrs...)
	for _, a := range attrs {
		h2.attrs = appendAttr(h2.attrs, h.group, a)
	}
	return &h2
}

// WithGroup returns a handler that prefixes later keys with name.
func (h *textHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.group = h.group + name + "."
	return &h2
}

// levelName is the level padded to five columns, so messages line up.
func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARN "
	case l >= slog.LevelInfo:
		return "INFO "
	}
	return "DEBUG"
}

// appendAttr appends " key=value", quoting a value that needs it.
func appendAttr(b []byte, prefix string, a slog.Attr) []byte {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return b
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			b = appendAttr(b, prefix, g)
		}
		return b
	}
	key := prefix + a.Key
	if key == "run_id" {
		return b
	}
	var s string
	switch a.Value.Kind() {
	case slog.KindTime:
		s = a.Value.Time().UTC().Format(time.RFC3339)
	default:
		s = a.Value.String()
	}
	if s == "" {
		return b
	}
	b = append(b, ' ')
	b = append(b, key...)
	b = append(b, '=')
	if strings.ContainsAny(s, " =\"\t\n\\") || !strconv.CanBackquote(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}
