package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// TestEvalshaRetriedAfterFlush: a server that lost its scripts gets the
// script again from the proxy, and the client sees only the final reply.
func TestEvalshaRetriedAfterFlush(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)
	key := "rk"
	owner := backendOf(px, key)
	body := "return redis.call('INCR', KEYS[1])"
	sha := corpusSHA1(body)
	if got := c.roundTrip(cmd("SCRIPT", "LOAD", body)); got != "$40\r\n"+sha+"\r\n" {
		t.Fatalf("SCRIPT LOAD: %q", got)
	}
	redisDo(t, owner, "SCRIPT", "FLUSH")
	// Pipelined with requests the proxy answers and a request to another
	// server, in one write: each reply in its place, exactly one per
	// request.
	other := keyOn(t, px, otherThan(t, px, owner))
	c.send(cmd("PING") + cmd("EVALSHA", sha, "1", key) + cmd("GET", other) + cmd("PING"))
	for i, want := range []string{"+PONG\r\n", ":1\r\n", "$-1\r\n", "+PONG\r\n"} {
		if got := c.readReply(); got != want {
			t.Errorf("reply %d: %q, want %q", i, got, want)
		}
	}
	if !scriptExistsOn(t, owner, sha) {
		t.Errorf("%s: the retry did not load the script", owner)
	}
	// Followed by a request to the same server, already on its way when
	// -NOSCRIPT arrives: the script must not run after it, so the client
	// gets -NOSCRIPT, as from the server directly.
	redisDo(t, owner, "SCRIPT", "FLUSH")
	c.send(cmd("EVALSHA", strings.ToUpper(sha), "1", key) + cmd("GET", key) + cmd("EVALSHA_RO", corpusSHA1("return 7"), "1", key))
	for i, want := range []string{"-NOSCRIPT No matching script. Please use EVAL.\r\n", "$1\r\n1\r\n",
		"-NOSCRIPT No matching script. Please use EVAL.\r\n"} {
		if got := c.readReply(); got != want {
			t.Errorf("pipelined reply %d: %q, want %q", i, got, want)
		}
	}
	if got := c.roundTrip(cmd("EVALSHA", strings.ToUpper(sha), "1", key)); got != ":2\r\n" {
		t.Errorf("EVALSHA alone, upper case: %q", got)
	}

	// A script the proxy saw through EVAL, and EVALSHA_RO.
	ro := "return redis.call('GET', KEYS[1])"
	if got := c.roundTrip(cmd("EVAL", ro, "1", key)); got != "$1\r\n2\r\n" {
		t.Fatalf("EVAL: %q", got)
	}
	redisDo(t, owner, "SCRIPT", "FLUSH")
	if got := c.roundTrip(cmd("EVALSHA_RO", corpusSHA1(ro), "1", key)); got != "$1\r\n2\r\n" {
		t.Errorf("EVALSHA_RO after FLUSH: %q", got)
	}

	// Inside MULTI there is no retry: the EXEC reply holds the error.
	redisDo(t, owner, "SCRIPT", "FLUSH")
	c.send(cmd("MULTI") + cmd("EVALSHA", sha, "1", key) + cmd("EXEC"))
	for i, want := range []string{"+OK\r\n", "+QUEUED\r\n", "*1\r\n-NOSCRIPT No matching script. Please use EVAL.\r\n"} {
		if got := c.readReply(); got != want {
			t.Errorf("MULTI reply %d: %q, want %q", i, got, want)
		}
	}

	// The retry counts as one more request to the server, answered once:
	// requests and responses agree, nothing is left queued, and each
	// response has one latency sample.
	srv := px.Pools()[0].pick([]byte(key))
	if !waitFor(2*time.Second, func() bool {
		ss := srv.collect(nil)
		return ss.Requests == ss.Responses
	}) {
		t.Error("requests and responses disagree")
	}
	ss := srv.collect(nil)
	if ss.InQueue != 0 || ss.OutQueue != 0 || ss.InQueueBytes != 0 || ss.OutQueueBytes != 0 {
		t.Errorf("queues not empty: %+v", ss)
	}
	if ss.Latency != nil {
		snap := ss.Latency.Snapshot()
		if snap.Count() != uint64(ss.Responses) {
			t.Errorf("%d latency samples for %d responses", snap.Count(), ss.Responses)
		}
	}
	t.Logf("server %s: %d requests, %d responses", srv.name, ss.Requests, ss.Responses)
}

