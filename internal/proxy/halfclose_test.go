package proxy

import (
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// TestHalfCloseRepliesThenEOF: a client that shuts down its side after its
// requests (nc -N, a script's shutdown) gets every reply and then the
// proxy's close, whether its FIN came with the last request or after it.
// A client that sends memcached noreply requests and closes, expecting no
// reply at all, must not leave its session behind.
func TestHalfCloseRepliesThenEOF(t *testing.T) {
	for _, tc := range []struct {
		name      string
		start     func(t testing.TB, n int) []*testutil.Server
		pool      func(t testing.TB, extra string, servers ...*testutil.Server) (*Proxy, string)
		req, want string
		silent    string // requests with no reply at all
	}{
		{"redis", func(t testing.TB, n int) []*testutil.Server { return startRedises(t, n) }, redisPool,
			"SET k v\r\nGET k\r\nPING\r\n", "+OK\r\n$1\r\nv\r\n+PONG\r\n", ""},
		{"memcached", func(t testing.TB, n int) []*testutil.Server { return startMemcacheds(t, n) }, memcachePool,
			"set k 0 0 1 noreply\r\nv\r\nget k\r\n", "VALUE k 0 1\r\nv\r\nEND\r\n", "set k 0 0 1 noreply\r\nw\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			px, addr := tc.pool(t, "", tc.start(t, 1)...)
			for i := range 50 {
				c := dialRaw(t, addr)
				c.send(tc.req)
				if err := c.conn.(*net.TCPConn).CloseWrite(); err != nil {
					t.Fatal(err)
				}
				_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
				got, err := io.ReadAll(c.r)
				if err != nil || string(got) != tc.want {
					t.Fatalf("try %d: read %q, %v; want %q, then the proxy's close", i, got, err, tc.want)
				}
				c.conn.Close()
			}
			if tc.silent == "" {
				return
			}
			for range 50 {
				c := dialRaw(t, addr)
				c.send(tc.silent)
				c.conn.Close()
			}
			deadline := time.Now().Add(5 * time.Second)
			for px.Pools()[0].clients.Load() > 0 {
				if time.Now().After(deadline) {
					t.Fatalf("%d sessions still open after their clients closed", px.Pools()[0].clients.Load())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// TestHalfCloseAfterManyBursts: past its first bursts a session no longer
// peeks after each read (that costs a system call per request); a client
// that half-closes then is found by the pool's idle sweep, so it still
// gets its replies and the proxy's close, within the sweep interval.
func TestHalfCloseAfterManyBursts(t *testing.T) {
	_, addr := redisPool(t, "", startRedises(t, 1)...)
	const clients = 20
	errs := make(chan error, clients)
	start := time.Now()
	for range clients {
		go func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(halfClosedSweep + 4*time.Second))
			buf := make([]byte, 64)
			for range sessionEarlyPeeks + 3 {
				if _, err := conn.Write([]byte("PING\r\n")); err != nil {
					errs <- err
					return
				}
				if _, err := io.ReadFull(conn, buf[:7]); err != nil {
					errs <- err
					return
				}
			}
			if _, err := conn.Write([]byte("PING\r\n")); err != nil {
				errs <- err
				return
			}
			_ = conn.(*net.TCPConn).CloseWrite()
			got, err := io.ReadAll(conn)
			if err == nil && string(got) != "+PONG\r\n" {
				err = fmt.Errorf("read %q after the half-close", got)
			}
			errs <- err
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d half-closed clients closed by the proxy within %v", clients, time.Since(start).Round(time.Millisecond))
}
