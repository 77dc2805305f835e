package proxy

import (
	"log/slog"
	"sync"
	"time"
)

// refusalLogEvery is the shortest time between two warnings about refused
// clients of a pool.
const refusalLogEvery = time.Second

// refusalLog logs a pool's refused clients (for want of file descriptors,
// or over client_connections): the first at once, then at most one line each refusalLogEvery with how
// many were refused since the line before, so that a flood of clients
// does not flood the log and the counts still add up. The refusals of the
// last interval are logged when it ends, by a timer.
type refusalLog struct {
	logger *slog.Logger // immutable
	msg    string       // immutable: what the line says

	mu      sync.Mutex // guards the fields below
	pending int        // refusals not logged yet
	cause   error      // accept's error at the latest refusal
	last    time.Time  // when the last line was logged
	timer   *time.Timer
	stopped bool
}

// add counts one refusal caused by cause (accept's EMFILE or ENFILE, or
// the client_connections limit).
func (l *refusalLog) add(cause error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending++
	l.cause = cause
	if l.timer != nil || l.stopped {
		return // the timer logs it
	}
	if wait := refusalLogEvery - time.Since(l.last); wait > 0 {
		l.timer = time.AfterFunc(wait, l.flush)
		return
	}
	l.logLocked()
}

func (l *refusalLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.timer = nil
	if l.pending > 0 && !l.stopped {
		l.logLocked()
	}
}

func (l *refusalLog) logLocked() {
	l.logger.Warn(l.msg, "refused", l.pending, "err", l.cause)
	l.pending = 0
	l.last = time.Now()
}

// stop logs what is pending and logs nothing more: the pool is closing.
func (l *refusalLog) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	if l.pending > 0 && !l.stopped {
		l.logLocked()
	}
	l.stopped = true
}
