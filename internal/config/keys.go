package config

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// KeyInfo documents one pool key, for the README and `--help`-style output.
type KeyInfo struct {
	Name    string
	Default string // as a reader would write it; "" when the key is required
	Doc     string
}

// Hashes returns the names hash: accepts, in twemproxy's order (HASH_CODEC
// in hashkit/nc_hashkit.h). It returns a new slice on each call so that no
// caller can change what the parser accepts.
func Hashes() []string {
	return []string{
		"one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64",
		"fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins",
	}
}

// Distributions returns the names distribution: accepts (DIST_CODEC).
func Distributions() []string {
	return []string{"ketama", "modula", "random"}
}

// Keys returns every pool key with its default and documentation, in the
// order of twemproxy's README, then the twemproxy-163 Sentinel keys, then
// shardproxy's own.
func Keys() []KeyInfo {
	t := keyTable()
	out := make([]KeyInfo, len(t))
	for i, k := range t {
		out[i] = k.KeyInfo
	}
	return out
}

// key is one row of the key table: adding a pool key is adding a row.
type key struct {
	KeyInfo
	// set decodes f's value into p, reporting problems through f.
	set func(f *field, p *Pool)
}

// keyTable lists the keys twemproxy 0.5.0 reads (conf_commands in
// nc_conf.c) plus twemproxy-163's sentinels, groups and sentinel_heartbeat,
// and shardproxy's slowlog_slower_than, split_transactions, script_no_keys,
// client_output_limit, client_pubsub_limit, blocking_connections,
// cross_server_blocking and max_reply_bytes.
// It is built per call rather than kept in a package variable so that
// nothing can modify it.
func keyTable() []key {
	return []key{
		{KeyInfo{"listen", "", "Where the pool accepts clients: host:port, [ipv6]:port, or an absolute unix socket path with optional octal permissions (/tmp/pool.sock 0666). Required."},
			setListen},
		numberKey("client_connections", "0 (no limit)",
			"The most client connections the pool accepts at once; 0 means no limit.",
			0, func(p *Pool) *int { return &p.ClientConnections }),
		oneOfKey("hash", "fnv1a_64",
			"The hash function applied to keys: "+strings.Join(Hashes(), ", ")+".",
			Hashes, func(p *Pool) *string { return &p.Hash }),
		{KeyInfo{"hash_tag", "", `Two characters, like "{}": when a key contains both, only the text between them is hashed, so related keys land on the same server. Quote it in YAML.`},
			setHashTag},
		oneOfKey("distribution", "ketama",
			"How hashes map to servers: ketama (consistent hashing), modula (hash modulo total weight) or random.",
			Distributions, func(p *Pool) *string { return &p.Distribution }),
		msKey("timeout", "0 (wait forever)",
			"Milliseconds to wait to connect to a server or for its reply; 0 or absent waits forever.",
			0, func(p *Pool) *time.Duration { return &p.Timeout }),
		numberKey("backlog", "512",
			"The listen(2) backlog of the pool's socket.",
			0, func(p *Pool) *int { return &p.Backlog }),
		boolKey("tcpkeepalive", "false",
			"Enable TCP keepalive on connections to servers.",
			func(p *Pool) *bool { return &p.TCPKeepalive }),
		boolKey("preconnect", "false",
			"Connect to every server at start instead of on first use.",
			func(p *Pool) *bool { return &p.Preconnect }),
		boolKey("redis", "false",
			"Speak the Redis protocol (true) or Memcached (false). Pools with groups: always speak Redis.",
			func(p *Pool) *bool { return &p.Redis }),
		{KeyInfo{"redis_auth", "", "Password: clients must AUTH with it, and the proxy AUTHs with it on each server connection. Redis pools only."},
			setRedisAuth},
		numberKey("redis_db", "0",
			"The database a new client starts in: the proxy SELECTs it on its server connections. A client's SELECT n moves its requests to database n of every server.",
			0, func(p *Pool) *int { return &p.RedisDB }),
		numberKey("server_connections", "1",
			"The most connections opened to each server.",
			1, func(p *Pool) *int { return &p.ServerConnections }),
		boolKey("auto_eject_hosts", "false",
			"Take a server out of the ring after server_failure_limit consecutive failures, and back after server_retry_timeout.",
			func(p *Pool) *bool { return &p.AutoEjectHosts }),
		msKey("server_retry_timeout", "30000",
			"Milliseconds an ejected server stays out of the ring before it is tried again.",
			0, func(p *Pool) *time.Duration { return &p.ServerRetryTimeout }),
		numberKey("server_failure_limit", "2",
			"Consecutive failures after which a server is ejected, when auto_eject_hosts is true.",
			0, func(p *Pool) *int { return &p.ServerFailureLimit }),
		{KeyInfo{"servers", "", "The servers, one per line: host:port:weight [name] or /path/to/socket:weight [name]. The name, if given, replaces host:port on the hash ring and in stats. Required unless groups: is used."},
			setServers},
		{KeyInfo{"sentinels", "", "Sentinel mode (twemproxy-163): the Redis Sentinels to ask for the masters of groups:, one per line: host:port [name]."},
			setSentinels},
		{KeyInfo{"groups", "", "Sentinel mode (twemproxy-163): the Sentinel master names that make up the pool, used instead of servers:. Each group is a server on the ring, named after the group, so failovers move no keys."},
			setGroups},
		// At least 1, stricter than twemproxy-163, which accepts 0: a zero
		// heartbeat would poll the sentinels in a busy loop.
		msKey("sentinel_heartbeat", "1000",
			"Sentinel mode: milliseconds between checks of the Sentinel subscription.",
			1, func(p *Pool) *time.Duration { return &p.SentinelHeartbeat }),
		{KeyInfo{"slowlog_slower_than", "-1 (off)", "Microseconds a request may take before it is recorded in the slow log, served at /slowlog on the stats port; 0 records every request, a negative number none (as Redis's slowlog-log-slower-than)."},
			setSlowlogSlowerThan},
		numberKey("databases", "16",
			"Redis pools: how many databases the servers have (their own databases setting): clients may SELECT 0 to databases-1, as on a server; the default database of a new client is redis_db.",
			1, func(p *Pool) *int { return &p.Databases }),
		boolKey("split_transactions", "false",
			"Redis pools: a MULTI/EXEC whose keys are on several servers runs as one MULTI/EXEC per server, sent together, results merged in the client's order: atomic on each server, not across them. When false, such a transaction is refused (EXECABORT) and nothing of it is applied.",
			func(p *Pool) *bool { return &p.SplitTransactions }),
		oneOfKey("script_no_keys", "error",
			"Redis pools: what EVAL, EVALSHA and FCALL with no key (numkeys 0) do: error refuses them (the proxy needs a key to choose a server); placeholder runs them on the server of the key \"placeholder\", which is right only for scripts that touch no key.",
			ScriptNoKeysValues, func(p *Pool) *string { return &p.ScriptNoKeys }),
		bytesKey("client_output_limit", "67108864 (64 MiB)",
			"Bytes of replies a client may leave unread, and of its requests the proxy may hold unanswered, before the proxy stops reading from that client until they drain; the client is slowed down, not disconnected. 0 means no limit (as Redis's client-output-buffer-limit for normal clients).",
			0, func(p *Pool) *int { return &p.ClientOutputLimit }),
		bytesKey("client_pubsub_limit", "33554432 (32 MiB)",
			"Redis pools: bytes of published messages a subscriber may leave unread before the proxy disconnects it (counted in the pool's pubsub_dropped), so a slow subscriber cannot make the proxy buffer without bound; the other subscribers are not affected. 0 means no limit. Redis's client-output-buffer-limit pubsub hard limit is 32 MiB.",
			0, func(p *Pool) *int { return &p.ClientPubSubLimit }),
		numberKey("blocking_connections", "64",
			"Redis pools: the most connections the proxy opens to each server for clients blocked in BLPOP, BRPOP, BLMOVE, BZPOPMIN, XREAD BLOCK and the like (each blocked client holds one per server it waits on). A blocking command that would need one more is refused at once with an error naming this key.",
			1, func(p *Pool) *int { return &p.BlockingConnections }),
		boolKey("cross_server_blocking", "true",
			"Redis pools: BLPOP, BRPOP, BLMPOP, BZPOPMIN, BZPOPMAX and BZMPOP over keys on several servers pop each key in turn, then block on every server at once, the first element winning and any other popped meanwhile pushed back. When false, such a request is refused with an error (put the keys on one server with a hash tag).",
			func(p *Pool) *bool { return &p.CrossServerBlocking }),
		bytesKey("max_reply_bytes", "536870912 (512 MiB)",
			"The largest server reply, in bytes, the proxy holds for one request (at least 1048576); a larger reply fails that request with an error and closes the server connection, as does a reply line over 64 KiB. Redis's proto-max-bulk-len is 512 MiB by default.",
			MinMaxReplyBytes, func(p *Pool) *int { return &p.MaxReplyBytes }),
	}
}

