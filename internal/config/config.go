// Package config reads shardproxy's configuration: the YAML file of twemproxy
// (nutcracker 0.5.0), plus the Sentinel keys of the twemproxy-163 fork.
//
// A file maps pool names to pools:
//
//	alpha:
//	  listen: 127.0.0.1:22121
//	  redis: true
//	  servers:
//	   - 127.0.0.1:6379:1
//
// Every configuration twemproxy 0.5.0 accepts is accepted, with the same
// meaning, except where a comment marked "stricter than nutcracker" says
// otherwise. Parse reports every problem of a file at once, each with its
// file, line, pool and key, because an operator fixing a config should not
// need one restart per mistake.
//
// Checked against the nutcracker 0.5.0 binary (`nutcracker -t`), the
// deliberate differences are:
//
//   - Stricter: a unix socket mode that is not octal ("abc", "0999"; nutcracker
//     reads them with strtol as 0); numbers and weights above 2147483647
//     (nutcracker overflows a C int); a server without a host (":6379:1",
//     which nutcracker accepts and then cannot connect to); a
//     sentinel_heartbeat of 0; two pools listening on one address written two
//     ways ("[::1]:1" and "::1:1").
//   - More lenient, accepting what nutcracker rejects for no reason a user
//     would care about: a leading "---", flow lists ([a, b]), YAML anchors
//     and aliases, bracketed IPv6 addresses (which nutcracker cannot
//     resolve), several spaces before a server's name, and listen hostnames
//     that do not resolve yet (Parse does no DNS; the listener reports it).
package config

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// Config is a parsed, validated configuration file.
type Config struct {
	Path  string  // the file it was read from
	Pools []*Pool // in file order
}

// Pool is one server pool: a listen address and the servers behind it.
// The zero values of the fields are not the defaults: use DefaultPool.
type Pool struct {
	Name string // the pool's key in the file; also its name in stats
	Line int    // line of the pool's key, for later error messages

	Listen            Address
	ClientConnections int // 0 = unlimited
	Hash              string
	HashTag           string // "" or exactly 2 bytes
	Distribution      string
	Timeout           time.Duration // 0 = wait forever (twemproxy: -1 and 0 both mean no timeout)
	Backlog           int
	TCPKeepalive      bool
	Preconnect        bool
	Redis             bool
	RedisAuth         string
	RedisDB           int
	// Databases is how many databases the servers have (their own
	// `databases` setting): SELECT n is accepted for 0 ≤ n < Databases.
	Databases int
	// SplitTransactions lets a MULTI/EXEC whose keys are on several
	// servers run as one MULTI/EXEC per server (Redis pools).
	SplitTransactions bool

	ServerConnections  int
	AutoEjectHosts     bool
	ServerRetryTimeout time.Duration
	ServerFailureLimit int
	Servers            []Server

	// Sentinel mode (twemproxy-163): instead of servers, the pool names
	// Sentinel master groups and the Sentinels that know their addresses.
	Sentinels         []Server // Weight is always 1
	Groups            []string // as written; sorting them is the proxy's job
	SentinelHeartbeat time.Duration

	// SlowlogSlowerThan is the latency from which a request is recorded
	// in the slow log; negative: none is (the default); 0: every one is.
	SlowlogSlowerThan time.Duration

	// ScriptNoKeys says what a Redis pool does with EVAL, EVALSHA or
	// FCALL given no key (numkeys 0): ScriptNoKeysError refuses it,
	// ScriptNoKeysPlaceholder runs it on the server of the key
	// "placeholder".
	ScriptNoKeys string
	// ClientOutputLimit is how many bytes of unread replies (and of
	// unanswered requests) the proxy holds for one client before it stops
	// reading from that client until they drain; 0: no limit.
	ClientOutputLimit int
	// ClientPubSubLimit is how many bytes of published messages the
	// proxy holds for one subscriber that does not read them; past it the
	// subscriber is disconnected (Redis's client-output-buffer-limit
	// pubsub hard limit); 0: no limit.
	ClientPubSubLimit int

	// BlockingConnections bounds the connections opened to each server
	// for blocking commands (BLPOP, …), one per blocked client and server.
	BlockingConnections int
	// CrossServerBlocking lets BLPOP and the like block on keys spread
	// over several servers (see the proxy's redis_block.go).
	CrossServerBlocking bool

	// MaxReplyBytes bounds one server reply: a larger one fails its
	// request and closes that server connection. It also bounds what a
	// server connection's read buffer may grow to.
	MaxReplyBytes int
}

