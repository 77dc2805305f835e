//go:build placementgen

package hashkit

// The placement vector generator: it drives the real nutcracker process
// over real redis-server and memcached backends and writes what it observes
// to testdata/nutcracker/placement-*.txt, which TestPlacementVectors
// (placement_test.go) checks on every `go test`. Run it with
//
//	go test -tags placementgen -run TestGeneratePlacementVectors ./internal/hashkit/ -count=1
//
// It knows nothing of this package's code: every placement in the files is
// where a key SET through nutcracker was found by asking each backend
// directly (SELECT + KEYS on Redis, get on memcached).
//
// The backends listen on fixed ports (PLACEMENTGEN_PORT_BASE, default
// 26300: Redis on base..base+24, the memcached comparison on base+100..102
// and 11211), because unnamed servers are named "host:port" on the ring:
// with fixed ports a second run writes byte-identical files.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

const (
	genBackends        = 25    // redis-servers shared by every Redis scenario
	genDefaultPortBase = 26300 // below Linux's ephemeral range, so FreePort never returns these
	genMemcachePort    = 11211 // the port whose ring name drops ":port"
	genTimeBudget      = 3 * time.Minute
)

// genServer is one servers: entry of a scenario.
type genServer struct {
	line     string // the entry as written, "127.0.0.1:26300:1 alpha"
	addr     string // where the generator reaches the backend directly
	statName string // the server's name in nutcracker's stats: its name, else the address text
	backend  int    // index of the Redis backend; -1 for the memcached comparison
}

// genList is a server list, used by one pool per hash and distribution.
type genList struct {
	id      string // pool id in the vector file
	hashTag string
	servers []genServer
	eject   []int // positions ejected one at a time, each in a scenario of its own
}

// genScenario is one pool given to nutcracker and the placement observed.
type genScenario struct {
	file     string   // vector file suffix: "<hash>-<dist>" or "memcached"
	pool     string   // pool id within the file
	conf     []string // the pool's YAML lines that decide placement, as given to nutcracker
	list     *genList
	victim   int // position of the ejected server, or -1
	memcache bool
	db       int    // redis_db
	name     string // pool name in nutcracker's configuration and stats
	listen   string

	place   []byte // one character per key
	errText string // the error reply of the '-' keys
}

func (s *genScenario) mask() string {
	m := make([]byte, len(s.list.servers))
	for i := range m {
		m[i] = '1'
		if i == s.victim {
			m[i] = '0'
		}
	}
	return string(m)
}

func (s *genScenario) allDead() bool { return len(s.list.servers) == 1 && s.victim == 0 }

// yaml returns the pool as nutcracker is given it: conf plus listen,
// redis_db and, when a server is to be ejected, preconnect and ejection
// after one failure with a retry far beyond the generator's run. The victim
// is killed before nutcracker starts, so nutcracker's connect at start-up
// fails and ejects it. (Ejecting it by routing a request to it would not
// do: under crc32, whose hashes are 15 bits, a ketama server can receive no
// key at all.)
func (s *genScenario) yaml() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n", s.name, s.listen)
	if !s.memcache {
		fmt.Fprintf(&b, "  redis_db: %d\n", s.db)
	}
	if s.victim >= 0 {
		b.WriteString("  preconnect: true\n  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n")
	}
	for _, l := range s.conf {
		b.WriteString("  " + l + "\n")
	}
	return b.String()
}

