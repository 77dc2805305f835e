package proxy

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestShutdownCutsOffStuckClient: a client whose requests fill the socket
// of a server that reads nothing. Its session is stuck in its own read
// callback, writing to that server, and no timeout is set. Shutdown with
// a deadline must still end: it used to close the client's socket, and
// the close waited for that callback, which waited for the server, which
// only the rest of the shutdown would have failed.
func TestShutdownCutsOffStuckClient(t *testing.T) {
	f := startFakeServer(t, nil, nil) // takes connections, never reads
	px, addr := startProxy(t, "alpha:\n  listen: 127.0.0.1:{{port}}\n  redis: true\n  servers:\n   - "+f.addr+":1\n")
	c := dialRaw(t, addr)
	value := strings.Repeat("v", 100<<10)
	req := cmd("SET", "k", value)
	go func() {
		// Until the proxy stops reading: tens of MB, more than the
		// sockets on the way hold.
		for range 400 {
			if _, err := io.WriteString(c.conn, req); err != nil {
				return
			}
		}
	}()
	srv := px.Pools()[0].servers[0]
	if !waitFor(5*time.Second, func() bool {
		b := srv.conns[0]
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.counts.requests > 0
	}) {
		t.Fatal("the requests never reached the server connection")
	}
	time.Sleep(300 * time.Millisecond) // the writes to the server fill its socket

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done <- px.Shutdown(ctx)
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown: %v, want the context's deadline", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("Shutdown still running after 5 s\n%s", faultGoroutines())
	}
	if !waitFor(5*time.Second, func() bool { return px.Pools()[0].clients.Load() == 0 }) {
		t.Errorf("%d client sessions left after Shutdown", px.Pools()[0].clients.Load())
	}
}
