package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// pool is a valid pool "a" whose first line is line 1 and listen line 2;
// tests append keys from line 3 on.
const pool = "a:\n  listen: 127.0.0.1:22121\n"

const servers = "  servers:\n   - 127.0.0.1:6379:1\n"

// badConfigs are configurations Parse must reject, with every problem it
// must report, in order. Each is also a seed of FuzzParse.
var badConfigs = []struct {
	name string
	yaml string
	want []string
}{
	{"unknown key, near a known one", "a:\n  lisen: 127.0.0.1:22121\n" + servers, []string{
		`x.yml:1: pool "a": has no listen address (add listen: host:port)`,
		`x.yml:2: pool "a": unknown key "lisen" (did you mean "listen"?)`,
	}},
	{"unknown key, far from any", pool + "  foo: bar\n" + servers, []string{
		`x.yml:3: pool "a": unknown key "foo" (the keys are listen, client_connections, hash, hash_tag, distribution, timeout, backlog, tcpkeepalive, preconnect, redis, redis_auth, redis_db, server_connections, auto_eject_hosts, server_retry_timeout, server_failure_limit, servers, sentinels, groups, sentinel_heartbeat, slowlog_slower_than, databases, split_transactions, script_no_keys, client_output_limit, client_pubsub_limit, blocking_connections, cross_server_blocking, max_reply_bytes)`,
	}},
	{"list where an address is expected", "a:\n  listen:\n   - 127.0.0.1:22121\n" + servers, []string{
		`x.yml:3: pool "a": listen must be an address like 127.0.0.1:22121, not a list`,
	}},
	{"mapping where a number is expected", pool + "  timeout: {ms: 400}\n" + servers, []string{
		`x.yml:3: pool "a": timeout must be a whole number of milliseconds, not a mapping (quote the value if it is meant as text)`,
	}},
	{"text for a number", pool + "  timeout: 400ms\n" + servers, []string{
		`x.yml:3: pool "a": timeout "400ms" is not a whole number of milliseconds`,
	}},
	{"negative timeout", pool + "  timeout: -1\n" + servers, []string{
		`x.yml:3: pool "a": timeout "-1" must not be negative (leave timeout out, or set 0, to wait forever)`,
	}},
	{"negative number", pool + "  backlog: -5\n" + servers, []string{
		`x.yml:3: pool "a": backlog "-5" must not be negative`,
	}},
	{"number too large", pool + "  redis_db: 99999999999\n" + servers, []string{
		`x.yml:3: pool "a": redis_db "99999999999" is too large (at most 2147483647)`,
	}},
	{"server_connections 0", pool + "  server_connections: 0\n" + servers, []string{
		`x.yml:3: pool "a": server_connections is 0; it must be at least 1`,
	}},
	{"sentinel_heartbeat 0", pool + "  sentinel_heartbeat: 0\n" + servers, []string{
		`x.yml:3: pool "a": sentinel_heartbeat is 0; it must be at least 1`,
	}},
	{"slowlog_slower_than as text", pool + "  slowlog_slower_than: 10ms\n" + servers, []string{
		`x.yml:3: pool "a": slowlog_slower_than "10ms" is not a whole number of microseconds`,
	}},
	{"slowlog_slower_than too large", pool + "  slowlog_slower_than: 3000000000\n" + servers, []string{
		`x.yml:3: pool "a": slowlog_slower_than "3000000000" is too large (at most 2147483647)`,
	}},
	{"slowlog_slower_than as a list", pool + "  slowlog_slower_than: [1]\n" + servers, []string{
		`x.yml:3: pool "a": slowlog_slower_than must be a whole number of microseconds, not a list (quote the value if it is meant as text)`,
	}},
	{"slowlog_slower_than without a value", pool + "  slowlog_slower_than:\n" + servers, []string{
		`x.yml:3: pool "a": slowlog_slower_than has no value (want a whole number of microseconds)`,
	}},
	{"slowlog_slower_than negative text", pool + "  slowlog_slower_than: -x\n" + servers, []string{
		`x.yml:3: pool "a": slowlog_slower_than "-x" is not a whole number of microseconds`,
	}},
	{"client_output_limit with a unit", pool + "  client_output_limit: 64mb\n" + servers, []string{
		`x.yml:3: pool "a": client_output_limit "64mb" is not a whole number of bytes`,
	}},
	{"client_output_limit negative", pool + "  client_output_limit: -1\n" + servers, []string{
		`x.yml:3: pool "a": client_output_limit "-1" must not be negative`,
	}},
	{"client_output_limit too large", pool + "  client_output_limit: 4294967296\n" + servers, []string{
		`x.yml:3: pool "a": client_output_limit "4294967296" is too large (at most 2147483647)`,
	}},
	{"max_reply_bytes below 1 MiB", pool + "  max_reply_bytes: 65536\n" + servers, []string{
		`x.yml:3: pool "a": max_reply_bytes is 65536; it must be at least 1048576`,
	}},
	{"max_reply_bytes with a unit", pool + "  max_reply_bytes: 512mb\n" + servers, []string{
		`x.yml:3: pool "a": max_reply_bytes "512mb" is not a whole number of bytes`,
	}},
	{"max_reply_bytes too large", pool + "  max_reply_bytes: 4294967296\n" + servers, []string{
		`x.yml:3: pool "a": max_reply_bytes "4294967296" is too large (at most 2147483647)`,
	}},
	{"boolean spelled yes", pool + "  redis: yes\n" + servers, []string{
		`x.yml:3: pool "a": redis "yes" is not true or false`,
	}},
	{"boolean with a capital", pool + "  preconnect: True\n" + servers, []string{
		`x.yml:3: pool "a": preconnect "True" is not true or false`,
	}},
	{"key without a value", pool + "  hash:\n" + servers, []string{
		`x.yml:3: pool "a": hash has no value (want a name)`,
	}},
	{"servers as text", pool + "  servers: 127.0.0.1:6379:1\n", []string{
		`x.yml:3: pool "a": servers must be a list of host:port:weight [name], one per line starting with "- ", not text`,
	}},
	{"listen without a port", "a:\n  listen: 127.0.0.1\n" + servers, []string{
		`x.yml:2: pool "a": listen "127.0.0.1" is not host:port, [ipv6]:port or /path/to/socket [mode]`,
	}},
	{"listen without a host", "a:\n  listen: :22121\n" + servers, []string{
		`x.yml:2: pool "a": listen ":22121" has no host (use 0.0.0.0 or [::] for every interface)`,
	}},
	{"listen on a relative socket path", "a:\n  listen: run/a.sock\n" + servers, []string{
		`x.yml:2: pool "a": listen "run/a.sock" is not host:port, [ipv6]:port or /path/to/socket [mode]`,
	}},
	{"listen port 0", "a:\n  listen: 127.0.0.1:0\n" + servers, []string{
		`x.yml:2: pool "a": listen "127.0.0.1:0" has port 0 (ports are 1 to 65535)`,
	}},
	{"listen port 65536", "a:\n  listen: 127.0.0.1:65536\n" + servers, []string{
		`x.yml:2: pool "a": listen "127.0.0.1:65536" has an invalid port "65536" (ports are 1 to 65535)`,
	}},
	{"listen with a bad IPv6 address", "a:\n  listen: \"[::g]:22121\"\n" + servers, []string{
		`x.yml:2: pool "a": listen "[::g]:22121" has an invalid IPv6 address "[::g]"`,
	}},
	{"listen with a bad host", "a:\n  listen: bad/host:22121\n" + servers, []string{
		`x.yml:2: pool "a": listen "bad/host:22121" has an invalid host "bad/host"`,
	}},
	{"listen with an extra field", "a:\n  listen: 127.0.0.1:22121 0666\n" + servers, []string{
		`x.yml:2: pool "a": listen "127.0.0.1:22121 0666" has too many fields (want host:port, [ipv6]:port or /path/to/socket [mode])`,
	}},
	{"bad unix socket mode", "a:\n  listen: /tmp/a.sock 0999\n" + servers, []string{
		`x.yml:2: pool "a": listen "/tmp/a.sock 0999" has an invalid socket mode "0999" (want octal permissions up to 0777, like 0666)`,
	}},
	{"unix socket mode too large", "a:\n  listen: /tmp/a.sock 1777\n" + servers, []string{
		`x.yml:2: pool "a": listen "/tmp/a.sock 1777" has an invalid socket mode "1777" (want octal permissions up to 0777, like 0666)`,
	}},
	{"server without a host", pool + "  servers:\n   - :6379:1\n", []string{
		`x.yml:4: pool "a": server ":6379:1" has no host`,
	}},
	{"server port 0", pool + "  servers:\n   - 127.0.0.1:0:1\n", []string{
		`x.yml:4: pool "a": server "127.0.0.1:0:1" has port 0 (ports are 1 to 65535)`,
	}},
	{"server port 65536", pool + "  servers:\n   - 127.0.0.1:65536:1\n", []string{
		`x.yml:4: pool "a": server "127.0.0.1:65536:1" has an invalid port "65536" (ports are 1 to 65535)`,
	}},
	{"weight 0", pool + "  servers:\n   - 127.0.0.1:6379:0\n", []string{
		`x.yml:4: pool "a": server "127.0.0.1:6379:0" has weight 0 (weights must be at least 1)`,
	}},
	{"negative weight", pool + "  servers:\n   - 127.0.0.1:6379:-1\n", []string{
		`x.yml:4: pool "a": server "127.0.0.1:6379:-1" has an invalid weight "-1" (weights are whole numbers from 1 to 2147483647)`,
	}},
	{"server without a weight", pool + "  servers:\n   - 127.0.0.1:6379\n", []string{
		`x.yml:4: pool "a": server "127.0.0.1:6379" is not host:port:weight [name] or /path/to/socket:weight [name] (is the weight missing? like 127.0.0.1:6379:1)`,
	}},
	{"server with too many fields", pool + "  servers:\n   - 127.0.0.1:6379:1 name extra\n", []string{
		`x.yml:4: pool "a": server "127.0.0.1:6379:1 name extra" has too many fields (want host:port:weight [name] or /path/to/socket:weight [name])`,
	}},
	{"server entry that is a mapping", pool + "  servers:\n   - host: 127.0.0.1\n", []string{
		`x.yml:4: pool "a": each entry of servers must be host:port:weight [name], not a mapping`,
	}},
	{"hash_tag of one character", pool + "  hash_tag: \"{\"\n" + servers, []string{
		`x.yml:3: pool "a": hash_tag "{" must be exactly two characters, like "{}"`,
	}},
	{"hash_tag of three characters", pool + "  hash_tag: \"{{}\"\n" + servers, []string{
		`x.yml:3: pool "a": hash_tag "{{}" must be exactly two characters, like "{}"`,
	}},
	{"hash_tag of two non-ASCII characters", pool + "  hash_tag: \"«»\"\n" + servers, []string{
		`x.yml:3: pool "a": hash_tag "«»" must be exactly two characters (bytes: a non-ASCII character takes more than one), like "{}"`,
	}},
	{"hash_tag unquoted", pool + "  hash_tag: {}\n" + servers, []string{
		`x.yml:3: pool "a": hash_tag must be two characters like "{}", not a mapping (quote it: hash_tag: "{}")`,
	}},
	{"unknown hash", pool + "  hash: fnv2\n" + servers, []string{
		`x.yml:3: pool "a": hash "fnv2" is not one of one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins`,
	}},
	{"unknown distribution", pool + "  distribution: vnode\n" + servers, []string{
		`x.yml:3: pool "a": distribution "vnode" is not one of ketama, modula, random`,
	}},
	{"duplicate listen address across pools", pool + servers + "b:\n  listen: 127.0.0.1:22121\n" + servers, []string{
		`x.yml:6: pool "b": listen 127.0.0.1:22121 is already used by pool "a" (line 1)`,
	}},
	{"duplicate listen address, IPv6 written two ways", "a:\n  listen: \"[::1]:22121\"\n" + servers + "b:\n  listen: ::1:22121\n" + servers, []string{
		`x.yml:6: pool "b": listen [::1]:22121 is already used by pool "a" (line 1)`,
	}},
	{"duplicate unix listen path", "a:\n  listen: /tmp/a.sock\n" + servers + "b:\n  listen: /tmp/a.sock 0600\n" + servers, []string{
		`x.yml:6: pool "b": listen /tmp/a.sock is already used by pool "a" (line 1)`,
	}},
	{"duplicate server name", pool + "  servers:\n   - 127.0.0.1:6379:1 s1\n   - 127.0.0.1:6380:1 s1\n", []string{
		`x.yml:5: pool "a": duplicate server name "s1" (also on line 4)`,
	}},
	{"duplicate server address", pool + "  servers:\n   - 127.0.0.1:6379:1\n   - 127.0.0.1:6379:2\n", []string{
		`x.yml:5: pool "a": duplicate server name "127.0.0.1:6379" (also on line 4); both servers have the same address: give each a name`,
	}},
	{"server name equal to another's address", pool + "  servers:\n   - 127.0.0.1:6379:1 127.0.0.1:6380\n   - 127.0.0.1:6380:1\n", []string{
		`x.yml:5: pool "a": duplicate server name "127.0.0.1:6380" (also on line 4)`,
	}},
	{"duplicate memcached server without port in its name", pool + "  servers:\n   - 127.0.0.1:11211:1\n   - 127.0.0.1:11212:1 127.0.0.1\n", []string{
		`x.yml:5: pool "a": duplicate server name "127.0.0.1" (also on line 4)`,
	}},
	{"missing servers", pool, []string{
		`x.yml:1: pool "a": has no servers (add servers: with host:port:weight entries, or groups: and sentinels:)`,
	}},
	{"empty servers", pool + "  servers:\n", []string{
		`x.yml:3: pool "a": servers has no entries (want a list of host:port:weight [name], one per line starting with "- ")`,
	}},
	{"servers: []", pool + "  servers: []\n", []string{
		`x.yml:3: pool "a": servers has no entries (want a list of host:port:weight [name])`,
	}},
	{"empty server entry", pool + "  servers:\n   - 127.0.0.1:6379:1\n   -\n", []string{
		`x.yml:5: pool "a": servers has an empty entry`,
	}},
	{"servers and groups both set", pool + servers + "  groups:\n   - g1\n  sentinels:\n   - 127.0.0.1:26379\n", []string{
		`x.yml:5: pool "a": has both servers and groups; list servers, or name groups for sentinels to resolve, not both`,
	}},
	{"groups without sentinels", pool + "  groups:\n   - g1\n", []string{
		`x.yml:3: pool "a": has groups but no sentinels to ask for their masters (add sentinels: host:port entries)`,
	}},
	{"sentinels without groups", pool + "  sentinels:\n   - 127.0.0.1:26379\n", []string{
		`x.yml:3: pool "a": has sentinels but no groups (add groups: with the Sentinel master names)`,
	}},
	{"sentinel with a weight", pool + "  groups:\n   - g1\n  sentinels:\n   - 127.0.0.1:26379:1\n", []string{
		`x.yml:6: pool "a": sentinel "127.0.0.1:26379:1" is not host:port [name] (sentinels have no weight)`,
	}},
	{"duplicate group and sentinel", pool + "  groups:\n   - g1\n   - g1\n  sentinels:\n   - 127.0.0.1:26379\n   - 127.0.0.1:26379\n", []string{
		`x.yml:5: pool "a": duplicate group "g1" (also on line 4)`,
		`x.yml:8: pool "a": duplicate sentinel "127.0.0.1:26379" (also on line 7)`,
	}},
	{"sentinel pool that is not redis", pool + "  redis: false\n  groups:\n   - g1\n  sentinels:\n   - 127.0.0.1:26379\n", []string{
		`x.yml:3: pool "a": is a Sentinel pool (groups:), which always speaks Redis; remove redis: false`,
	}},
	{"script_no_keys in a memcached pool", pool + "  script_no_keys: placeholder\n" + servers, []string{
		`x.yml:3: pool "a": script_no_keys needs redis: true (Memcached has no scripts)`,
	}},
	{"script_no_keys unknown", pool + "  redis: true\n  script_no_keys: first\n" + servers, []string{
		`x.yml:4: pool "a": script_no_keys "first" is not one of error, placeholder`,
	}},
	{"redis_auth in a memcached pool", pool + "  redis_auth: secret\n" + servers, []string{
		`x.yml:3: pool "a": redis_auth needs redis: true (Memcached pools have no AUTH)`,
	}},
	{"missing listen", "a:\n" + servers, []string{
		`x.yml:1: pool "a": has no listen address (add listen: host:port)`,
	}},
	{"duplicate key in a pool", pool + "  timeout: 100\n  timeout: 200\n" + servers, []string{
		`x.yml:4: pool "a": key "timeout" appears twice (first on line 3)`,
	}},
	{"duplicate servers key", pool + servers + servers, []string{
		`x.yml:5: pool "a": key "servers" appears twice (first on line 3)`,
	}},
	{"duplicate pool name", pool + servers + "a:\n  listen: 127.0.0.1:22122\n" + servers, []string{
		`x.yml:5: pool "a": is defined twice (first on line 1); pool names must be unique`,
	}},
	{"pool that is not a mapping", "a: 127.0.0.1:22121\n", []string{
		`x.yml:1: pool "a": must be a mapping of keys like listen: and servers:, not text`,
	}},
	{"pool that is a list", "a:\n  - listen: 127.0.0.1:22121\n", []string{
		`x.yml:1: pool "a": must be a mapping of keys like listen: and servers:, not a list`,
	}},
	{"pool with no keys", "a:\n", []string{
		`x.yml:1: pool "a": has no keys (it needs at least listen: and servers:, indented below the pool name)`,
	}},
	{"pool with an empty name", "\"\":\n  listen: 127.0.0.1:22121\n" + servers, []string{
		`x.yml:1: a pool has an empty name`,
	}},
	{"top level is a list", "- a\n- b\n", []string{
		`x.yml:1: the top level must map pool names to pools (alpha:, then its keys indented below), not a list`,
	}},
	{"top level is text", "hello\n", []string{
		`x.yml:1: the top level must map pool names to pools (alpha:, then its keys indented below), not text`,
	}},
	{"empty file", "", []string{
		`x.yml: the file is empty; it must define at least one pool`,
	}},
	{"only comments", "# nothing here\n", []string{
		`x.yml: the file is empty; it must define at least one pool`,
	}},
	{"empty document", "---\n", []string{
		`x.yml: the file defines no pools`,
	}},
	{"empty mapping", "{}\n", []string{
		`x.yml: the file defines no pools`,
	}},
	{"two documents", pool + servers + "---\nb: 1\n", []string{
		`x.yml:5: a second YAML document starts here; put every pool in one document`,
	}},
	{"YAML syntax error: unclosed quote", pool + "  hash: \"fnv1a_64\n" + servers, []string{
		`x.yml:3: YAML syntax error: found unexpected end of stream`,
	}},
	{"YAML syntax error: misindented key", "a:\n  listen: 127.0.0.1:22121\n   hash: fnv1a_64\n" + servers, []string{
		`x.yml:3: YAML syntax error: mapping values are not allowed in this context (check the indentation of this line: 3 spaces here, 2 on line 2 above it)`,
	}},
	{"YAML syntax error: key dedented", "a:\n    listen: 127.0.0.1:22121\n   hash: fnv1a_64\n" + servers, []string{
		`x.yml:3: YAML syntax error: did not find expected key (check the indentation of this line: 3 spaces here, 4 on line 2)`,
	}},
	{"YAML syntax error: list item among keys", pool + "  hash: fnv1a_64\n  - 127.0.0.1:6379:1\n", []string{
		`x.yml:4: YAML syntax error: did not find expected key (a list item where a key was expected: check the indentation of this line)`,
	}},
	{"YAML syntax error: list item dedented", pool + "  servers:\n    - 127.0.0.1:6379:1\n   - 127.0.0.1:6380:1\n", []string{
		`x.yml:5: YAML syntax error: did not find expected key (check the indentation of this line: 3 spaces here, 4 on line 4)`,
	}},
	{"YAML syntax error: tab indentation", "a:\n\tlisten: 127.0.0.1:22121\n", []string{
		`x.yml:2: YAML syntax error: found character that cannot start any token (tabs cannot indent YAML; use spaces)`,
	}},
	{"YAML syntax error: unquoted IPv6 listen", "a:\n  listen: [::1]:22121\n" + servers, []string{
		`x.yml:2: YAML syntax error: did not find expected node content (quote values that start with "[", like listen: "[::1]:22121")`,
	}},
	{"YAML syntax error: control character", pool + "  redis_auth: \"a\x01b\"\n", []string{
		`x.yml:3: YAML syntax error: control characters are not allowed`,
	}},
	{"YAML syntax error: invalid UTF-8", pool + "  redis_auth: \xff\n", []string{
		`x.yml:3: YAML syntax error: invalid leading UTF-8 octet`,
	}},
	{"YAML unknown alias", pool + "  hash: *h\n", []string{
		`x.yml:3: YAML syntax error: unknown anchor 'h' referenced`,
	}},
	{"YAML merge key", "base: &b\n  listen: 127.0.0.1:22121\n" + servers + "a:\n  <<: *b\n  listen: 127.0.0.1:22122\n", []string{
		`x.yml:5: pool "a": has no servers (add servers: with host:port:weight entries, or groups: and sentinels:)`,
		`x.yml:6: pool "a": YAML merge keys (<<) are not supported; write the keys out in each pool`,
	}},
	{"multiple errors in one file, all reported in line order",
		"alpha:\n" +
			"  listen: 127.0.0.1:0\n" +
			"  hash: fnv2\n" +
			"  hash_tag: \"{\"\n" +
			"  timeout: soon\n" +
			"  redis: yes\n" +
			"  servers:\n" +
			"   - 127.0.0.1:6379:0\n" +
			"   - 127.0.0.1:6380:1 s1\n" +
			"   - 127.0.0.1:6381:1 s1\n" +
			"beta:\n" +
			"  distribution: vnode\n" +
			"  bogus: 1\n",
		[]string{
			`x.yml:2: pool "alpha": listen "127.0.0.1:0" has port 0 (ports are 1 to 65535)`,
			`x.yml:3: pool "alpha": hash "fnv2" is not one of one_at_a_time, md5, crc16, crc32, crc32a, fnv1_64, fnv1a_64, fnv1_32, fnv1a_32, hsieh, murmur, jenkins`,
			`x.yml:4: pool "alpha": hash_tag "{" must be exactly two characters, like "{}"`,
			`x.yml:5: pool "alpha": timeout "soon" is not a whole number of milliseconds`,
			`x.yml:6: pool "alpha": redis "yes" is not true or false`,
			`x.yml:8: pool "alpha": server "127.0.0.1:6379:0" has weight 0 (weights must be at least 1)`,
			`x.yml:10: pool "alpha": duplicate server name "s1" (also on line 9)`,
			`x.yml:11: pool "beta": has no listen address (add listen: host:port)`,
			`x.yml:11: pool "beta": has no servers (add servers: with host:port:weight entries, or groups: and sentinels:)`,
			`x.yml:12: pool "beta": distribution "vnode" is not one of ketama, modula, random`,
			`x.yml:13: pool "beta": unknown key "bogus" (the keys are listen, client_connections, hash, hash_tag, distribution, timeout, backlog, tcpkeepalive, preconnect, redis, redis_auth, redis_db, server_connections, auto_eject_hosts, server_retry_timeout, server_failure_limit, servers, sentinels, groups, sentinel_heartbeat, slowlog_slower_than, databases, split_transactions, script_no_keys, client_output_limit, client_pubsub_limit, blocking_connections, cross_server_blocking, max_reply_bytes)`,
		}},
}