// numberKey is a key holding a whole number ≥ min (conf_set_num).
func numberKey(name, def, doc string, min int, dst func(*Pool) *int) key {
	return key{KeyInfo{name, def, doc}, func(f *field, p *Pool) {
		if n, ok := f.number("", min); ok {
			*dst(p) = n
		}
	}}
}

// bytesKey is a key holding a whole number of bytes ≥ min.
func bytesKey(name, def, doc string, min int, dst func(*Pool) *int) key {
	return key{KeyInfo{name, def, doc}, func(f *field, p *Pool) {
		if n, ok := f.number("bytes", min); ok {
			*dst(p) = n
		}
	}}
}

// msKey is a key holding a whole number of milliseconds ≥ min.
func msKey(name, def, doc string, min int, dst func(*Pool) *time.Duration) key {
	return key{KeyInfo{name, def, doc}, func(f *field, p *Pool) {
		if n, ok := f.number("milliseconds", min); ok {
			*dst(p) = time.Duration(n) * time.Millisecond
		}
	}}
}

// boolKey is a key holding true or false. twemproxy compares the text with
// "true" and "false" exactly (conf_set_bool), so YAML's other spellings of
// booleans (True, yes, on) are rejected here too.
func boolKey(name, def, doc string, dst func(*Pool) *bool) key {
	return key{KeyInfo{name, def, doc}, func(f *field, p *Pool) {
		v, ok := f.scalar("true or false")
		switch {
		case !ok:
		case v == "true":
			*dst(p) = true
		case v == "false":
			*dst(p) = false
		default:
			f.errorf(f.line(), "%s %q is not true or false", f.key, v)
		}
	}}
}