func TestGeneratePlacementVectors(t *testing.T) {
	start := time.Now()
	base := genPortBase(t)
	keys := genKeys()
	mcKeys := genMemcacheKeys(keys)
	conns := newGenConns(t)
	var all []*genScenario
	db := 0
	newScenario := func(file, pool string, conf []string, l *genList, victim int, memcache bool) *genScenario {
		if db >= 4096 {
			t.Fatal("more scenarios than the backends' 4096 databases")
		}
		s := &genScenario{file: file, pool: pool, conf: conf, list: l, victim: victim, memcache: memcache,
			db: db, name: fmt.Sprintf("p%d", db), listen: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))}
		db++
		all = append(all, s)
		return s
	}

	// Part 1: memcached, then Redis, on the same four addresses, one of
	// them port 11211.
	port11211 := genMemcachePort
	if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port11211))); err != nil {
		port11211 = base + 103
		t.Logf("\n!!!\n!!! PORT 11211 IS BUSY (%v):\n!!! the memcached vectors use port %d instead and do NOT cover the port-11211\n"+
			"!!! ring-name rule; TestPlacementVectors fails until they are regenerated with port 11211 free.\n!!!", err, port11211)
	} else {
		l.Close()
	}
	mcPorts := []int{port11211, base + 100, base + 101, base + 102}
	mcList, mcNamed, mcTagged := genMemcacheLists(mcPorts)
	var mcScens, rdScens []*genScenario
	for _, memcache := range []bool{true, false} {
		prefix, scens := "rd-", &rdScens
		if memcache {
			prefix, scens = "mc-", &mcScens
		}
		add := func(l *genList, id, hash, dist string) {
			*scens = append(*scens, newScenario("memcached", prefix+id, genConf(!memcache, hash, dist, l), l, -1, memcache))
		}
		for _, hash := range HashNames() {
			for _, dist := range []string{"ketama", "modula"} {
				add(mcList, mcList.id+"-"+hash+"-"+dist, hash, dist)
			}
		}
		add(mcNamed, mcNamed.id+"-murmur-ketama", "murmur", "ketama")
		add(mcNamed, mcNamed.id+"-fnv1a_64-ketama", "fnv1a_64", "ketama")
		add(mcNamed, mcNamed.id+"-md5-modula", "md5", "modula")
		add(mcTagged, mcTagged.id+"-crc32a-ketama", "crc32a", "ketama")
	}
	var mcServers []*testutil.Server
	for _, p := range mcPorts {
		mcServers = append(mcServers, testutil.StartMemcachedOnPort(t, p))
	}
	genRunPhase(t, "memcached", mcScens, mcKeys, conns)
	for _, s := range mcServers {
		s.Stop()
		conns.drop(s.Addr)
	}
	var rdServers []*testutil.Server
	for _, p := range mcPorts {
		rdServers = append(rdServers, genStartRedis(t, p))
	}
	genRunPhase(t, "redis on the memcached addresses", rdScens, mcKeys, conns)
	for _, s := range rdServers {
		s.Stop()
		conns.drop(s.Addr)
	}
	for i := range mcScens {
		if m, r := mcScens[i], rdScens[i]; !bytes.Equal(m.place, r.place) {
			t.Errorf("%s and %s: memcached and Redis placements differ:\n%s\n%s", m.pool, r.pool, m.place, r.place)
		}
	}
	t.Logf("memcached comparison: %d memcached + %d Redis scenarios, %d keys each, %v", len(mcScens), len(rdScens), len(mcKeys), time.Since(start).Round(time.Millisecond))

	// Part 2: every hash and distribution over the 25 shared redis-servers.
	backends := make([]*testutil.Server, genBackends)
	for i := range backends {
		backends[i] = genStartRedis(t, base+i)
	}
	lists := genRedisLists(base)
	var basePhase []*genScenario
	byVictim := make([][]*genScenario, genBackends)
	for _, hash := range HashNames() {
		for _, dist := range []string{"ketama", "modula"} {
			file := hash + "-" + dist
			for _, l := range lists {
				conf := genConf(true, hash, dist, l)
				basePhase = append(basePhase, newScenario(file, l.id, conf, l, -1, false))
				for _, v := range l.eject {
					b := l.servers[v].backend
					byVictim[b] = append(byVictim[b], newScenario(file, l.id, conf, l, v, false))
				}
			}
		}
	}
	genRunPhase(t, "all servers up", basePhase, keys, conns)
	for b, scens := range byVictim {
		if len(scens) == 0 {
			continue
		}
		backends[b].Kill()
		conns.drop(backends[b].Addr)
		genRunPhase(t, fmt.Sprintf("backend %d (%s) killed", b, backends[b].Addr), scens, keys, conns)
		backends[b].Restart(t)
	}
	if t.Failed() {
		t.Fatal("not writing the vector files")
	}

	files := genWrite(t, all, keys, mcKeys)
	elapsed := time.Since(start)
	var size int64
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil {
			size += fi.Size()
		}
	}
	ejected := 0
	for _, s := range all {
		if s.victim >= 0 {
			ejected++
		}
	}
	t.Logf("wrote %d files (%d bytes): %d scenarios (%d with a server ejected), %d Redis keys and %d memcached keys each, in %v",
		len(files), size, len(all), ejected, len(keys), len(mcKeys), elapsed.Round(time.Millisecond))
	if elapsed > genTimeBudget {
		t.Errorf("the generator took %v, over its budget of %v", elapsed, genTimeBudget)
	}
}