func TestParseRejects(t *testing.T) {
	for _, tc := range badConfigs {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("x.yml", []byte(tc.yaml))
			if cfg != nil {
				t.Errorf("Parse returned a Config along with its error")
			}
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.yaml)
			}
			if got, want := err.Error(), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
			var es Errors
			if !errors.As(err, &es) || len(es) != len(tc.want) {
				t.Errorf("error is %T with %d problems, want Errors with %d", err, len(es), len(tc.want))
			}
		})
	}
}

// TestMisindented checks the shape of config a copy from a web page
// produces: line 3 is indented less than line 2, and must be the one named.
func TestMisindented(t *testing.T) {
	_, err := Load("testdata/misindented.yml")
	want := "testdata/misindented.yml:3: YAML syntax error: did not find expected key (check the indentation of this line: 4 spaces here, 5 on line 2)"
	if err == nil || err.Error() != want {
		t.Errorf("Load(misindented.yml) = %v, want %s", err, want)
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.yml")
	_, err := Load(missing)
	if want := missing + ": cannot read the configuration file: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("Load(missing) = %v, want %s", err, want)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) error does not wrap fs.ErrNotExist: %v", err)
	}

	// A directory stands in for an unreadable file: reading it fails even
	// for root, which a chmod 000 file does not.
	_, err = Load(dir)
	if want := dir + ": cannot read the configuration file: is a directory"; err == nil || err.Error() != want {
		t.Errorf("Load(dir) = %v, want %s", err, want)
	}

	t.Run("chmod 000", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root can read a file whatever its mode")
		}
		f := filepath.Join(dir, "secret.yml")
		if err := os.WriteFile(f, []byte(pool+servers), 0o000); err != nil {
			t.Fatal(err)
		}
		_, err := Load(f)
		if want := f + ": cannot read the configuration file: permission denied"; err == nil || err.Error() != want {
			t.Errorf("Load(unreadable) = %v, want %s", err, want)
		}
	})
}

