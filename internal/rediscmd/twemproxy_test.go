package rediscmd

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// twemproxyNotesSupported lists the commands marked "Yes" or "Yes*" in
// twemproxy 0.5.0's notes/redis.md, in its order. The file was read from
// the Debian nutcracker 0.5.0 package (/usr/share/doc/nutcracker/
// redis.md.gz), which ships the notes of the v0.5.0 release.
var twemproxyNotesSupported = []string{
	// Keys
	"del", "dump", "exists", "expire", "expireat", "persist", "pexpire", "pexpireat", "pttl",
	"restore", "sort", "ttl", "type",
	// Strings
	"append", "bitcount", "bitfield", "bitpos", "decr", "decrby", "get", "getbit", "getdel",
	"getex", "getrange", "getset", "incr", "incrby", "incrbyfloat", "mget", "mset", "psetex",
	"set", "setbit", "setex", "setnx", "setrange", "strlen",
	// Hashes
	"hdel", "hexists", "hget", "hgetall", "hincrby", "hincrbyfloat", "hkeys", "hlen", "hmget",
	"hmset", "hset", "hsetnx", "hvals", "hscan",
	// Lists
	"lindex", "linsert", "llen", "lmove", "lpop", "lpos", "lpush", "lpushx", "lrange", "lrem",
	"lset", "ltrim", "rpop", "rpoplpush", "rpush", "rpushx",
	// Sets
	"sadd", "scard", "sdiff", "sdiffstore", "sinter", "sinterstore", "sismember", "smembers",
	"smismember", "smove", "spop", "srandmember", "srem", "sscan", "sunion", "sunionstore",
	// Sorted sets
	"zadd", "zcard", "zcount", "zdiff", "zdiffstore", "zincrby", "zinter", "zinterstore",
	"zlexcount", "zmscore", "zpopmax", "zpopmin", "zrandmember", "zrange", "zrangebylex",
	"zrangebyscore", "zrangestore", "zrank", "zrem", "zremrangebylex", "zremrangebyrank",
	"zremrangebyscore", "zrevrange", "zrevrangebylex", "zrevrangebyscore", "zrevrank", "zscan",
	"zscore", "zunion", "zunionstore",
	// HyperLogLog
	"pfadd", "pfcount", "pfmerge",
	// Geo
	"geoadd", "geodist", "geohash", "geopos", "georadius", "georadiusbymember", "geosearch",
	"geosearchstore",
	// Scripting
	"eval", "evalsha",
	// Connection
	"ping", "quit",
	// Server
	"command", "lolwut",
}

// twemproxyBeyondNotes lists the commands the nutcracker 0.5.0 binary
// serves although its notes do not mark them supported.
var twemproxyBeyondNotes = map[string]string{
	"auth":       "marked No, but answered by the proxy itself (redis_auth)",
	"copy":       "missing from the notes; parsed by nc_redis.c",
	"hrandfield": "missing from the notes; parsed by nc_redis.c",
	"hstrlen":    "missing from the notes; parsed by nc_redis.c",
	"touch":      "missing from the notes; split per server like DEL",
	"unlink":     "missing from the notes (but named in its note on fragmentation); split like DEL",
}

func TestTwemproxyNotesCommandsAreServed(t *testing.T) {
	notes := make(map[string]bool)
	for _, name := range twemproxyNotesSupported {
		notes[name] = true
		c := Lookup([]byte(name))
		switch {
		case c == nil:
			t.Errorf("%s: supported by twemproxy 0.5.0 but not in the table", name)
		case c.Kind == Unsupported:
			t.Errorf("%s: supported by twemproxy 0.5.0 but Unsupported here", name)
		case !c.Twemproxy:
			t.Errorf("%s: twemproxy 0.5.0's notes support it; set Twemproxy", name)
		}
	}
	for _, c := range All() {
		if _, beyond := twemproxyBeyondNotes[c.Name]; c.Twemproxy && !notes[c.Name] && !beyond {
			t.Errorf("%s: Twemproxy is set, but the notes do not support it", c.Name)
		}
	}
	for name := range twemproxyBeyondNotes {
		if c := Lookup([]byte(name)); c == nil || !c.Twemproxy || notes[name] {
			t.Errorf("twemproxyBeyondNotes[%q]: stale", name)
		}
	}
}