// genPortBase returns the first backend port: PLACEMENTGEN_PORT_BASE or
// 26300.
func genPortBase(t *testing.T) int {
	v := os.Getenv("PLACEMENTGEN_PORT_BASE")
	if v == "" {
		return genDefaultPortBase
	}
	p, err := strconv.Atoi(v)
	if err != nil || p < 1024 || p+110 > 65535 {
		t.Fatalf("PLACEMENTGEN_PORT_BASE=%q: want a port from 1024 to 65425", v)
	}
	return p
}

// genStartRedis starts a redis-server on a fixed port of 127.0.0.1 with
// 4096 databases (a scenario each) and no persistence. testutil.StartRedis
// chooses its own port, which would make the ring names, and so the vector
// files, differ at every run.
func genStartRedis(t *testing.T, port int) *testutil.Server {
	t.Helper()
	dir := t.TempDir()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	bin := testutil.Binary(t, "redis-server")
	return testutil.StartProcess(t, bin, []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--databases", "4096", "--hz", "100",
		"--maxclients", "4000", "--dir", dir, "--logfile", "",
	}, addr)
}

// genRedisLists returns the Redis server lists: 1, 3, 10 and 25 servers of
// weight 1, weights 1,1,2,3, named servers (with a weight of 2 among them,
// since names do not replace weights), ports configured downwards, and
// hash_tag "{}". Every single
// server of each list is ejected in a scenario of its own.
func genRedisLists(base int) []*genList {
	server := func(i, weight int, name string) genServer {
		addr := fmt.Sprintf("127.0.0.1:%d", base+i)
		s := genServer{line: fmt.Sprintf("%s:%d", addr, weight), addr: addr, statName: addr, backend: i}
		if name != "" {
			s.line += " " + name
			s.statName = name
		}
		return s
	}
	plain := func(id string, weights ...int) *genList {
		l := &genList{id: id}
		for i, w := range weights {
			l.servers = append(l.servers, server(i, w, ""))
			l.eject = append(l.eject, i)
		}
		return l
	}
	ones := func(n int) []int {
		w := make([]int, n)
		for i := range w {
			w[i] = 1
		}
		return w
	}
	named := &genList{id: "names"}
	for i, n := range []struct {
		name   string
		weight int
	}{{"gamma_3", 2}, {"alpha", 1}, {"10.0.0.1:6379", 1}, {"beta-2", 1}} {
		named.servers = append(named.servers, server(i, n.weight, n.name))
		named.eject = append(named.eject, i)
	}
	// nutcracker sorts a pool's servers by name (shorter first) before
	// building the ring: lists out of that order (the names above, and
	// ports configured downwards) show modula's slots follow it.
	reversed := &genList{id: "rev3121"}
	for j, i := range []int{3, 2, 1, 0} {
		reversed.servers = append(reversed.servers, server(i, []int{3, 1, 2, 1}[j], ""))
		reversed.eject = append(reversed.eject, j)
	}
	tagged := plain("tag", ones(4)...)
	tagged.hashTag = "{}"
	return []*genList{
		plain("n1", 1),
		plain("n3", ones(3)...),
		plain("n10", ones(10)...),
		plain("n25", ones(25)...),
		plain("w1123", 1, 1, 2, 3),
		named,
		reversed,
		tagged,
	}
}

