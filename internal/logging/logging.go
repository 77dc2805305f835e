// Package logging maps nutcracker's verbosity levels (-v 0..11) onto log/slog
// and provides a log destination that can be reopened on SIGHUP (logrotate).
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
)

// Nutcracker's log levels (twemproxy src/nc_log.h). A message is written when
// its level is at most the configured verbosity.
const (
	Emerg  = 0
	Alert  = 1
	Crit   = 2
	Err    = 3
	Warn   = 4
	Notice = 5 // the default verbosity
	Info   = 6 // connection lifecycle and server ejection
	Debug  = 7
	Verb   = 8
	VVerb  = 9
	VVVerb = 10
	PVerb  = 11

	MinVerbosity     = Emerg
	MaxVerbosity     = PVerb
	DefaultVerbosity = Notice
)

// slog levels for the nutcracker levels, index = nutcracker level. slog's own
// Error, Warn, Info and Debug sit at ERR, WARN, INFO and DEBUG so that code
// calling logger.Info or logger.Debug means what nutcracker means.
var slogLevels = [...]slog.Level{
	Emerg:  slog.LevelError + 12,
	Alert:  slog.LevelError + 8,
	Crit:   slog.LevelError + 4,
	Err:    slog.LevelError,
	Warn:   slog.LevelWarn,
	Notice: slog.LevelInfo + 2,
	Info:   slog.LevelInfo,
	Debug:  slog.LevelDebug,
	Verb:   slog.LevelDebug - 1,
	VVerb:  slog.LevelDebug - 2,
	VVVerb: slog.LevelDebug - 3,
	PVerb:  slog.LevelDebug - 4,
}

var levelNames = [...]string{
	Emerg: "EMERG", Alert: "ALERT", Crit: "CRIT", Err: "ERROR", Warn: "WARN",
	Notice: "NOTICE", Info: "INFO", Debug: "DEBUG", Verb: "VERB", VVerb: "VVERB",
	VVVerb: "VVVERB", PVerb: "PVERB",
}

// Clamp limits a verbosity to 0..11.
func Clamp(v int) int {
	return max(MinVerbosity, min(MaxVerbosity, v))
}

// Level returns the slog level of nutcracker verbosity v (clamped to 0..11).
func Level(v int) slog.Level { return slogLevels[Clamp(v)] }

// LevelNotice is nutcracker's NOTICE level, between slog's Info and Warn.
const LevelNotice = slog.LevelInfo + 2

// Verbosity holds the current verbosity; it is safe for concurrent use and
// is what SIGTTIN / SIGTTOU change at run time.
type Verbosity struct {
	mu    sync.Mutex
	v     int
	level slog.LevelVar
}

// NewVerbosity returns a Verbosity set to v (clamped).
func NewVerbosity(v int) *Verbosity {
	vb := &Verbosity{}
	vb.Set(v)
	return vb
}

// Set changes the verbosity (clamped to 0..11) and returns the new value.
func (vb *Verbosity) Set(v int) int {
	vb.mu.Lock()
	defer vb.mu.Unlock()
	vb.v = Clamp(v)
	vb.level.Set(Level(vb.v))
	return vb.v
}

// Add moves the verbosity by delta (clamped) and returns the new value.
func (vb *Verbosity) Add(delta int) int {
	vb.mu.Lock()
	v := vb.v + delta
	vb.mu.Unlock()
	return vb.Set(v)
}

// Get returns the current verbosity.
func (vb *Verbosity) Get() int {
	vb.mu.Lock()
	defer vb.mu.Unlock()
	return vb.v
}

// Leveler returns the slog.Leveler that follows this verbosity.
func (vb *Verbosity) Leveler() slog.Leveler { return &vb.level }

// NewLogger returns a text logger writing to w at the verbosity vb, with
// nutcracker's level names (NOTICE, CRIT, VERB, ...).
func NewLogger(w io.Writer, vb *Verbosity) *slog.Logger {
	h := slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: vb.Leveler(),
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey && len(groups) == 0 {
				if lv, ok := a.Value.Any().(slog.Level); ok {
					a.Value = slog.StringValue(levelName(lv))
				}
			}
			return a
		},
	})
	return slog.New(h)
}

func levelName(lv slog.Level) string {
	// The most verbose nutcracker level whose slog level is <= lv.
	for n := MinVerbosity; n <= MaxVerbosity; n++ {
		if slogLevels[n] <= lv {
			return levelNames[n]
		}
	}
	return levelNames[PVerb]
}

// Log writes msg at nutcracker level n (for levels slog has no method for).
func Log(l *slog.Logger, n int, msg string, args ...any) {
	l.Log(context.Background(), Level(n), msg, args...)
}

// File is a log destination: standard error, or a file opened for append
// that Reopen closes and opens again (after logrotate has moved it).
// It is safe for concurrent use.
type File struct {
	path string // "" means standard error

	mu sync.Mutex
	f  *os.File
}

// OpenFile opens path for appending; an empty path or "stderr" means
// standard error, as in nutcracker.
func OpenFile(path string) (*File, error) {
	if path == "stderr" {
		path = ""
	}
	lf := &File{path: path}
	if path == "" {
		lf.f = os.Stderr
		return lf, nil
	}
	f, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	lf.f = f
	return lf, nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening log file: %w", err)
	}
	return f, nil
}

// Path returns the file's path, or "" for standard error.
func (lf *File) Path() string { return lf.path }

// Write implements io.Writer.
func (lf *File) Write(p []byte) (int, error) {
	lf.mu.Lock()
	defer lf.mu.Unlock()
	return lf.f.Write(p)
}

// Reopen reopens the log file at its path; for standard error it does
// nothing. On failure the old file stays in use.
func (lf *File) Reopen() error {
	if lf.path == "" {
		return nil
	}
	f, err := openAppend(lf.path)
	if err != nil {
		return err
	}
	lf.mu.Lock()
	old := lf.f
	lf.f = f
	lf.mu.Unlock()
	return old.Close()
}

// Close closes the log file (never standard error).
func (lf *File) Close() error {
	if lf.path == "" {
		return nil
	}
	lf.mu.Lock()
	defer lf.mu.Unlock()
	return lf.f.Close()
}
