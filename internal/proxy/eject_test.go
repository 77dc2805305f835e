package proxy

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// keyOn returns a key the first pool of px places on the server at addr.
func keyOn(t *testing.T, px *Proxy, addr string) string {
	t.Helper()
	for i := range 10000 {
		k := fmt.Sprintf("key:%d", i)
		if srv := px.Pools()[0].pick([]byte(k)); srv != nil && srv.cfg.Address.String() == addr {
			return k
		}
	}
	t.Fatalf("no key maps to %s", addr)
	return ""
}

// waitIdle waits until every connection to srv has noticed its server is
// gone and, in an ejecting pool, that EOF has been counted as the first
// failure (fail counts it just after marking the connection idle).
func waitIdle(t *testing.T, srv *server) {
	t.Helper()
	// Only a server that had a connection has an EOF to count (the
	// connection may already be idle by now, so count connections made).
	open := srv.stats.connects.Load() > 0 && srv.pool().ejects()
	if !waitFor(2*time.Second, func() bool {
		if open && srv.failures.Load() == 0 && !srv.isEjected() {
			return false
		}
		for _, b := range srv.conns {
			b.mu.Lock()
			st := b.state
			b.mu.Unlock()
			if st != stateIdle {
				return false
			}
		}
		return true
	}) {
		t.Fatal("server connections still open")
	}
}

// waitFor polls cond every 10 ms until it holds or d has passed.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEjectionAndProbeRejoin(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "  auto_eject_hosts: true\n  server_failure_limit: 2\n  server_retry_timeout: 300\n  timeout: 400\n", servers...)
	pool := px.Pools()[0]
	victim := servers[1]
	key := keyOn(t, px, victim.Addr)
	c := dialRaw(t, addr)
	if got := c.roundTrip(cmd("SET", key, "before")); got != "+OK\r\n" {
		t.Fatal(got)
	}
	victim.Kill()
	// The connection's EOF is the first failure.
	waitIdle(t, pool.servers[1])

	// The second consecutive failure (a refused dial) ejects the server;
	// the request that met it gets an error, the next one goes to the
	// rebuilt ring.
	var errs int
	for i := 0; i < 5 && backendOf(px, key) == victim.Addr; i++ {
		got := c.roundTrip(cmd("SET", key, "during"))
		if !strings.HasPrefix(got, "-ERR ") {
			t.Fatalf("SET to a dead server: %q", got)
		}
		errs++
	}
	if backendOf(px, key) == victim.Addr {
		t.Fatal("server not ejected after 5 failures")
	}
	if errs != 1 {
		t.Errorf("%d failed requests before the ejection, want 1 (EOF + refused = server_failure_limit)", errs)
	}
	if got := pool.stats.serverEjects.Load(); got != 1 {
		t.Errorf("server_ejects = %d, want 1", got)
	}
	srv := pool.servers[1]
	if at := srv.stats.ejectedAt.Load(); at == 0 || time.Since(time.UnixMicro(at)) > 10*time.Second {
		t.Errorf("server_ejected_at = %d", at)
	}
	if got := c.roundTrip(cmd("SET", key, "elsewhere")); got != "+OK\r\n" {
		t.Fatalf("SET after the ejection: %q", got)
	}

	// While the server stays down, probes fail and it stays out, without
	// any client request being sent to it.
	time.Sleep(800 * time.Millisecond)
	if backendOf(px, key) == victim.Addr {
		t.Fatal("a dead server rejoined")
	}
	if got := pool.stats.serverEjects.Load(); got != 1 {
		t.Errorf("server_ejects = %d after failed probes, want 1", got)
	}

	victim.Restart(t)
	if !waitFor(3*time.Second, func() bool { return backendOf(px, key) == victim.Addr }) {
		t.Fatal("the restarted server did not rejoin")
	}
	if got := c.roundTrip(cmd("SET", key, "back")); got != "+OK\r\n" {
		t.Fatalf("SET after the rejoin: %q", got)
	}
	direct := dialRaw(t, victim.Addr)
	if got := direct.roundTrip(cmd("GET", key)); got != "$4\r\nback\r\n" {
		t.Errorf("the rejoined server holds %q", got)
	}
}

