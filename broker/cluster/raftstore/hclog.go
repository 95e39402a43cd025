package raftstore

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"

	"github.com/hashicorp/go-hclog"
)

// hclogger passes hashicorp/raft's and raft-wal's logs at warn and above to
// an slog.Logger; their info and debug chatter (every election step) is
// dropped, and so are errors about connections the store itself closed
// (raft reports each inbound connection ended by Close as a decode error).
type hclogger struct {
	base    *slog.Logger // without the component and implied args
	l       *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*hclogger)(nil)

func newHCLogger(l *slog.Logger, name string) *hclogger {
	return &hclogger{base: l, l: l.With("component", name), name: name}
}

func (h *hclogger) Log(level hclog.Level, msg string, args ...any) {
	var sl slog.Level
	switch level {
	case hclog.Warn:
		sl = slog.LevelWarn
	case hclog.Error:
		sl = slog.LevelError
	default:
		return
	}
	for _, a := range args {
		if err, ok := a.(error); ok && errors.Is(err, net.ErrClosed) {
			return
		}
	}
	h.l.Log(context.Background(), sl, msg, args...)
}

func (h *hclogger) Trace(msg string, args ...any) {}
func (h *hclogger) Debug(msg string, args ...any) {}
func (h *hclogger) Info(msg string, args ...any)  {}
func (h *hclogger) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *hclogger) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *hclogger) IsTrace() bool { return false }
func (h *hclogger) IsDebug() bool { return false }
func (h *hclogger) IsInfo() bool  { return false }
func (h *hclogger) IsWarn() bool  { return true }
func (h *hclogger) IsError() bool { return true }

func (h *hclogger) ImpliedArgs() []any { return h.implied }

func (h *hclogger) With(args ...any) hclog.Logger {
	return &hclogger{base: h.base, l: h.l.With(args...), name: h.name, implied: append(append([]any(nil), h.implied...), args...)}
}

func (h *hclogger) Name() string { return h.name }

func (h *hclogger) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.ResetNamed(name)
}

func (h *hclogger) ResetNamed(name string) hclog.Logger {
	return &hclogger{base: h.base, l: h.base.With("component", name).With(h.implied...), name: name, implied: h.implied}
}

func (h *hclogger) SetLevel(hclog.Level) {}

func (h *hclogger) GetLevel() hclog.Level { return hclog.Warn }

func (h *hclogger) StandardLogger(*hclog.StandardLoggerOptions) *log.Logger {
	return slog.NewLogLogger(h.l.Handler(), slog.LevelWarn)
}

func (h *hclogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return h.StandardLogger(opts).Writer()
}