// genMemcacheLists returns the lists of the memcached comparison over ports
// (the first is 11211): unnamed with weights 1,1,2,1, the same named, and
// the unnamed one with hash_tag "{}".
func genMemcacheLists(ports []int) (plain, named, tagged *genList) {
	plain = &genList{id: "m"}
	named = &genList{id: "mnames"}
	tagged = &genList{id: "mtag", hashTag: "{}"}
	names := []string{"cache-a", "cache-b", "cache-c", "cache-d"}
	for i, p := range ports {
		w := 1
		if i == 2 {
			w = 2
		}
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		stat := addr
		if p == genMemcachePort {
			stat = "127.0.0.1"
		}
		s := genServer{line: fmt.Sprintf("%s:%d", addr, w), addr: addr, statName: stat, backend: -1}
		plain.servers = append(plain.servers, s)
		tagged.servers = append(tagged.servers, s)
		s.line += " " + names[i]
		s.statName = names[i]
		named.servers = append(named.servers, s)
	}
	return plain, named, tagged
}

// genConf returns the YAML lines of a pool that decide placement.
func genConf(redis bool, hash, dist string, l *genList) []string {
	var c []string
	if redis {
		c = append(c, "redis: true")
	}
	c = append(c, "hash: "+hash, "distribution: "+dist)
	if l.hashTag != "" {
		c = append(c, "hash_tag: "+strconv.Quote(l.hashTag))
	}
	c = append(c, "servers:")
	for _, s := range l.servers {
		c = append(c, " - "+s.line)
	}
	return c
}

// genKeys returns the keys every Redis scenario places: the empty key,
// hash-tag shapes, bytes ≥ 0x80 (signed char in nutcracker's hashes),
// control bytes, every length up to 16 (hash tails), long keys, and 100
// pseudo-random keys from a fixed seed.
func genKeys() [][]byte {
	var keys [][]byte
	for _, k := range []string{
		"", "a", "b", "z", "0", "foo", "bar", "baz", "hello", "123456789", "key", "user:1000",
		"session:4f9a2c", "counter", "placement", "twemproxy", "nutcracker",
		"{user1}:a", "{user1}:b", "{user1}:c", "{user2}:a", "{user2}:b", "x{user1}y", "{user1}",
		"a{}b", "{}", "{", "}", "}{", "{a}", "x{y}z", "{a}{b}", "}a{b}", "{{x}}", "{}{x}", "{user1",
		"user1}", "{ user 1 }", "{\x80\xff}", "pre{tag}suf", "{\xc3\xa9t\xc3\xa9}:1", "{}}", "{{}",
		"\x80", "\xff", "\xff\xff", "\x80abc", "abc\x80", "caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac",
		"\x00", "a\x00b", "a b", "\r\n", "\t", "\x7f", "\xfe\xfd\xfc", "abcd\x01\x02\xff",
		"abcd\xff\xfe\xfd", "\xff\xfe\xfd\xfc\xfb\xfa\xf9", "-", "$", "*1\r\n$3\r\nGET",
	} {
		keys = append(keys, []byte(k))
	}
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	for n := 1; n <= 16; n++ {
		keys = append(keys, []byte(alphabet[:n]))
		hi := make([]byte, n)
		for i := range hi {
			hi[i] = byte(0x80 + i*7)
		}
		keys = append(keys, hi)
	}
	for _, n := range []int{100, 249, 250, 1000} {
		k := make([]byte, n)
		for i := range k {
			k[i] = alphabet[i%len(alphabet)]
		}
		keys = append(keys, k)
	}
	r := rand.New(rand.NewPCG(0x73686172, 0x6470726f))
	for i := range 100 {
		k := make([]byte, 1+r.IntN(40))
		for j := range k {
			switch {
			case i%4 == 3: // any byte
				k[j] = byte(r.UintN(256))
			case r.IntN(2) == 0: // high bytes
				k[j] = byte(0x80 + r.UintN(128))
			default:
				k[j] = alphabet[r.IntN(len(alphabet))]
			}
		}
		keys = append(keys, k)
	}
	seen := map[string]bool{}
	return slices.DeleteFunc(keys, func(k []byte) bool {
		dup := seen[string(k)]
		seen[string(k)] = true
		return dup
	})
}