func TestNoEjectionWithoutAutoEject(t *testing.T) {
	servers := startRedises(t, 2)
	px, addr := redisPool(t, "  server_failure_limit: 1\n  server_retry_timeout: 100\n", servers...)
	key := keyOn(t, px, servers[0].Addr)
	ringBefore := px.Pools()[0].ring.Load()
	servers[0].Kill()
	c := dialRaw(t, addr)
	for range 5 {
		if got := c.roundTrip(cmd("GET", key)); !strings.HasPrefix(got, "-ERR ") {
			t.Fatalf("GET from a dead server: %q", got)
		}
	}
	if px.Pools()[0].ring.Load() != ringBefore || backendOf(px, key) != servers[0].Addr {
		t.Error("the ring changed with auto_eject_hosts false")
	}
	if got := px.Pools()[0].stats.serverEjects.Load(); got != 0 {
		t.Errorf("server_ejects = %d", got)
	}
}

// TestReplyResetsFailureCount: failures must be consecutive. Two failures
// (the EOF of the killed server, a refused dial), a reply, two more: under
// a limit of 3 the server stays in.
func TestReplyResetsFailureCount(t *testing.T) {
	servers := startRedises(t, 2)
	px, addr := redisPool(t, "  auto_eject_hosts: true\n  server_failure_limit: 3\n  server_retry_timeout: 60000\n", servers...)
	victim := servers[0]
	key := keyOn(t, px, victim.Addr)
	c := dialRaw(t, addr)
	failTwice := func() {
		victim.Kill()
		waitIdle(t, px.Pools()[0].servers[0])
		if got := c.roundTrip(cmd("GET", key)); !strings.HasPrefix(got, "-ERR ") {
			t.Fatalf("GET from a dead server: %q", got)
		}
		victim.Restart(t)
	}
	failTwice()
	if got := c.roundTrip(cmd("GET", key)); got != "$-1\r\n" {
		t.Fatalf("GET after restart: %q", got)
	}
	failTwice()
	if backendOf(px, key) != victim.Addr {
		t.Error("ejected although a reply came between the failures")
	}
}

