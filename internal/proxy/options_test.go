package proxy

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// TestBacklogHonoured checks the listen(2) backlog the pool's `backlog` key
// asks for, as the kernel reports it (ss shows a listener's backlog as
// Send-Q).
func TestBacklogHonoured(t *testing.T) {
	servers := startRedises(t, 1)
	px, _ := redisPool(t, "  backlog: 77\n", servers...)
	port := strings.TrimPrefix(px.Pools()[0].Addr().String(), "127.0.0.1:")
	out, err := exec.Command(testutil.Binary(t, "ss"), "-ltnH", "sport = :"+port).Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 3 || f[2] != "77" {
		t.Errorf("listener backlog: ss says %q, want Send-Q 77", out)
	}
}

// TestPreconnect: with preconnect the server connections are open before
// any client arrives; without it, none is.
func TestPreconnect(t *testing.T) {
	for _, pre := range []bool{true, false} {
		servers := startRedises(t, 2)
		extra := "  server_connections: 2\n"
		if pre {
			extra += "  preconnect: true\n"
		}
		redisPool(t, extra, servers...)
		want := 0
		if pre {
			want = 2
		}
		for _, s := range servers {
			c := dialRaw(t, s.Addr)
			deadline := time.Now().Add(5 * time.Second)
			for {
				// CLIENT LIST counts our own connection too.
				got := strings.Count(c.roundTrip("CLIENT LIST\r\n"), " laddr=") - 1
				if got == want || (!pre && time.Now().Add(4*time.Second).After(deadline)) {
					if got != want {
						t.Errorf("preconnect=%v: server %s has %d proxy connections, want %d", pre, s.Addr, got, want)
					}
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("preconnect=%v: server %s has %d proxy connections, want %d", pre, s.Addr, got, want)
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// TestServerConnectionsSpread: with server_connections: 3 the clients of a
// pool share at most three connections per server.
func TestServerConnectionsSpread(t *testing.T) {
	servers := startRedises(t, 1)
	_, addr := redisPool(t, "  server_connections: 3\n", servers...)
	for i := 0; i < 10; i++ {
		c := dialRaw(t, addr)
		if got := c.roundTrip(cmd("SET", fmt.Sprint("k", i), "v")); got != "+OK\r\n" {
			t.Fatal(got)
		}
	}
	got := strings.Count(dialRaw(t, servers[0].Addr).roundTrip("CLIENT LIST\r\n"), " laddr=") - 1
	if got != 3 {
		t.Errorf("server has %d proxy connections, want 3", got)
	}
}

// TestIPv6Listener: a pool listening on [::1] serves clients there, over
// a server also reached by IPv6.
func TestIPv6Listener(t *testing.T) {
	srv := startRedises(t, 1, "bind 127.0.0.1 ::1")[0]
	port := strings.TrimPrefix(srv.Addr, "127.0.0.1:")
	_, addr := startProxy(t, fmt.Sprintf("alpha:\n  listen: \"[::1]:{{port}}\"\n  redis: true\n  servers:\n   - \"[::1]:%s:1\"\n", port))
	if !strings.HasPrefix(addr, "[::1]:") {
		t.Fatalf("listening on %s", addr)
	}
	c := dialRaw(t, addr)
	if got := c.roundTrip(cmd("SET", "six", "6")); got != "+OK\r\n" {
		t.Fatal(got)
	}
	if got := dialRaw(t, srv.Addr).roundTrip(cmd("GET", "six")); got != "$1\r\n6\r\n" {
		t.Errorf("key not on the server: %q", got)
	}
}