// genMemcacheKeys returns the keys the memcached text protocol can carry:
// non-empty, at most 250 bytes, no control bytes or spaces.
func genMemcacheKeys(keys [][]byte) [][]byte {
	var out [][]byte
	for _, k := range keys {
		ok := len(k) > 0 && len(k) <= 250
		for _, c := range k {
			if c <= ' ' || c == 0x7f {
				ok = false
			}
		}
		if ok {
			out = append(out, k)
		}
	}
	return out
}

// genRunPhase starts one nutcracker with every scenario's pool, places the
// keys in each, checks nutcracker's stats, and stops it.
func genRunPhase(t *testing.T, phase string, scens []*genScenario, keys [][]byte, conns *genConns) {
	t.Helper()
	began := time.Now()
	var yaml strings.Builder
	for _, s := range scens {
		yaml.WriteString(s.yaml())
	}
	nc := testutil.StartNutcracker(t, yaml.String(), "-i", "100")
	// Preconnect has already tried every victim and failed: wait until
	// the stats show each ejected (and nothing else) before sending keys.
	genCheckStats(t, nc, scens)
	for _, s := range scens {
		c := genDial(t, s.listen)
		if s.memcache {
			genPlaceMemcache(t, s, c, keys, conns)
		} else {
			genPlaceRedis(t, s, c, keys, conns)
		}
		c.c.Close()
	}
	genCheckStats(t, nc, scens) // and still nothing else ejected
	nc.Stop()
	t.Logf("phase %q: %d scenarios in %v", phase, len(scens), time.Since(began).Round(time.Millisecond))
}

// genPlaceRedis SETs every key through nutcracker, pipelined, then finds
// each on the backends with SELECT and KEYS.
func genPlaceRedis(t *testing.T, s *genScenario, c *genConn, keys [][]byte, conns *genConns) {
	t.Helper()
	var buf []byte
	for _, k := range keys {
		buf = genEncode(buf, []byte("SET"), k, []byte("v"))
	}
	c.write(t, buf)
	replies := make([]genReply, len(keys))
	for i := range keys {
		replies[i] = c.read(t)
	}
	found := genFound(t, s, keys, func(srv genServer, want map[string]int) []string {
		b := conns.get(srv.addr)
		genRedisCmd(t, b, "SELECT", strconv.Itoa(s.db)).wantOK(t, srv.addr)
		r := genRedisCmd(t, b, "KEYS", "*")
		if r.kind != '*' {
			t.Fatalf("%s: KEYS answered %c%q", srv.addr, r.kind, r.str)
		}
		return r.arr
	})
	genRecord(t, s, keys, found, func(i int) (ok bool, errText string) {
		r := replies[i]
		if r.kind == '+' && r.str == "OK" {
			return true, ""
		}
		if r.kind != '-' {
			t.Fatalf("%s %s: SET %q answered %c%q", s.file, s.pool, keys[i], r.kind, r.str)
		}
		return false, "-" + r.str
	})
}