// TestEjectedPlacementMatchesNutcracker: with one server ejected, keys move
// to the same servers under shardproxy as under nutcracker, for every hash
// with ketama and modula.
func TestEjectedPlacementMatchesNutcracker(t *testing.T) {
	servers := startRedises(t, 4, "databases 64")
	victim := servers[1]
	var ncConf, spConf strings.Builder
	type poolRef struct {
		name       string
		ncDB, spDB int
	}
	var pools []poolRef
	for _, h := range []string{"fnv1a_64", "murmur", "md5", "crc32a", "hsieh"} {
		for _, d := range []string{"ketama", "modula"} {
			i := len(pools)
			pr := poolRef{h + "/" + d, 1 + i, 31 + i}
			pools = append(pools, pr)
			body := fmt.Sprintf("  redis: true\n  hash: %s\n  distribution: %s\n  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 600000\n  servers:\n   - %s:1\n   - %s:2 named\n   - %s:1\n   - %s:3\n",
				h, d, servers[0].Addr, victim.Addr, servers[2].Addr, servers[3].Addr)
			fmt.Fprintf(&ncConf, "p%d:\n  listen: 127.0.0.1:%d\n  redis_db: %d\n%s", i, testutil.FreePort(t), pr.ncDB, body)
			fmt.Fprintf(&spConf, "p%d:\n  listen: 127.0.0.1:%d\n  redis_db: %d\n%s", i, testutil.FreePort(t), pr.spDB, body)
		}
	}
	testutil.StartNutcracker(t, ncConf.String())
	px, _ := startProxy(t, spConf.String())
	ncAddrs := listenAddrsOf(ncConf.String())
	victim.Kill()

	const nkeys = 2000
	var req, want strings.Builder
	for i := range nkeys {
		req.WriteString(cmd("SET", fmt.Sprintf("key:%d", i), "1"))
		want.WriteString("+OK\r\n")
	}
	for i, pr := range pools {
		// Keys of the dead server (placement is the same in both
		// proxies): requests for them fail and eject it (limit 1), and
		// once they are all served the ring has been rebuilt. Keys that
		// merely might be on it are not enough: with fnv1a_64, 40 keys
		// "warm:N" can all land on one server.
		var warm, warmSet strings.Builder
		for k, n := 0, 0; n < 40; k++ {
			key := fmt.Sprintf("warm:%d", k)
			if px.Pools()[i].pick([]byte(key)).name == "named" {
				warm.WriteString(cmd("GET", key))
				warmSet.WriteString(cmd("SET", key, "1"))
				n++
			}
		}
		for _, addr := range []string{ncAddrs[i], px.Pools()[i].Addr().String()} {
			c := dialRaw(t, addr)
			c.send(warm.String())
			// At least the first fails (later ones may be dispatched after
			// the ejection and served elsewhere).
			refused := 0
			for range 40 {
				if strings.HasPrefix(c.readReply(), "-ERR ") {
					refused++
				}
			}
			if refused == 0 {
				t.Fatalf("%s via %s: no GET of a key on the dead server failed", pr.name, addr)
			}
			if !waitFor(5*time.Second, func() bool {
				c.send(warmSet.String())
				ok := true
				for range 40 {
					ok = c.readReply() == "+OK\r\n" && ok
				}
				return ok
			}) {
				t.Fatalf("%s via %s: the dead server was not ejected", pr.name, addr)
			}
			c.send(req.String())
			var got strings.Builder
			for range nkeys {
				got.WriteString(c.readReply())
			}
			if got.String() != want.String() {
				bad := strings.ReplaceAll(got.String(), "+OK\r\n", "")
				t.Fatalf("%s via %s (nutcracker %v): SET replies not all +OK after the ejection: %.200q",
					pr.name, addr, addr == ncAddrs[i], bad)
			}
		}
	}
	live := []*testutil.Server{servers[0], servers[2], servers[3]}
	for _, pr := range pools {
		ncPlace := placement(t, live, pr.ncDB)
		spPlace := placement(t, live, pr.spDB)
		bad := 0
		for k, where := range ncPlace {
			if strings.HasPrefix(k, "key:") && spPlace[k] != where {
				bad++
			}
		}
		if len(spPlace) != len(ncPlace) || bad > 0 {
			t.Errorf("%s: %d of %d keys placed differently (%d vs %d keys)", pr.name, bad, nkeys, len(spPlace), len(ncPlace))
		}
	}
}