// TestExamples parses the configurations users write (copies of
// /work/shared/examples) and twemproxy's own example.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yml")
	if err != nil || len(files) < 4 {
		t.Fatalf("testdata: %v %v", files, err)
	}
	files = append(files, "../../conf/nutcracker.yml")
	for _, f := range files {
		if filepath.Base(f) == "misindented.yml" {
			continue
		}
		if _, err := Load(f); err != nil {
			t.Errorf("Load(%s):\n%v", f, err)
		}
	}
}

// TestNutcrackerExample checks twemproxy's conf/nutcracker.yml decodes to
// what its README describes.
func TestNutcrackerExample(t *testing.T) {
	cfg, err := Load("../../conf/nutcracker.yml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range cfg.Pools {
		names = append(names, p.Name)
	}
	if want := []string{"alpha", "beta", "gamma", "delta", "omega"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("pools %v, want %v", names, want)
	}
	alpha, beta, gamma, delta, omega := cfg.Pools[0], cfg.Pools[1], cfg.Pools[2], cfg.Pools[3], cfg.Pools[4]
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("alpha listen", alpha.Listen, Address{Network: "tcp", Host: "127.0.0.1", Port: 22121})
	check("alpha redis", alpha.Redis, true)
	check("alpha timeout", alpha.Timeout, time.Duration(0))
	check("alpha retry", alpha.ServerRetryTimeout, 2*time.Second)
	check("beta hash_tag", beta.HashTag, "{}")
	check("beta ring names", ringNames(beta.Servers), []string{"server1", "server2", "server3", "server4"})
	check("gamma backlog", gamma.Backlog, 1024)
	check("gamma preconnect", gamma.Preconnect, true)
	check("gamma redis", gamma.Redis, false)
	check("delta servers", len(delta.Servers), 10)
	check("delta timeout", delta.Timeout, 100*time.Millisecond)
	check("omega listen", omega.Listen, Address{Network: "unix", Path: "/tmp/gamma"})
	check("omega hash", omega.Hash, "hsieh")
	check("omega weights", []int{omega.Servers[0].Weight, omega.Servers[1].Weight}, []int{100000, 1})
	check("omega ring names", ringNames(omega.Servers), []string{"127.0.0.1:11214", "127.0.0.1:11215"})
}

