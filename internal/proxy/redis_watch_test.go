package proxy

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestWatchMatchesRedis: WATCH, MULTI, EXEC as with a lone redis-server,
// including the nil EXEC of a transaction whose watched key changed.
func TestWatchMatchesRedis(t *testing.T) {
	servers := startRedises(t, 3)
	_, addr := redisPool(t, "  hash_tag: \"{}\"\n", servers...)
	lone := startRedises(t, 1)[0]
	for _, target := range []struct{ name, addr string }{{"redis-server", lone.Addr}, {"proxy", addr}} {
		t.Run(target.name, func(t *testing.T) {
			a, b := dialRaw(t, target.addr), dialRaw(t, target.addr)
			steps := []struct {
				c         *rawClient
				req, want string
			}{
				{a, cmd("SET", "{w}:k", "1"), "+OK\r\n"},
				{a, cmd("WATCH", "{w}:k", "{w}:j"), "+OK\r\n"},
				{a, cmd("GET", "{w}:k"), "$1\r\n1\r\n"},
				{a, cmd("MULTI"), "+OK\r\n"},
				{a, cmd("SET", "{w}:k", "2"), "+QUEUED\r\n"},
				{a, cmd("EXEC"), "*1\r\n+OK\r\n"},
				// The watched key changes under the client: EXEC is nil.
				{a, cmd("WATCH", "{w}:k"), "+OK\r\n"},
				{b, cmd("SET", "{w}:k", "3"), "+OK\r\n"},
				{a, cmd("MULTI"), "+OK\r\n"},
				{a, cmd("SET", "{w}:k", "4"), "+QUEUED\r\n"},
				{a, cmd("EXEC"), "*-1\r\n"},
				{a, cmd("GET", "{w}:k"), "$1\r\n3\r\n"},
				// UNWATCH, and DISCARD, end the watch.
				{a, cmd("WATCH", "{w}:k"), "+OK\r\n"},
				{a, cmd("UNWATCH"), "+OK\r\n"},
				{b, cmd("SET", "{w}:k", "5"), "+OK\r\n"},
				{a, cmd("MULTI"), "+OK\r\n"},
				{a, cmd("INCR", "{w}:k"), "+QUEUED\r\n"},
				{a, cmd("EXEC"), "*1\r\n:6\r\n"},
				{a, cmd("WATCH", "{w}:k"), "+OK\r\n"},
				{a, cmd("MULTI"), "+OK\r\n"},
				{a, cmd("DISCARD"), "+OK\r\n"},
				{b, cmd("SET", "{w}:k", "7"), "+OK\r\n"},
				{a, cmd("MULTI"), "+OK\r\n"},
				{a, cmd("INCR", "{w}:k"), "+QUEUED\r\n"},
				{a, cmd("EXEC"), "*1\r\n:8\r\n"},
			}
			for i, st := range steps {
				if got := st.c.roundTrip(st.req); got != st.want {
					t.Errorf("step %d %q: %q, want %q", i, st.req, got, st.want)
				}
			}
		})
	}
}

// TestWatchAcrossServersRefused: watched keys must share a server.
func TestWatchAcrossServersRefused(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "", servers...)
	other := ""
	for i := 0; other == ""; i++ {
		if k := fmt.Sprintf("w%d", i); backendOf(px, k) != backendOf(px, "w") {
			other = k
		}
	}
	c := dialRaw(t, addr)
	if got := c.roundTrip(cmd("WATCH", "w", other)); !strings.HasPrefix(got, "-ERR WATCH: key '"+other+"' is on server") {
		t.Errorf("WATCH over two servers: %q", got)
	}
	if got := c.roundTrip(cmd("WATCH", "w")); got != "+OK\r\n" {
		t.Errorf("WATCH: %q", got)
	}
	if got := c.roundTrip(cmd("WATCH", other)); !strings.HasPrefix(got, "-ERR WATCH: key") {
		t.Errorf("a second WATCH on another server: %q", got)
	}
	c.send(cmd("MULTI") + cmd("SET", other, "x") + cmd("EXEC"))
	c.readReply()
	if got := c.readReply(); !strings.HasPrefix(got, "-ERR key '"+other+"' is on server") {
		t.Errorf("a key elsewhere in a watched transaction: %q", got)
	}
	if got := c.readReply(); got != "-EXECABORT Transaction discarded because of previous errors.\r\n" {
		t.Errorf("EXEC: %q", got)
	}
}