// TestEjectionMemcached: the same cycle on a Memcached pool, whose probe
// is "version", with a server that hangs (SIGSTOP) instead of dying: the
// timeouts are the failures.
func TestEjectionMemcached(t *testing.T) {
	servers := startMemcacheds(t, 3)
	px, addr := memcachePool(t, "  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 300\n  timeout: 200\n", servers...)
	pool := px.Pools()[0]
	victim := servers[2]
	key := keyOn(t, px, victim.Addr)
	c := dialRaw(t, addr)
	if got := c.roundTrip("set " + key + " 0 0 1\r\nx\r\n"); got != "STORED\r\n" {
		t.Fatal(got)
	}
	victim.Pause()
	resumed := false
	defer func() {
		if !resumed {
			victim.Resume()
		}
	}()
	if got := c.roundTrip("get " + key + "\r\n"); got != "SERVER_ERROR Connection timed out\r\n" {
		t.Fatalf("get from a stopped server: %q", got)
	}
	if backendOf(px, key) == victim.Addr {
		t.Fatal("a timed-out server was not ejected (server_failure_limit 1)")
	}
	if got := pool.servers[2].stats.timedOut.Load(); got != 1 {
		t.Errorf("server_timedout = %d, want 1", got)
	}
	if got := c.roundTrip("set " + key + " 0 0 1\r\ny\r\n"); got != "STORED\r\n" {
		t.Fatalf("set after the ejection: %q", got)
	}
	// A stopped server accepts the probe's connection but never answers:
	// the probe times out and the server stays out.
	time.Sleep(700 * time.Millisecond)
	if backendOf(px, key) == victim.Addr {
		t.Fatal("a stopped server rejoined")
	}
	victim.Resume()
	resumed = true
	if !waitFor(3*time.Second, func() bool { return backendOf(px, key) == victim.Addr }) {
		t.Fatal("the resumed server did not rejoin")
	}
	c.send("get " + key + "\r\n")
	if got := c.readUntil("END\r\n"); got != "VALUE "+key+" 0 1\r\nx\r\nEND\r\n" {
		t.Errorf("get after the rejoin: %q", got)
	}
}

// TestServerIdleTimeoutReconnects: a server that closes idle connections
// (Redis "timeout", memcached idle_timeout) costs the next request nothing.
// The FIN of an idle connection arrives alone and wakes its reader, which
// marks the connection idle, so the request dials afresh instead of being
// written into a closed socket.
func TestServerIdleTimeoutReconnects(t *testing.T) {
	t.Parallel()
	type protocol struct {
		name     string
		start    func(t *testing.T) (*Proxy, string)
		set, get func(val string) string
		reply    func(val string) string // GET's reply
		stored   string                  // SET's reply
		// roundTrip sends a request and reads its whole reply.
		roundTrip func(c *rawClient, req string) string
	}
	for _, p := range []protocol{
		{
			name: "redis",
			start: func(t *testing.T) (*Proxy, string) {
				return redisPool(t, "", startRedises(t, 1, "timeout 1")...)
			},
			set:       func(v string) string { return cmd("SET", "k", v) },
			get:       func(string) string { return cmd("GET", "k") },
			reply:     func(v string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(v), v) },
			stored:    "+OK\r\n",
			roundTrip: (*rawClient).roundTrip,
		},
		{
			name: "memcache",
			start: func(t *testing.T) (*Proxy, string) {
				return memcachePool(t, "", testutil.StartMemcached(t, "-o", "idle_timeout=1"))
			},
			set:    func(v string) string { return fmt.Sprintf("set k 0 0 %d\r\n%s\r\n", len(v), v) },
			get:    func(string) string { return "get k\r\n" },
			reply:  func(v string) string { return fmt.Sprintf("VALUE k 0 %d\r\n%s\r\nEND\r\n", len(v), v) },
			stored: "STORED\r\n",
			roundTrip: func(c *rawClient, req string) string {
				c.send(req)
				if strings.HasPrefix(req, "get ") {
					return c.readUntil("END\r\n")
				}
				return c.readLine()
			},
		},
	} {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			px, addr := p.start(t)
			srv := px.Pools()[0].servers[0]
			c := dialRaw(t, addr)
			for round := range 2 {
				val := fmt.Sprint("v", round)
				if got := p.roundTrip(c, p.set(val)); got != p.stored {
					t.Fatalf("round %d: set: %q", round, got)
				}
				// Both servers close a connection idle for over 1 s,
				// checked about once a second.
				if !waitFor(5*time.Second, func() bool { return srv.stats.eof.Load() > uint64(round) }) {
					t.Fatalf("round %d: the server did not close the idle connection within 5 s", round)
				}
				waitIdle(t, srv)
				if got, want := p.roundTrip(c, p.get(val)), p.reply(val); got != want {
					t.Fatalf("round %d: get after the server closed the idle connection: %q, want %q", round, got, want)
				}
			}
		})
	}
}