// genPlaceMemcache sets every key through nutcracker, pipelined, then gets
// each from every memcached and deletes what it found.
func genPlaceMemcache(t *testing.T, s *genScenario, c *genConn, keys [][]byte, conns *genConns) {
	t.Helper()
	var buf []byte
	for _, k := range keys {
		buf = fmt.Appendf(buf, "set %s 0 0 1\r\nv\r\n", k)
	}
	c.write(t, buf)
	replies := make([]string, len(keys))
	for i := range keys {
		replies[i] = c.line(t)
	}
	found := genFound(t, s, keys, func(srv genServer, want map[string]int) []string {
		b := conns.get(srv.addr)
		var req []byte
		for _, k := range keys {
			req = fmt.Appendf(req, "get %s\r\n", k)
		}
		b.write(t, req)
		var got []string
		for range keys {
			for {
				l := b.line(t)
				if l == "END" {
					break
				}
				f := strings.Fields(l)
				if len(f) != 4 || f[0] != "VALUE" {
					t.Fatalf("%s: get answered %q", srv.addr, l)
				}
				if v := b.line(t); v != "v" {
					t.Fatalf("%s: value %q", srv.addr, v)
				}
				got = append(got, f[1])
			}
		}
		req = req[:0]
		for _, k := range got {
			req = fmt.Appendf(req, "delete %s\r\n", k)
		}
		b.write(t, req)
		for range got {
			if l := b.line(t); l != "DELETED" {
				t.Fatalf("%s: delete answered %q", srv.addr, l)
			}
		}
		return got
	})
	genRecord(t, s, keys, found, func(i int) (bool, string) {
		if replies[i] != "STORED" {
			t.Fatalf("%s %s: set %q answered %q", s.file, s.pool, keys[i], replies[i])
		}
		return true, ""
	})
}

// genFound asks every live server of the scenario, through list, which
// keys it holds, and returns the position of the server holding each key
// (-1 for none). A key on two servers, or a key that was not sent, fails.
func genFound(t *testing.T, s *genScenario, keys [][]byte, list func(genServer, map[string]int) []string) []int {
	t.Helper()
	index := make(map[string]int, len(keys))
	for i, k := range keys {
		index[string(k)] = i
	}
	found := make([]int, len(keys))
	for i := range found {
		found[i] = -1
	}
	for pos, srv := range s.list.servers {
		if pos == s.victim {
			continue
		}
		for _, k := range list(srv, index) {
			i, ok := index[k]
			switch {
			case !ok:
				t.Fatalf("%s %s: %s holds %q, which was never sent", s.file, s.pool, srv.addr, k)
			case found[i] >= 0:
				t.Fatalf("%s %s: %q is on servers %d and %d", s.file, s.pool, k, found[i], pos)
			}
			found[i] = pos
		}
	}
	return found
}

// genRecord fills s.place from where each key was found and what nutcracker
// answered (reply reports +OK / STORED, or the error text). An answer and
// a finding that disagree, or an error while some server is live, fail.
func genRecord(t *testing.T, s *genScenario, keys [][]byte, found []int, reply func(i int) (bool, string)) {
	t.Helper()
	s.place = make([]byte, len(keys))
	for i, k := range keys {
		ok, errText := reply(i)
		switch {
		case ok && found[i] < 0:
			t.Fatalf("%s %s: %q was stored but is on no server", s.file, s.pool, k)
		case !ok && found[i] >= 0:
			t.Fatalf("%s %s: %q failed (%s) but is on server %d", s.file, s.pool, k, errText, found[i])
		case !ok && !s.allDead():
			t.Fatalf("%s %s live %s: %q failed (%s) although servers are live", s.file, s.pool, s.mask(), k, errText)
		case !ok && s.errText != "" && errText != s.errText:
			t.Fatalf("%s %s: two error replies, %q and %q", s.file, s.pool, s.errText, errText)
		case ok:
			s.place[i] = placementDigits[found[i]]
		default:
			s.place[i] = '-'
			s.errText = errText
		}
	}
}

// genCheckStats waits until nutcracker's stats (aggregated every 100 ms)
// show each victim ejected, and no other server, in every scenario.
func genCheckStats(t *testing.T, nc *testutil.Server, scens []*genScenario) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		problem := genStatsProblem(t, nc.StatsAddr, scens)
		if problem == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nutcracker stats: %s", problem)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func genStatsProblem(t *testing.T, addr string, scens []*genScenario) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var stats map[string]any
	if err := json.NewDecoder(c).Decode(&stats); err != nil {
		t.Fatalf("stats from %s: %v", addr, err)
	}
	for _, s := range scens {
		pool, _ := stats[s.name].(map[string]any)
		if pool == nil {
			return fmt.Sprintf("no pool %s", s.name)
		}
		ejects, _ := pool["server_ejects"].(float64)
		if s.victim < 0 && ejects != 0 || s.victim >= 0 && ejects < 1 {
			return fmt.Sprintf("%s %s live %s: server_ejects %v", s.file, s.pool, s.mask(), ejects)
		}
		for pos, srv := range s.list.servers {
			st, _ := pool[srv.statName].(map[string]any)
			if st == nil {
				return fmt.Sprintf("%s %s: no server %q in pool %s", s.file, s.pool, srv.statName, s.name)
			}
			at, _ := st["server_ejected_at"].(float64)
			if (at != 0) != (pos == s.victim) {
				return fmt.Sprintf("%s %s live %s: server %d has server_ejected_at %v", s.file, s.pool, s.mask(), pos, at)
			}
		}
	}
	return ""
}

