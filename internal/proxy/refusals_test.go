package proxy

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a bytes.Buffer safe for the logger and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRefusalLogRateLimited: a flood of refused clients is one line at
// once and one line a second later with the rest, not a line each.
func TestRefusalLogRateLimited(t *testing.T) {
	var out lockedBuffer
	l := &refusalLog{logger: slog.New(slog.NewTextHandler(&out, nil)), msg: "clients refused: client_connections reached"}
	for range 100 {
		l.add(errors.New("client_connections 1 reached"))
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Fatalf("after 100 refusals at once: %d lines, want 1:\n%s", n, out.String())
	}
	deadline := time.Now().Add(3 * time.Second)
	for strings.Count(out.String(), "\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	l.stop()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "refused=1 ") || !strings.Contains(lines[1], "refused=99 ") ||
		!strings.Contains(lines[1], `msg="clients refused: client_connections reached"`) {
		t.Errorf("log lines:\n%s\nwant refused=1, then refused=99 a second later", out.String())
	}
}