func TestScriptCacheBounds(t *testing.T) {
	c := newScriptCache(4*scriptOverhead+20, 3)
	for i := range 5 {
		c.remember([]byte(fmt.Sprintf("return %d", i))) // 8 bytes each
	}
	if c.len() != 3 {
		t.Errorf("%d scripts cached, want 3 (the count bound)", c.len())
	}
	for i, want := range []bool{false, false, true, true, true} {
		body := fmt.Sprintf("return %d", i)
		got, ok := c.body([]byte(strings.ToUpper(corpusSHA1(body))))
		if ok != want || ok && got != body {
			t.Errorf("script %d: %q, %v; want cached %v", i, got, ok, want)
		}
	}
	c.remember([]byte(strings.Repeat("x", 2*scriptOverhead))) // pushes out two
	if c.len() != 2 {
		t.Errorf("%d scripts cached, want 2 (the byte bound)", c.len())
	}
	c.remember([]byte(strings.Repeat("y", 5*scriptOverhead))) // larger than the cache
	if _, ok := c.body([]byte(corpusSHA1(strings.Repeat("y", 5*scriptOverhead)))); ok {
		t.Error("a script larger than the cache was cached")
	}
	if _, ok := c.body([]byte("short")); ok {
		t.Error("found a script by a short SHA1")
	}
	sha := []byte(corpusSHA1("return 4"))
	if n := testing.AllocsPerRun(100, func() { c.remember([]byte("return 4")); c.body(sha) }); n != 0 {
		t.Errorf("known scripts: %v allocations, want 0", n)
	}
}

func TestScriptNoKeys(t *testing.T) {
	servers := startRedises(t, 3)
	for _, tc := range []struct {
		setting string
		want    []string
	}{
		{"", []string{
			"-ERR unsupported command 'eval' without keys: the proxy needs a key to choose a server\r\n",
			"-ERR unsupported command 'evalsha' without keys: the proxy needs a key to choose a server\r\n",
			"-ERR unsupported command 'fcall' without keys: the proxy needs a key to choose a server\r\n",
			"+OK\r\n",
			"-ERR unknown or unsupported command 'eval' without keys: the proxy needs a key to choose a server\r\n",
			"-EXECABORT Transaction discarded because of previous errors.\r\n"}},
		{"  script_no_keys: error\n", []string{
			"-ERR unsupported command 'eval' without keys: the proxy needs a key to choose a server\r\n",
			"-ERR unsupported command 'evalsha' without keys: the proxy needs a key to choose a server\r\n",
			"-ERR unsupported command 'fcall' without keys: the proxy needs a key to choose a server\r\n",
			"+OK\r\n",
			"-ERR unknown or unsupported command 'eval' without keys: the proxy needs a key to choose a server\r\n",
			"-EXECABORT Transaction discarded because of previous errors.\r\n"}},
		{"  script_no_keys: placeholder\n", []string{":1\r\n", ":1\r\n", ":0\r\n", "+OK\r\n", "+QUEUED\r\n", "*1\r\n:1\r\n"}},
	} {
		name := strings.TrimSpace(tc.setting)
		if name == "" {
			name = "default"
		}
		t.Run(name, func(t *testing.T) {
			for _, s := range servers {
				redisDo(t, s.Addr, "FLUSHALL")
			}
			px, addr := redisPool(t, tc.setting, servers...)
			c := dialRaw(t, addr)
			body := "redis.call('SET', 'nokeys', 'here') return 1"
			lib := "#!lua name=nk\nredis.register_function('nk', function(keys, args) return #keys end)"
			if got := c.roundTrip(cmd("FUNCTION", "LOAD", "REPLACE", lib)); got != "$2\r\nnk\r\n" {
				t.Fatalf("FUNCTION LOAD: %q", got)
			}
			if got := c.roundTrip(cmd("SCRIPT", "LOAD", body)); got != "$40\r\n"+corpusSHA1(body)+"\r\n" {
				t.Fatalf("SCRIPT LOAD: %q", got)
			}
			c.send(cmd("EVAL", body, "0") + cmd("EVALSHA", corpusSHA1(body), "0") + cmd("FCALL", "nk", "0") +
				cmd("MULTI") + cmd("EVAL", body, "0") + cmd("EXEC"))
			for i, want := range tc.want {
				if got := c.readReply(); got != want {
					t.Errorf("reply %d: %q, want %q", i, got, want)
				}
			}
			// The scripts ran on the placeholder key's server, or nowhere.
			home := backendOf(px, "placeholder")
			for _, s := range servers {
				got := redisDo(t, s.Addr, "EXISTS", "nokeys")
				if want := int64(0); tc.want[0] == ":1\r\n" && s.Addr == home {
					want = 1
					if got != want {
						t.Errorf("%s (placeholder's): EXISTS nokeys %v", s.Addr, got)
					}
				} else if got != want {
					t.Errorf("%s: EXISTS nokeys %v, want 0", s.Addr, got)
				}
			}
		})
	}
}