// genWrite writes the vector files, replacing any old placement-*.txt,
// and returns their paths.
func genWrite(t *testing.T, all []*genScenario, keys, mcKeys [][]byte) []string {
	t.Helper()
	dir := filepath.Join("testdata", "nutcracker")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	old, _ := filepath.Glob(filepath.Join(dir, "placement-*.txt"))
	for _, f := range old {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	versions := genVersions(t)
	var order []string
	byFile := map[string][]*genScenario{}
	for _, s := range all {
		if byFile[s.file] == nil {
			order = append(order, s.file)
		}
		byFile[s.file] = append(byFile[s.file], s)
	}
	var paths []string
	for _, file := range order {
		scens := byFile[file]
		var b bytes.Buffer
		b.WriteString(placementHeader)
		fmt.Fprintf(&b, "# Observed with %s.\n", versions)
		if file == "memcached" {
			b.WriteString("# mc-* pools ran over memcached, rd-* over redis-server on the same addresses (after\n" +
				"# memcached was stopped); both must place keys identically. Only keys memcached can carry.\n")
		}
		ks := keys
		if file == "memcached" {
			ks = mcKeys
		}
		for _, k := range ks {
			if len(k) == 0 {
				b.WriteString("key -\n")
			} else {
				fmt.Fprintf(&b, "key %s\n", hex.EncodeToString(k))
			}
		}
		defined := map[string]bool{}
		for _, s := range scens {
			if !defined[s.pool] {
				defined[s.pool] = true
				fmt.Fprintf(&b, "pool %s\n", s.pool)
				for _, l := range s.conf {
					fmt.Fprintf(&b, "| %s\n", l)
				}
			}
			fmt.Fprintf(&b, "place %s %s %s", s.pool, s.mask(), s.place)
			if s.errText != "" {
				fmt.Fprintf(&b, " %s", s.errText)
			}
			b.WriteString("\n")
		}
		path := filepath.Join(dir, "placement-"+file+".txt")
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, path)
	}
	return paths
}

const placementHeader = `# Generated by: go test -tags placementgen -run TestGeneratePlacementVectors ./internal/hashkit/ -count=1
# Key placement observed from the real nutcracker process: do not edit.
#   key <hex, or - for the empty key>   the keys, in order; each SET through nutcracker
#   pool <id>                            a pool; the "| " lines after it are its YAML as given to
#                                        nutcracker, minus listen, redis_db and the ejection settings
#   place <id> <live> <servers> [error]  live: per server, 1 in the ring, 0 killed before nutcracker
#                                        started and ejected by it (preconnect, auto_eject_hosts,
#                                        server_failure_limit 1), as its stats confirmed;
#                                        servers: per key, the position (0-9a-z) of the one server
#                                        that held it after nutcracker answered +OK (memcached:
#                                        STORED), or - where nutcracker answered the error reply
#                                        that ends the line
`