// TestWatchGoRedisOptimisticLock: go-redis's Watch retry loop from 20
// goroutines ends at the exact total.
func TestWatchGoRedisOptimisticLock(t *testing.T) {
	servers := startRedises(t, 2)
	_, addr := redisPool(t, "", servers...)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 20})
	defer c.Close()
	const workers, each = 20, 10
	incr := func() error {
		for range 1000 {
			err := c.Watch(ctx, func(tx *redis.Tx) error {
				n, err := tx.Get(ctx, "counter").Int()
				if err != nil && !errors.Is(err, redis.Nil) {
					return err
				}
				_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
					p.Set(ctx, "counter", n+1, 0)
					return nil
				})
				return err
			}, "counter")
			if !errors.Is(err, redis.TxFailedErr) {
				return err
			}
		}
		return errors.New("no increment went through in 1000 tries")
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if err := incr(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := c.Get(ctx, "counter").Int(); err != nil || n != workers*each {
		t.Errorf("counter = %d, %v; want %d", n, err, workers*each)
	}
}

// TestWatchServerDies: the server of a watch dies while the client holds
// it: one error reply per request, the watch is reported lost, and the
// client can start again once the server is back.
func TestWatchServerDies(t *testing.T) {
	servers := startRedises(t, 1)
	_, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)
	if got := c.roundTrip(cmd("WATCH", "k")); got != "+OK\r\n" {
		t.Fatalf("WATCH: %q", got)
	}
	servers[0].Kill()
	c.send(cmd("MULTI") + cmd("SET", "k", "1") + cmd("EXEC"))
	c.readReply()
	c.readReply()
	if got := c.readReply(); !strings.HasPrefix(got, "-ERR ") {
		t.Errorf("EXEC after the server died: %q", got)
	}
	// The watch is over; the next request goes to the shared connection.
	deadline := time.Now().Add(2 * time.Second)
	got := c.roundTrip(cmd("GET", "k"))
	for !strings.HasPrefix(got, "-ERR ") && time.Now().Before(deadline) {
		got = c.roundTrip(cmd("GET", "k"))
	}
	if !strings.HasPrefix(got, "-ERR ") {
		t.Errorf("GET with the server dead: %q", got)
	}
}