// The values of script_no_keys.
const (
	ScriptNoKeysError       = "error"
	ScriptNoKeysPlaceholder = "placeholder"
)

// ScriptNoKeysValues returns the values script_no_keys accepts.
func ScriptNoKeysValues() []string {
	return []string{ScriptNoKeysError, ScriptNoKeysPlaceholder}
}

// DefaultClientOutputLimit is client_output_limit's default: 64 MiB.
const DefaultClientOutputLimit = 64 << 20

// DefaultBlockingConnections is blocking_connections's default.
const DefaultBlockingConnections = 64

// DefaultClientPubSubLimit is client_pubsub_limit's default: 32 MiB,
// Redis's client-output-buffer-limit pubsub hard limit.
const DefaultClientPubSubLimit = 32 << 20

// DefaultMaxReplyBytes is max_reply_bytes when the file does not set it:
// 512 MiB, Redis's proto-max-bulk-len, the largest value Redis accepts.
const DefaultMaxReplyBytes = 512 << 20

// MinMaxReplyBytes is the smallest max_reply_bytes accepted: 1 MiB, the
// floor Redis puts on proto-max-bulk-len and memcached's default item
// size, so that a typo cannot make ordinary values fail.
const MinMaxReplyBytes = 1 << 20

// DefaultPool returns a pool with every default set, the one place where
// defaults live. The values are twemproxy's (nc_conf.h), twemproxy-163's
// for sentinel_heartbeat, and shardproxy's for its own keys.
func DefaultPool() *Pool {
	return &Pool{
		ClientConnections:   0,
		Hash:                "fnv1a_64",
		Distribution:        "ketama",
		Timeout:             0,
		Backlog:             512,
		ServerConnections:   1,
		AutoEjectHosts:      false,
		ServerRetryTimeout:  30000 * time.Millisecond,
		ServerFailureLimit:  2,
		SentinelHeartbeat:   1000 * time.Millisecond,
		Databases:           16,
		SlowlogSlowerThan:   -1,
		ScriptNoKeys:        ScriptNoKeysError,
		ClientOutputLimit:   DefaultClientOutputLimit,
		ClientPubSubLimit:   DefaultClientPubSubLimit,
		MaxReplyBytes:       DefaultMaxReplyBytes,
		BlockingConnections: DefaultBlockingConnections,
		CrossServerBlocking: true,
	}
}

// Sentinel reports whether the pool finds its servers through Sentinel
// (groups: and sentinels:) rather than listing them (servers:).
func (p *Pool) Sentinel() bool { return len(p.Groups) > 0 }

// Load reads and parses the file at path. A missing or unreadable file is
// reported as an Errors naming the file, like every other problem.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		cause := err
		var pe *fs.PathError
		if errors.As(err, &pe) {
			cause = pe.Err // the path is already in the message
		}
		return nil, Errors{{File: path, Msg: "cannot read the configuration file: " + cause.Error(), Err: err}}
	}
	return Parse(path, data)
}

// Parse parses and validates a configuration file's contents; path is used
// only in messages. It returns either a Config or an Errors listing every
// problem found, never both, and never panics, whatever data holds.
func Parse(path string, data []byte) (*Config, error) {
	d := &decoder{file: path}
	cfg := d.decode(data)
	if len(d.errs) > 0 {
		d.errs.sortByLine()
		return nil, d.errs
	}
	return cfg, nil
}
