package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// redisDo runs one command directly on a backend, failing the test on a
// network error (an error reply is returned as a testutil.RedisError).
func redisDo(t *testing.T, addr string, args ...string) any {
	t.Helper()
	v, err := testutil.RedisDo(addr, "", args...)
	if _, isReply := err.(testutil.RedisError); err != nil && !isReply {
		t.Fatalf("%s %v: %v", addr, args, err)
	}
	if err != nil {
		return err
	}
	return v
}

// scriptExistsOn reports whether the server at addr has the script sha.
func scriptExistsOn(t *testing.T, addr, sha string) bool {
	t.Helper()
	v, ok := redisDo(t, addr, "SCRIPT", "EXISTS", sha).([]any)
	if !ok || len(v) != 1 {
		t.Fatalf("%s: SCRIPT EXISTS %s: %v", addr, sha, v)
	}
	return v[0] == int64(1)
}

// scriptManagement are SCRIPT and FUNCTION requests whose replies through
// the proxy (three fresh servers) must be those of one fresh redis-server.
var scriptManagement = [][]string{
	{"SCRIPT", "LOAD", "return 1"},
	{"SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "ffffffffffffffffffffffffffffffffffffffff"},
	{"script", "exists", "E0E1F9FABFC9D4800C877A703B823AC0578FF8DB"},
	{"SCRIPT", "LOAD", "this is not lua"},
	{"SCRIPT", "LOAD"},
	{"SCRIPT", "FLUSH", "ASYNC"},
	{"SCRIPT", "EXISTS", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"},
	{"SCRIPT", "FLUSH", "nope"},
	{"SCRIPT", "FLUSH", "SYNC"},
	{"SCRIPT", "FLUSH"},
	{"SCRIPT", "KILL"},
	{"SCRIPT", "HELP"},
	{"SCRIPT", "NOPE"},
	{"FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function(keys, args) return #keys end)"},
	{"FUNCTION", "LOAD", "#!lua name=lib\nredis.register_function('f', function(keys, args) return #keys end)"},
	{"FUNCTION", "LOAD", "REPLACE", "#!lua name=lib\nredis.register_function('f', function(keys, args) return 10 + #keys end)"},
	{"FUNCTION", "LOAD", "not a library"},
	{"FUNCTION", "LIST"},
	{"FUNCTION", "LIST", "WITHCODE"},
	{"FCALL", "f", "2", "{t}a", "{t}b"},
	{"FCALL_RO", "f", "1", "a"},
	{"FUNCTION", "DELETE", "lib"},
	{"FUNCTION", "DELETE", "lib"},
	{"FCALL", "f", "1", "a"},
	{"FUNCTION", "FLUSH", "SYNC"},
	{"FUNCTION", "KILL"},
	{"FUNCTION", "HELP"},
	{"FUNCTION", "RESTORE", "garbage"},
}

// TestScriptManagementMatchesRedis: SCRIPT and FUNCTION reach every server
// and answer as one redis-server does.
func TestScriptManagementMatchesRedis(t *testing.T) {
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	_, addr := redisPool(t, "  hash_tag: \"{}\"\n", servers...)
	direct := dialRaw(t, lone.Addr)
	proxied := dialRaw(t, addr)
	var req strings.Builder
	for _, c := range scriptManagement {
		req.WriteString(cmd(c...))
	}
	direct.send(req.String())
	proxied.send(req.String())
	for _, c := range scriptManagement {
		if want, got := direct.readReply(), proxied.readReply(); got != want {
			t.Errorf("%q: proxy %q, redis-server %q", c, got, want)
		}
	}
}

func TestScriptLoadReachesEveryServer(t *testing.T) {
	servers := startRedises(t, 3)
	_, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)
	body := "return redis.call('GET', KEYS[1])"
	sha := corpusSHA1(body)
	if got := c.roundTrip(cmd("SCRIPT", "LOAD", body)); got != fmt.Sprintf("$40\r\n%s\r\n", sha) {
		t.Fatalf("SCRIPT LOAD: %q", got)
	}
	for _, s := range servers {
		if !scriptExistsOn(t, s.Addr, sha) {
			t.Errorf("%s: script not loaded", s.Addr)
		}
	}
	// A script on one server only does not exist for the proxy: an
	// EVALSHA of it would meet -NOSCRIPT on the others.
	other := "return 2"
	redisDo(t, servers[1].Addr, "SCRIPT", "LOAD", other)
	want := "*3\r\n:1\r\n:0\r\n:0\r\n"
	if got := c.roundTrip(cmd("SCRIPT", "EXISTS", sha, corpusSHA1(other), "0000000000000000000000000000000000000000")); got != want {
		t.Errorf("SCRIPT EXISTS: %q, want %q", got, want)
	}
	if got := c.roundTrip(cmd("SCRIPT", "FLUSH")); got != "+OK\r\n" {
		t.Errorf("SCRIPT FLUSH: %q", got)
	}
	for _, s := range servers {
		if scriptExistsOn(t, s.Addr, sha) || scriptExistsOn(t, s.Addr, corpusSHA1(other)) {
			t.Errorf("%s: scripts left after SCRIPT FLUSH", s.Addr)
		}
	}
	// Inside MULTI, management is refused and the transaction discarded.
	c.send(cmd("MULTI") + cmd("SET", "a", "1") + cmd("SCRIPT", "LOAD", body) + cmd("EXEC") + cmd("EXISTS", "a"))
	for i, want := range []string{"+OK\r\n", "+QUEUED\r\n",
		"-ERR 'script|load' inside MULTI is not supported through the proxy: it must reach every server, and a transaction runs on one\r\n",
		"-EXECABORT Transaction discarded because of previous errors.\r\n", ":0\r\n"} {
		if got := c.readReply(); got != want {
			t.Errorf("MULTI reply %d: %q, want %q", i, got, want)
		}
	}
	for _, s := range servers {
		if scriptExistsOn(t, s.Addr, sha) {
			t.Errorf("%s: SCRIPT LOAD inside a refused MULTI was applied", s.Addr)
		}
	}
	if got := c.roundTrip(cmd("SCRIPT", "DEBUG", "YES")); !strings.HasPrefix(got, "-ERR unknown or unsupported command 'script|debug'") {
		t.Errorf("SCRIPT DEBUG: %q", got)
	}
	if got := c.roundTrip(cmd("FUNCTION", "STATS")); !strings.HasPrefix(got, "-ERR unknown or unsupported command 'function|stats'") {
		t.Errorf("FUNCTION STATS: %q", got)
	}
}

// TestScriptKill: SCRIPT KILL reaches a server busy with a script that a
// client runs through the proxy, although the shared connection to that
// server is the busy one.
func TestScriptKill(t *testing.T) {
	servers := startRedises(t, 3, "busy-reply-threshold 100")
	px, addr := redisPool(t, "", servers...)
	busy := dialRaw(t, addr)
	busy.send(cmd("EVAL", "while true do end", "1", "spin"))
	owner := backendOf(px, "spin")
	waitBusy(t, owner)
	killer := dialRaw(t, addr)
	if got := killer.roundTrip(cmd("FUNCTION", "KILL")); !strings.HasPrefix(got, "-BUSY ") {
		t.Errorf("FUNCTION KILL during a script: %q", got)
	}
	if got := killer.roundTrip(cmd("SCRIPT", "KILL")); got != "+OK\r\n" {
		t.Errorf("SCRIPT KILL: %q", got)
	}
	if got := busy.readReply(); !strings.HasPrefix(got, "-ERR Script killed by user with SCRIPT KILL") {
		t.Errorf("the killed script's reply: %q", got)
	}
	if got := busy.roundTrip(cmd("PING")); got != "+PONG\r\n" {
		t.Errorf("PING after: %q", got)
	}
	if got := killer.roundTrip(cmd("SCRIPT", "KILL")); got != "-NOTBUSY No scripts in execution right now.\r\n" {
		t.Errorf("SCRIPT KILL with nothing running: %q", got)
	}
}

// waitBusy waits until the server at addr answers -BUSY: a script has run
// longer than its busy-reply-threshold.
func waitBusy(t *testing.T, addr string) {
	t.Helper()
	if !waitFor(5*time.Second, func() bool {
		_, err := testutil.RedisDo(addr, "", "PING")
		return err != nil && strings.HasPrefix(err.Error(), "BUSY")
	}) {
		t.Fatalf("%s never got busy", addr)
	}
}