// otherThan returns the address of a server of px's first pool other than
// addr.
func otherThan(t *testing.T, px *Proxy, addr string) string {
	t.Helper()
	for _, srv := range px.Pools()[0].servers {
		if a := srv.cfg.Address.String(); a != addr {
			return a
		}
	}
	t.Fatal("the pool has one server")
	return ""
}

// TestEvalshaRetryServerDies: the server dies while the retried EVALSHA
// runs; the client gets exactly one reply, an error, and the connection
// goes on.
func TestEvalshaRetryServerDies(t *testing.T) {
	servers := startRedises(t, 2, "busy-reply-threshold 100")
	px, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)
	key := "dies"
	owner := backendOf(px, key)
	var victim *testutil.Server
	for _, s := range servers {
		if s.Addr == owner {
			victim = s
		}
	}
	body := "while true do end"
	if got := c.roundTrip(cmd("SCRIPT", "LOAD", body)); !strings.HasPrefix(got, "$40\r\n") {
		t.Fatalf("SCRIPT LOAD: %q", got)
	}
	redisDo(t, owner, "SCRIPT", "FLUSH")
	c.send(cmd("EVALSHA", corpusSHA1(body), "1", key) + cmd("PING"))
	waitBusy(t, owner) // the retry reached the server and runs
	victim.Kill()
	if got := c.readReply(); !strings.HasPrefix(got, "-ERR ") {
		t.Errorf("EVALSHA: %q, want an error", got)
	}
	if got := c.readReply(); got != "+PONG\r\n" {
		t.Errorf("after the EVALSHA's error: %q, want +PONG", got)
	}
	if got := c.roundTrip(cmd("ECHO", "still here")); got != "$10\r\nstill here\r\n" {
		t.Errorf("ECHO: %q", got)
	}
}

// TestGoRedisScript runs go-redis's Script (EVALSHA, then EVAL on
// NOSCRIPT) through the proxy, across a server restart.
func TestGoRedisScript(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "", servers...)
	ctx := context.Background()
	client := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, MaxRetries: -1})
	defer client.Close()
	incr := redis.NewScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
	key := "gr:counter"
	owner := backendOf(px, key)
	var victim *testutil.Server
	for _, s := range servers {
		if s.Addr == owner {
			victim = s
		}
	}
	evals := func() string {
		info, _ := redisDo(t, owner, "INFO", "commandstats").(string)
		for _, line := range strings.Split(info, "\r\n") {
			if strings.HasPrefix(line, "cmdstat_eval:") {
				calls, _, _ := strings.Cut(strings.TrimPrefix(line, "cmdstat_eval:"), ",")
				return calls
			}
		}
		return "none"
	}
	want := int64(0)
	run := func(step string) {
		t.Helper()
		want += 5
		n, err := incr.Run(ctx, client, []string{key}, 5).Int64()
		if err != nil || n != want {
			t.Fatalf("%s: %v, %v; want %d", step, n, err, want)
		}
	}
	run("first run") // EVALSHA → NOSCRIPT (unknown to the proxy) → EVAL
	if got := evals(); got != "calls=1" {
		t.Errorf("after the first run, EVAL %s, want calls=1", got)
	}
	run("second run") // EVALSHA
	redisDo(t, owner, "SCRIPT", "FLUSH")
	run("after SCRIPT FLUSH") // EVALSHA → NOSCRIPT → retried by the proxy
	if got := evals(); got != "calls=1" {
		t.Errorf("after SCRIPT FLUSH, EVAL %s: go-redis saw NOSCRIPT", got)
	}
	victim.Restart(t)
	waitIdle(t, px.Pools()[0].pick([]byte(key)))
	want = 0 // no persistence: the counter is gone too
	run("after a restart")
	if !scriptExistsOn(t, owner, incr.Hash()) {
		t.Error("the restarted server did not get the script")
	}
	if got := evals(); got != "none" {
		t.Errorf("after the restart, EVAL %s: go-redis saw NOSCRIPT", got)
	}
}