// nutcrackerSample returns a request of c for nutcracker: its name and
// enough arguments for its arity, the first looking like a key. nutcracker
// checks argument counts itself (exactly, for many commands), so the
// smallest count Redis accepts is the one most likely to pass.
func nutcrackerSample(c *Command) []string {
	switch c.Name {
	case "eval":
		return []string{"eval", "return 1", "1", "k0"}
	case "evalsha":
		return []string{"evalsha", "e0e1f9fabfc9d4800c877a703b823ac0578ff8db", "1", "k0"}
	}
	args := strings.Split(c.Name, "|")
	for len(args) < max(c.Arity, -c.Arity) {
		if len(args) == len(strings.Split(c.Name, "|")) {
			args = append(args, "k0")
		} else {
			args = append(args, "1")
		}
	}
	return args
}

// nutcrackerServes sends args to nutcracker on a new connection and
// reports whether it replied (with anything, errors included) rather than
// closing the connection, which is how nutcracker 0.5.0 rejects a command
// it does not support.
func nutcrackerServes(t *testing.T, addr string, args []string) bool {
	t.Helper()
	c := dialResp(t, addr)
	defer c.conn.Close()
	_, err := c.doString(args...)
	switch {
	case err == nil:
		return true
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%q: no reply from nutcracker: %v", args, err)
	}
	t.Fatalf("%q: %v", args, err)
	return false
}

// TestTwemproxyFlagMatchesNutcracker sends a request of every command to
// the nutcracker 0.5.0 binary: it must serve exactly the commands whose
// Twemproxy field is set. Requests that show twemproxy's quirks, which the
// table's comments describe, are checked too.
func TestTwemproxyFlagMatchesNutcracker(t *testing.T) {
	r1, r2 := testutil.StartRedis(t), testutil.StartRedis(t)
	port := testutil.FreePort(t)
	nc := testutil.StartNutcracker(t, fmt.Sprintf(`alpha:
  listen: 127.0.0.1:%d
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
    - %s:1
    - %s:1
`, port, r1.Addr, r2.Addr))
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if nc.Addr != addr {
		t.Fatalf("nutcracker listens on %s, want %s", nc.Addr, addr)
	}

	for _, c := range All() {
		switch {
		case c.Name == "quit":
			continue // nutcracker closes the connection: that is its QUIT
		case c.HasSubcommands() && c.Arity != -1:
			continue // a container alone is only an arity error
		}
		args := nutcrackerSample(c)
		if got := nutcrackerServes(t, addr, args); got != c.Twemproxy {
			t.Errorf("%s: nutcracker serves %q: %v; the table's Twemproxy: %v", c.Name, args, got, c.Twemproxy)
		}
	}

	quirks := []struct {
		req    []string
		serves bool
	}{
		{[]string{"eval", "return 1", "0"}, false},          // EVAL needs a key
		{[]string{"evalsha", "abc", "0", "x"}, false},       // … so does EVALSHA
		{[]string{"eval", "return 1", "2", "a", "b"}, true}, // several keys pass unchecked
		{[]string{"ping", "hello"}, false},                  // PING only without a message
		{[]string{"ping"}, true},
		{[]string{"echo", "x"}, false},
		{[]string{"select", "0"}, false},
		{[]string{"command", "count"}, false}, // COMMAND only alone
		{[]string{"command", "docs"}, false},
		{[]string{"lolwut", "version", "5"}, true},
		{[]string{"expire", "k", "10", "NX"}, false}, // exactly 3 arguments
		{[]string{"expire", "k", "10"}, true},
		{[]string{"set", "k", "v", "EX", "10", "GET"}, true},
		{[]string{"lpop", "k", "2"}, true},
		{[]string{"mset", "a", "1", "b"}, false},
		{[]string{"exists", "a", "b", "c"}, true}, // served, but not split
		{[]string{"zunion", "2", "a", "b"}, true}, // routed by "2"
		{[]string{"get", "k", "x"}, false},
	}
	for _, q := range quirks {
		if got := nutcrackerServes(t, addr, q.req); got != q.serves {
			t.Errorf("%q: nutcracker serves it: %v, want %v", q.req, got, q.serves)
		}
	}

}