func ringNames(ss []Server) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.RingName())
	}
	return out
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse("x.yml", []byte(pool+servers))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultPool()
	want.Name, want.Line = "a", 1
	want.Listen = Address{Network: "tcp", Host: "127.0.0.1", Port: 22121}
	want.Servers = []Server{{Address: Address{Network: "tcp", Host: "127.0.0.1", Port: 6379}, Weight: 1, Line: 4}}
	if !reflect.DeepEqual(cfg.Pools[0], want) {
		t.Errorf("pool\n%+v\nwant\n%+v", cfg.Pools[0], want)
	}
	// The documented defaults, from nc_conf.h.
	d := DefaultPool()
	if d.Hash != "fnv1a_64" || d.Distribution != "ketama" || d.Timeout != 0 || d.Backlog != 512 ||
		d.ClientConnections != 0 || d.ServerConnections != 1 || d.AutoEjectHosts ||
		d.ServerRetryTimeout != 30*time.Second || d.ServerFailureLimit != 2 ||
		d.SentinelHeartbeat != time.Second || d.Redis || d.Preconnect || d.TCPKeepalive ||
		d.SlowlogSlowerThan >= 0 || d.ScriptNoKeys != ScriptNoKeysError || d.ClientOutputLimit != 64<<20 || d.ClientPubSubLimit != 32<<20 || d.MaxReplyBytes != 512<<20 {
		t.Errorf("DefaultPool() = %+v", d)
	}
}