// genVersions names the programs the vectors came from.
func genVersions(t *testing.T) string {
	t.Helper()
	first := func(name string, args ...string) string {
		out, err := exec.Command(testutil.Binary(t, name), args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		l, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return l
	}
	nc := strings.TrimPrefix(first("nutcracker", "-V"), "This is ")
	rs := strings.Fields(first("redis-server", "--version"))
	redis := "redis-server"
	if len(rs) >= 3 {
		redis += " " + strings.TrimPrefix(rs[2], "v=")
	}
	return fmt.Sprintf("%s, %s, %s", nc, redis, first("memcached", "-V"))
}

// genConns keeps one direct connection per backend address.
type genConns struct {
	t     *testing.T
	conns map[string]*genConn
}

func newGenConns(t *testing.T) *genConns {
	g := &genConns{t: t, conns: map[string]*genConn{}}
	t.Cleanup(func() {
		for _, c := range g.conns {
			c.c.Close()
		}
	})
	return g
}

func (g *genConns) get(addr string) *genConn {
	if c := g.conns[addr]; c != nil {
		return c
	}
	c := genDial(g.t, addr)
	g.conns[addr] = c
	return c
}

// drop forgets the connection to a backend that was stopped or killed.
func (g *genConns) drop(addr string) {
	if c := g.conns[addr]; c != nil {
		c.c.Close()
		delete(g.conns, addr)
	}
}

// genConn is a connection speaking RESP or the memcached text protocol.
type genConn struct {
	c net.Conn
	r *bufio.Reader
}

func genDial(t *testing.T, addr string) *genConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &genConn{c: c, r: bufio.NewReader(c)}
}

func (c *genConn) write(t *testing.T, b []byte) {
	t.Helper()
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.c.Write(b); err != nil {
		t.Fatalf("write to %s: %v", c.c.RemoteAddr(), err)
	}
}

// line reads one CRLF-terminated line, without the CRLF.
func (c *genConn) line(t *testing.T) string {
	t.Helper()
	_ = c.c.SetDeadline(time.Now().Add(10 * time.Second))
	l, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", c.c.RemoteAddr(), err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
}

// genReply is a RESP reply: kind is its type byte; str the text of a simple
// string, error or bulk string; arr the bulk strings of an array.
type genReply struct {
	kind byte
	str  string
	arr  []string
}

func (r genReply) wantOK(t *testing.T, where string) {
	t.Helper()
	if r.kind != '+' || r.str != "OK" {
		t.Fatalf("%s answered %c%q", where, r.kind, r.str)
	}
}

func (c *genConn) read(t *testing.T) genReply {
	t.Helper()
	l := c.line(t)
	if l == "" {
		t.Fatalf("%s: empty reply line", c.c.RemoteAddr())
	}
	r := genReply{kind: l[0], str: l[1:]}
	switch r.kind {
	case '+', '-', ':':
	case '$':
		r.str = c.bulk(t, l)
	case '*':
		n, err := strconv.Atoi(l[1:])
		if err != nil {
			t.Fatalf("%s: bad array header %q", c.c.RemoteAddr(), l)
		}
		for range n {
			r.arr = append(r.arr, c.bulk(t, c.line(t)))
		}
	default:
		t.Fatalf("%s: unexpected reply %q", c.c.RemoteAddr(), l)
	}
	return r
}

// bulk reads the body of the bulk string whose header is hdr.
func (c *genConn) bulk(t *testing.T, hdr string) string {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimPrefix(hdr, "$"))
	if err != nil || hdr[0] != '$' || n < 0 {
		t.Fatalf("%s: bad bulk header %q", c.c.RemoteAddr(), hdr)
	}
	b := make([]byte, n+2)
	if _, err := io.ReadFull(c.r, b); err != nil {
		t.Fatalf("read from %s: %v", c.c.RemoteAddr(), err)
	}
	return string(b[:n])
}

func genRedisCmd(t *testing.T, c *genConn, args ...string) genReply {
	t.Helper()
	var buf []byte
	bargs := make([][]byte, len(args))
	for i, a := range args {
		bargs[i] = []byte(a)
	}
	c.write(t, genEncode(buf, bargs...))
	return c.read(t)
}

// genEncode appends a RESP command.
func genEncode(buf []byte, args ...[]byte) []byte {
	buf = fmt.Appendf(buf, "*%d\r\n", len(args))
	for _, a := range args {
		buf = fmt.Appendf(buf, "$%d\r\n", len(a))
		buf = append(buf, a...)
		buf = append(buf, "\r\n"...)
	}
	return buf
}
