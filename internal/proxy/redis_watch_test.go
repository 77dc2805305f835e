package proxy

import (
	"context"
	"errors"
	"fmt"
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