// goodConfigs are configurations Parse must accept, each with a check of
// the one pool it defines. Each is also a seed of FuzzParse.
var goodConfigs = []struct {
	name  string
	yaml  string
	check func(t *testing.T, p *Pool)
}{
	{"every key", "a:\n" +
		"  listen: 0.0.0.0:22121\n" +
		"  client_connections: 100\n" +
		"  hash: murmur\n" +
		"  hash_tag: \"$$\"\n" +
		"  distribution: modula\n" +
		"  timeout: 250\n" +
		"  backlog: 0\n" +
		"  tcpkeepalive: true\n" +
		"  preconnect: true\n" +
		"  redis: true\n" +
		"  redis_auth: 123456\n" +
		"  redis_db: 3\n" +
		"  server_connections: 4\n" +
		"  auto_eject_hosts: true\n" +
		"  server_retry_timeout: 0\n" +
		"  server_failure_limit: 0\n" +
		"  slowlog_slower_than: 10000\n" +
		"  databases: 32\n" +
		"  split_transactions: true\n" +
		"  script_no_keys: placeholder\n" +
		"  client_output_limit: 1048576\n" +
		"  client_pubsub_limit: 65536\n" +
		"  blocking_connections: 5\n" +
		"  cross_server_blocking: false\n" +
		"  max_reply_bytes: 1048576\n" +
		"  servers:\n" +
		"   - 127.0.0.1:6379:10 one\n",
		func(t *testing.T, p *Pool) {
			want := &Pool{Name: "a", Line: 1,
				Listen:            Address{Network: "tcp", Host: "0.0.0.0", Port: 22121},
				ClientConnections: 100, Hash: "murmur", HashTag: "$$", Distribution: "modula",
				Timeout: 250 * time.Millisecond, Backlog: 0, TCPKeepalive: true, Preconnect: true,
				Redis: true, RedisAuth: "123456", RedisDB: 3, ServerConnections: 4, AutoEjectHosts: true,
				ServerRetryTimeout: 0, ServerFailureLimit: 0,
				Servers:             []Server{{Address: Address{Network: "tcp", Host: "127.0.0.1", Port: 6379}, Weight: 10, Name: "one", Line: 28}},
				SentinelHeartbeat:   time.Second,
				SlowlogSlowerThan:   10 * time.Millisecond,
				Databases:           32,
				SplitTransactions:   true,
				ScriptNoKeys:        ScriptNoKeysPlaceholder,
				ClientOutputLimit:   1 << 20,
				ClientPubSubLimit:   64 << 10,
				BlockingConnections: 5,
				MaxReplyBytes:       1 << 20,
			}
			if !reflect.DeepEqual(p, want) {
				t.Errorf("pool\n%+v\nwant\n%+v", p, want)
			}
		}},
	{"quoted numbers and booleans, as twemproxy reads text", "a:\n  listen: '127.0.0.1:22121'\n  timeout: \"400\"\n  redis: \"true\"\n" + servers,
		func(t *testing.T, p *Pool) {
			if p.Timeout != 400*time.Millisecond || !p.Redis {
				t.Errorf("timeout %v redis %v", p.Timeout, p.Redis)
			}
		}},
	{"IPv6, bracketed and not", "a:\n  listen: \"[::1]:22121\"\n  servers:\n   - \"[::1]:6379:1\"\n   - ::1:6380:1\n   - \"[fe80::1%eth0]:11211:1\"\n",
		func(t *testing.T, p *Pool) {
			if got := p.Listen.String(); got != "[::1]:22121" {
				t.Errorf("listen %q", got)
			}
			if got, want := ringNames(p.Servers), []string{"::1:6379", "::1:6380", "fe80::1%eth0"}; !reflect.DeepEqual(got, want) {
				t.Errorf("ring names %q, want %q", got, want)
			}
			if got := p.Servers[1].String(); got != "[::1]:6380" {
				t.Errorf("dial address %q", got)
			}
		}},
	{"hostnames", "a:\n  listen: localhost:22121\n  servers:\n   - cache-1.example.com:11211:2\n",
		func(t *testing.T, p *Pool) {
			if p.Listen.Host != "localhost" || p.Servers[0].RingName() != "cache-1.example.com" || p.Servers[0].Weight != 2 {
				t.Errorf("listen %+v servers %+v", p.Listen, p.Servers)
			}
		}},
	{"unix sockets", "a:\n  listen: /tmp/a.sock 0666\n  servers:\n   - /tmp/r1.sock:1\n   - /tmp/r2.sock:3 r2\n",
		func(t *testing.T, p *Pool) {
			if p.Listen != (Address{Network: "unix", Path: "/tmp/a.sock", Mode: 0o666}) || p.Listen.String() != "/tmp/a.sock" {
				t.Errorf("listen %+v", p.Listen)
			}
			if got, want := ringNames(p.Servers), []string{"/tmp/r1.sock:", "r2"}; !reflect.DeepEqual(got, want) {
				t.Errorf("ring names %q, want %q", got, want)
			}
			if p.Servers[1].Weight != 3 || p.Servers[1].String() != "/tmp/r2.sock" {
				t.Errorf("server %+v", p.Servers[1])
			}
		}},
	{"one address twice under two names, as twemproxy allows", pool + "  servers:\n   - 127.0.0.1:6379:1 a\n   - 127.0.0.1:6379:1 b\n",
		func(t *testing.T, p *Pool) {
			if len(p.Servers) != 2 {
				t.Errorf("servers %+v", p.Servers)
			}
		}},
	{"sentinel mode", "a:\n  listen: 127.0.0.1:22121\n  redis_auth: pw\n  sentinel_heartbeat: 500\n  groups:\n   - g2\n   - g1\n  sentinels:\n   - 127.0.0.1:26379\n   - 127.0.0.1:26380 s2\n",
		func(t *testing.T, p *Pool) {
			if !p.Sentinel() || !p.Redis || p.RedisAuth != "pw" || p.SentinelHeartbeat != 500*time.Millisecond {
				t.Errorf("pool %+v", p)
			}
			if !reflect.DeepEqual(p.Groups, []string{"g2", "g1"}) {
				t.Errorf("groups %q", p.Groups)
			}
			want := []Server{
				{Address: Address{Network: "tcp", Host: "127.0.0.1", Port: 26379}, Weight: 1, Line: 9},
				{Address: Address{Network: "tcp", Host: "127.0.0.1", Port: 26380}, Weight: 1, Name: "s2", Line: 10},
			}
			if !reflect.DeepEqual(p.Sentinels, want) {
				t.Errorf("sentinels %+v", p.Sentinels)
			}
		}},
	{"YAML niceties: document start, flow list, alias, comments", "---\n# pools\na: # the pool\n  listen: &l 127.0.0.1:22121 # here\n  servers: [127.0.0.1:6379:1, \"127.0.0.1:6380:1\"]\n",
		func(t *testing.T, p *Pool) {
			if len(p.Servers) != 2 || p.Listen.Port != 22121 || p.Line != 3 {
				t.Errorf("pool %+v", p)
			}
		}},
	{"slowlog_slower_than 0 records every request", pool + "  slowlog_slower_than: 0\n" + servers,
		func(t *testing.T, p *Pool) {
			if p.SlowlogSlowerThan != 0 {
				t.Errorf("slowlog_slower_than %v", p.SlowlogSlowerThan)
			}
		}},
	{"slowlog_slower_than negative is off, as in Redis", pool + "  slowlog_slower_than: -5\n" + servers,
		func(t *testing.T, p *Pool) {
			if p.SlowlogSlowerThan != -1 {
				t.Errorf("slowlog_slower_than %v", p.SlowlogSlowerThan)
			}
		}},
	{"slowlog_slower_than quoted", pool + "  slowlog_slower_than: \"250\"\n" + servers,
		func(t *testing.T, p *Pool) {
			if p.SlowlogSlowerThan != 250*time.Microsecond {
				t.Errorf("slowlog_slower_than %v", p.SlowlogSlowerThan)
			}
		}},
	{"client_output_limit 0 is no limit", pool + "  client_output_limit: 0\n" + servers,
		func(t *testing.T, p *Pool) {
			if p.ClientOutputLimit != 0 {
				t.Errorf("client_output_limit %v", p.ClientOutputLimit)
			}
		}},
	{"client_pubsub_limit 0 is no limit", pool + "  client_pubsub_limit: 0\n" + servers,
		func(t *testing.T, p *Pool) {
			if p.ClientPubSubLimit != 0 {
				t.Errorf("client_pubsub_limit %v", p.ClientPubSubLimit)
			}
		}},
	{"numeric pool name, as twemproxy allows", "1:\n  listen: 127.0.0.1:22121\n" + servers,
		func(t *testing.T, p *Pool) {
			if p.Name != "1" {
				t.Errorf("name %q", p.Name)
			}
		}},
	{"hash_tag of two bytes", pool + "  hash_tag: \"é\"\n" + servers,
		func(t *testing.T, p *Pool) {
			if p.HashTag != "é" {
				t.Errorf("hash_tag %q", p.HashTag)
			}
		}},
}