// oneOfKey is a key holding one of a fixed set of names.
func oneOfKey(name, def, doc string, allowed func() []string, dst func(*Pool) *string) key {
	return key{KeyInfo{name, def, doc}, func(f *field, p *Pool) {
		v, ok := f.scalar("a name")
		if !ok {
			return
		}
		names := allowed()
		for _, a := range names {
			if v == a {
				*dst(p) = v
				return
			}
		}
		f.errorf(f.line(), "%s %q is not one of %s", f.key, v, strings.Join(names, ", "))
	}}
}

func setListen(f *field, p *Pool) {
	v, ok := f.scalar("an address like 127.0.0.1:22121")
	if !ok {
		return
	}
	a, problem := parseListen(v)
	if problem != "" {
		f.errorf(f.line(), "listen %q %s", v, problem)
		return
	}
	p.Listen = a
}

// setHashTag checks the length in bytes, as twemproxy does (conf_set_hashtag):
// routing scans bytes, so "é" (two bytes) is accepted and means "\xc3...\xa9".
func setHashTag(f *field, p *Pool) {
	v, ok := f.scalar(`two characters like "{}"`)
	if !ok {
		return
	}
	if len(v) != 2 {
		hint := ""
		if !isASCII(v) && utf8.RuneCountInString(v) == 2 {
			hint = " (bytes: a non-ASCII character takes more than one)"
		}
		f.errorf(f.line(), `hash_tag %q must be exactly two characters%s, like "{}"`, v, hint)
		return
	}
	p.HashTag = v
}

func setRedisAuth(f *field, p *Pool) {
	if v, ok := f.scalar("a password"); ok {
		p.RedisAuth = v
	}
}

func setServers(f *field, p *Pool) {
	for _, it := range f.list("host:port:weight [name]") {
		s, problem := parseServer(it.value)
		if problem != "" {
			f.errorf(it.line, "server %q %s", it.value, problem)
			continue
		}
		s.Line = it.line
		p.Servers = append(p.Servers, s)
	}
}

func setSentinels(f *field, p *Pool) {
	for _, it := range f.list("host:port [name]") {
		s, problem := parseSentinel(it.value)
		if problem != "" {
			f.errorf(it.line, "sentinel %q %s", it.value, problem)
			continue
		}
		s.Line = it.line
		p.Sentinels = append(p.Sentinels, s)
	}
}

func setGroups(f *field, p *Pool) {
	for _, it := range f.list("a Sentinel master name") {
		p.Groups = append(p.Groups, it.value)
		// Pool.Groups holds names only; validate needs the lines to
		// report duplicates.
		f.state.groupLines = append(f.state.groupLines, it.line)
	}
}

// setSlowlogSlowerThan reads microseconds as Redis's
// slowlog-log-slower-than does: any negative number turns the log off.
func setSlowlogSlowerThan(f *field, p *Pool) {
	v, ok := f.scalar("a whole number of microseconds")
	if !ok {
		return
	}
	if strings.HasPrefix(v, "-") && allDigits(v[1:]) {
		p.SlowlogSlowerThan = -1
		return
	}
	if n, ok := f.number("microseconds", 0); ok {
		p.SlowlogSlowerThan = time.Duration(n) * time.Microsecond
	}
}

// number decodes a whole number ≥ min, the way twemproxy's nc_atoi reads it
// (digits only), with messages that say what was wrong.
func (f *field) number(unit string, min int) (int, bool) {
	what := "a whole number"
	if unit != "" {
		what += " of " + unit
	}
	v, ok := f.scalar(what)
	if !ok {
		return 0, false
	}
	n, ok := parseNumber(v)
	switch {
	case ok && n >= min:
		return n, true
	case ok:
		f.errorf(f.line(), "%s is %d; it must be at least %d", f.key, n, min)
	case allDigits(v):
		f.errorf(f.line(), "%s %q is too large (at most %d)", f.key, v, math.MaxInt32)
	case strings.HasPrefix(v, "-") && allDigits(v[1:]):
		hint := ""
		if f.key == "timeout" {
			hint = " (leave timeout out, or set 0, to wait forever)"
		}
		f.errorf(f.line(), "%s %q must not be negative%s", f.key, v, hint)
	default:
		f.errorf(f.line(), "%s %q is not %s", f.key, v, what)
	}
	return 0, false
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// keyNames lists the names in t, for messages.
func keyNames(t []key) []string {
	names := make([]string, len(t))
	for i, k := range t {
		names[i] = k.Name
	}
	return names
}