// TestTransactionServerKilledNoLeak: the server dies between MULTI and
// EXEC, and while a client holds a WATCH connection; each time the EXEC
// gets exactly one error, and after ten rounds the proxy's goroutines and
// descriptors are back where they started.
func TestTransactionServerKilledNoLeak(t *testing.T) {
	servers := startRedises(t, 1)
	_, addr := redisPool(t, "", servers...)
	warm := dialRaw(t, addr)
	warm.roundTrip(cmd("SET", "k", "0"))
	warm.conn.Close()
	time.Sleep(100 * time.Millisecond)
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	for round := range 10 {
		c := dialRaw(t, addr)
		watch := round%2 == 1
		if watch {
			if got := c.roundTrip(cmd("WATCH", "k")); got != "+OK\r\n" {
				t.Fatalf("round %d WATCH: %q", round, got)
			}
		}
		c.send(cmd("MULTI") + cmd("INCR", "k"))
		c.readReply()
		c.readReply()
		servers[0].Kill()
		got := c.roundTrip(cmd("EXEC"))
		if !strings.HasPrefix(got, "-ERR ") {
			t.Errorf("round %d (watch %v): EXEC with the server dead = %q, want one error", round, watch, got)
		}
		if got := c.roundTrip(cmd("PING")); got != "+PONG\r\n" {
			t.Errorf("round %d: the client after the failed EXEC: %q", round, got)
		}
		c.conn.Close()
		servers[0].Restart(t)
	}
	// Settle: closed sessions and connections finish within a moment.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (runtime.NumGoroutine() > goroutines+2 || openFDs(t) > fds+2) {
		time.Sleep(50 * time.Millisecond)
	}
	if g, f := runtime.NumGoroutine(), openFDs(t); g > goroutines+2 || f > fds+2 {
		t.Errorf("after 10 rounds: %d goroutines (was %d), %d descriptors (was %d)", g, goroutines, f, fds)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// TestWatchSplitTransaction: with split_transactions, a transaction under
// WATCH may write keys on other servers than the watched one; the watch
// guards it all: a changed watched key applies nothing anywhere. Replies
// as from a lone redis-server.
func TestWatchSplitTransaction(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "  hash_tag: \"{}\"\n  split_transactions: true\n", servers...)
	tags := tagsOnServers(t, px.Pools()[0], 3)
	a, b, c := tags[0]+"a", tags[1]+"b", tags[2]+"c"
	lone := startRedises(t, 1)[0]
	for _, target := range []struct{ name, addr string }{{"redis-server", lone.Addr}, {"proxy", addr}} {
		t.Run(target.name, func(t *testing.T) {
			cl, other := dialRaw(t, target.addr), dialRaw(t, target.addr)
			steps := []struct {
				c         *rawClient
				req, want string
			}{
				{cl, cmd("WATCH", a), "+OK\r\n"},
				{cl, cmd("MULTI"), "+OK\r\n"},
				{cl, cmd("SET", b, "1"), "+QUEUED\r\n"},
				{cl, cmd("SET", a, "1"), "+QUEUED\r\n"},
				{cl, cmd("INCR", c), "+QUEUED\r\n"},
				{cl, cmd("EXEC"), "*3\r\n+OK\r\n+OK\r\n:1\r\n"},
				// The watched key changes: nothing is applied, on any server.
				{cl, cmd("WATCH", a), "+OK\r\n"},
				{other, cmd("SET", a, "changed"), "+OK\r\n"},
				{cl, cmd("MULTI"), "+OK\r\n"},
				{cl, cmd("SET", b, "2"), "+QUEUED\r\n"},
				{cl, cmd("INCR", c), "+QUEUED\r\n"},
				{cl, cmd("SET", a, "2"), "+QUEUED\r\n"},
				{cl, cmd("EXEC"), "*-1\r\n"},
				{cl, cmd("MGET", a, b, c), "*3\r\n$7\r\nchanged\r\n$1\r\n1\r\n$1\r\n1\r\n"},
				// No command on the watched server: the watch still guards.
				{cl, cmd("WATCH", a), "+OK\r\n"},
				{other, cmd("SET", a, "again"), "+OK\r\n"},
				{cl, cmd("MULTI"), "+OK\r\n"},
				{cl, cmd("INCR", c), "+QUEUED\r\n"},
				{cl, cmd("EXEC"), "*-1\r\n"},
				{cl, cmd("WATCH", a), "+OK\r\n"},
				{cl, cmd("MULTI"), "+OK\r\n"},
				{cl, cmd("INCR", c), "+QUEUED\r\n"},
				{cl, cmd("INCR", b), "+QUEUED\r\n"},
				{cl, cmd("EXEC"), "*2\r\n:2\r\n:2\r\n"},
				{cl, cmd("MGET", a, b, c), "*3\r\n$5\r\nagain\r\n$1\r\n2\r\n$1\r\n2\r\n"},
			}
			for i, st := range steps {
				if got := st.c.roundTrip(st.req); got != st.want {
					t.Errorf("step %d %q: %q, want %q", i, st.req, got, st.want)
				}
			}
			// Requests pipelined after such an EXEC come after it.
			cl.send(cmd("WATCH", a) + cmd("MULTI") + cmd("INCR", b) + cmd("INCR", a) + cmd("EXEC") + cmd("GET", b))
			for i, want := range []string{"+OK\r\n", "+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n", "-ERR value is not an integer or out of range\r\n", "$1\r\n3\r\n"} {
				got := cl.readReply()
				if i == 4 {
					// EXEC's array: INCR b is 3, INCR a fails on its value.
					want = "*2\r\n:3\r\n-ERR value is not an integer or out of range\r\n"
				}
				if got != want {
					t.Errorf("pipelined reply %d: %q, want %q", i, got, want)
				}
			}
		})
	}
}