func TestParseAccepts(t *testing.T) {
	for _, tc := range goodConfigs {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("x.yml", []byte(tc.yaml))
			if err != nil {
				t.Fatalf("Parse:\n%v", err)
			}
			if cfg.Path != "x.yml" || len(cfg.Pools) != 1 {
				t.Fatalf("config %+v", cfg)
			}
			tc.check(t, cfg.Pools[0])
		})
	}
}

func TestPoolOrder(t *testing.T) {
	var b strings.Builder
	names := []string{"zeta", "alpha", "mid", "beta"}
	for i, n := range names {
		b.WriteString(n + ":\n  listen: 127.0.0.1:" + string(rune('1'+i)) + "0000\n" + servers)
	}
	cfg, err := Parse("x.yml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range cfg.Pools {
		if p.Name != names[i] {
			t.Errorf("pool %d is %q, want %q", i, p.Name, names[i])
		}
	}
}

func TestRingName(t *testing.T) {
	tests := []struct {
		s    Server
		want string
	}{
		{Server{Address: Address{Network: "tcp", Host: "10.0.0.1", Port: 6379}, Weight: 5}, "10.0.0.1:6379"},
		{Server{Address: Address{Network: "tcp", Host: "10.0.0.1", Port: 11211}, Weight: 5}, "10.0.0.1"},
		{Server{Address: Address{Network: "tcp", Host: "10.0.0.1", Port: 11211}, Name: "mc1"}, "mc1"},
		{Server{Address: Address{Network: "unix", Path: "/tmp/s"}, Weight: 1}, "/tmp/s:"},
		{Server{Address: Address{Network: "tcp", Host: "::1", Port: 6379}}, "::1:6379"},
	}
	for _, tc := range tests {
		if got := tc.s.RingName(); got != tc.want {
			t.Errorf("%+v.RingName() = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestKeys checks the key table is complete: every key documented, and every
// key accepted by the parser with a sample value (so adding a row to the
// table without a sample here fails).
func TestKeys(t *testing.T) {
	samples := map[string]string{
		"listen": "127.0.0.1:22121", "client_connections": "10", "hash": "md5", "hash_tag": `"{}"`,
		"distribution": "random", "timeout": "10", "backlog": "10", "tcpkeepalive": "true",
		"preconnect": "true", "redis": "true", "redis_auth": "pw", "redis_db": "1",
		"server_connections": "2", "auto_eject_hosts": "true", "server_retry_timeout": "10",
		"server_failure_limit": "1", "servers": "\n   - 127.0.0.1:6379:1",
		"sentinels": "\n   - 127.0.0.1:26379", "groups": "\n   - g", "sentinel_heartbeat": "10",
		"slowlog_slower_than": "1000", "databases": "32", "split_transactions": "true", "script_no_keys": "placeholder", "client_output_limit": "1048576",
		"client_pubsub_limit": "4096", "max_reply_bytes": "2097152", "blocking_connections": "8", "cross_server_blocking": "false",
	}
	keys := Keys()
	seen := make(map[string]bool)
	for _, k := range keys {
		if k.Doc == "" || !strings.HasSuffix(k.Doc, ".") {
			t.Errorf("key %s: doc %q", k.Name, k.Doc)
		}
		if seen[k.Name] {
			t.Errorf("key %s listed twice", k.Name)
		}
		seen[k.Name] = true
		v, ok := samples[k.Name]
		if !ok {
			t.Errorf("key %s has no sample value in TestKeys", k.Name)
			continue
		}
		var y string
		switch k.Name {
		case "listen":
			y = "a:\n  listen: " + v + "\n" + servers
		case "sentinels", "groups":
			y = pool + "  sentinels:" + samples["sentinels"] + "\n  groups:" + samples["groups"] + "\n"
		case "servers":
			y = pool + "  servers:" + v + "\n"
		default:
			y = pool + "  redis: true\n" + servers
			if k.Name != "redis" {
				y += "  " + k.Name + ": " + v + "\n"
			}
		}
		if _, err := Parse("x.yml", []byte(y)); err != nil {
			t.Errorf("key %s: %v", k.Name, err)
		}
	}
	if len(keys) != len(samples) {
		t.Errorf("%d keys, %d samples", len(keys), len(samples))
	}
	// Every key has a default shown in docs, except those that have none.
	for _, k := range keys {
		none := map[string]bool{"listen": true, "hash_tag": true, "redis_auth": true, "servers": true, "sentinels": true, "groups": true}
		if (k.Default == "") != none[k.Name] {
			t.Errorf("key %s: default %q", k.Name, k.Default)
		}
	}
}

func TestNamesAreCopies(t *testing.T) {
	h := Hashes()
	h[0] = "changed"
	if Hashes()[0] != "one_at_a_time" || len(Hashes()) != 12 {
		t.Error("Hashes() shares its slice")
	}
	d := Distributions()
	d[0] = "changed"
	if Distributions()[0] != "ketama" {
		t.Error("Distributions() shares its slice")
	}
}

func TestErrorRendering(t *testing.T) {
	es := Errors{
		{File: "f.yml", Msg: "no line"},
		{File: "f.yml", Line: 3, Msg: "file-level"},
		{File: "f.yml", Line: 4, Pool: `we"ird`, Key: "hash", Msg: `hash "x" is bad`},
	}
	want := "f.yml: no line\nf.yml:3: file-level\nf.yml:4: pool \"we\\\"ird\": hash \"x\" is bad"
	if es.Error() != want {
		t.Errorf("got\n%s\nwant\n%s", es.Error(), want)
	}
	var e *Error
	if !errors.As(error(es), &e) || e.Msg != "no line" {
		t.Errorf("errors.As found %v", e)
	}
}

func TestRedisDBBelowDatabases(t *testing.T) {
	_, err := Parse("x.yml", []byte("a:\n  listen: 127.0.0.1:22121\n  redis: true\n  redis_db: 20\n  databases: 16\n  servers:\n   - 127.0.0.1:6379:1\n"))
	if err == nil || !strings.Contains(err.Error(), `x.yml:5: pool "a": redis_db 20 is not below databases 16`) {
		t.Errorf("redis_db 20 with databases 16: %v", err)
	}
}
