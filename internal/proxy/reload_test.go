package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/testutil"
)

// testGrace is the grace period of the reload tests' proxies.
const testGrace = 300 * time.Millisecond

// startReloadable starts a proxy from yaml, which names its ports itself
// (they must stay the same across reloads).
func startReloadable(t *testing.T, yaml string) *Proxy {
	t.Helper()
	return startProxyOpts(t, parseYAML(t, yaml), Options{Grace: testGrace})
}

func parseYAML(t *testing.T, yaml string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("reload.yml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

func mustReload(t *testing.T, px *Proxy, yaml string) {
	t.Helper()
	if err := px.Reload(parseYAML(t, yaml)); err != nil {
		t.Fatalf("reload: %v", err)
	}
}

// redisPoolYAML is a Redis pool named name on addr over servers.
func redisPoolYAML(name, addr, extra string, servers ...*testutil.Server) string {
	return name + ":\n  listen: " + addr + "\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n" + extra +
		"  servers:\n" + serverLines(servers...)
}

func loopback(t *testing.T) string { return fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)) }

// redisString runs one command on a server directly: its reply as text,
// "" for a null.
func redisString(t *testing.T, addr string, args ...string) string {
	t.Helper()
	if v := redisDo(t, addr, args...); v != nil {
		return fmt.Sprint(v)
	}
	return ""
}

// refused reports whether a connect to addr is refused.
func refused(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// totalConnections is a redis-server's total_connections_received, the
// connection asking included.
func totalConnections(t *testing.T, s *testutil.Server) int {
	t.Helper()
	info := redisString(t, s.Addr, "INFO", "stats")
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_connections_received:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatalf("no total_connections_received in %q", info)
	return 0
}

// TestReloadMovesListenAddress is twemproxy's test_reload scenario: the
// pool moves from port A to port B and is renamed. A refuses connects as
// soon as the reload is done, B serves the same keys, and a client still
// on A is served through the grace period, then closed.
func TestReloadMovesListenAddress(t *testing.T) {
	rs := startRedises(t, 2)
	a, b := loopback(t), loopback(t)
	px := startReloadable(t, redisPoolYAML("alpha", a, "", rs...))
	old := dialRaw(t, a)
	for i := range 20 {
		if got := old.roundTrip(cmd("SET", fmt.Sprint("k", i), fmt.Sprint("v", i))); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
	}
	mustReload(t, px, redisPoolYAML("beta", b, "", rs...))
	if !refused(a) {
		t.Errorf("the old address %s still accepts", a)
	}
	c := dialRaw(t, b)
	for i := range 20 {
		if got, want := c.roundTrip(cmd("GET", fmt.Sprint("k", i))), fmt.Sprintf("$%d\r\nv%d\r\n", len(fmt.Sprint("v", i)), i); got != want {
			t.Errorf("GET k%d on the new address: %q, want %q", i, got, want)
		}
	}
	// The client of the removed address: served during the grace period,
	// closed after it.
	if got := old.roundTrip(cmd("GET", "k1")); got != "$2\r\nv1\r\n" {
		t.Errorf("GET on the removed address within the grace period: %q", got)
	}
	start := time.Now()
	old.expectClosed()
	if d := time.Since(start); d > testGrace+2*time.Second {
		t.Errorf("closed %v after the grace period started", d)
	}
	if names := poolNames(px); names != "beta" {
		t.Errorf("pools %q, want beta", names)
	}
	if applied, failed := px.ReloadStats(); applied != 1 || failed != 0 {
		t.Errorf("reloads %d, failed %d; want 1, 0", applied, failed)
	}
}

func poolNames(px *Proxy) string {
	var names []string
	for _, p := range px.Pools() {
		names = append(names, p.Name())
	}
	return strings.Join(names, " ")
}

// TestReloadSameFileChangesNothing: reloading the same file closes no
// connection, client or server, fails no request, and keeps the servers,
// their counters and the clients' sessions.
func TestReloadSameFileChangesNothing(t *testing.T) {
	rs := startRedises(t, 2)
	addr := loopback(t)
	yaml := redisPoolYAML("alpha", addr, "", rs...)
	px := startReloadable(t, yaml)
	c := dialRaw(t, addr)
	for i := range 50 {
		c.roundTrip(cmd("SET", fmt.Sprint("k", i), "v"))
	}
	before := []int{totalConnections(t, rs[0]), totalConnections(t, rs[1])}
	servers := px.Pools()[0].servers
	requests := px.Pools()[0].collect().Servers[0].Requests + px.Pools()[0].collect().Servers[1].Requests

	stop := make(chan struct{})
	var failures atomic.Int64
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			failures.Add(1)
			return
		}
		defer conn.Close()
		w := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var req strings.Builder
			for j := range 8 {
				req.WriteString(cmd("INCR", fmt.Sprint("n", (i+j)%10)))
			}
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(conn, req.String()); err != nil {
				failures.Add(1)
				return
			}
			for range 8 {
				var b strings.Builder
				if err := readRESP(w.r, &b); err != nil || b.String()[0] != ':' {
					failures.Add(1)
					return
				}
				sent.Add(1)
			}
		}
	}()
	for range 5 {
		time.Sleep(50 * time.Millisecond)
		mustReload(t, px, yaml)
	}
	time.Sleep(50 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || sent.Load() == 0 {
		t.Fatalf("%d failures, %d replies", failures.Load(), sent.Load())
	}
	p := px.Pools()[0]
	for i, srv := range p.servers {
		if srv != servers[i] {
			t.Errorf("server %s was replaced", srv.name)
		}
	}
	// Each count is one more than the last: the connection asking.
	if after := []int{totalConnections(t, rs[0]), totalConnections(t, rs[1])}; after[0] != before[0]+1 || after[1] != before[1]+1 {
		t.Errorf("the servers accepted new connections: %v before, %v after (each counting the asker)", before, after)
	}
	if got := p.collect().Servers[0].Requests + p.collect().Servers[1].Requests; got < requests+sent.Load() {
		t.Errorf("requests %d, want at least %d (counters kept)", got, requests+sent.Load())
	}
	if got := c.roundTrip(cmd("GET", "k1")); got != "$1\r\nv\r\n" {
		t.Errorf("the idle client after the reloads: %q", got)
	}
	if !waitFor(5*time.Second, func() bool { return p.clients.Load() == 1 && retiredCount(px) == 0 }) {
		t.Errorf("client_connections %d in the new pool, %d pools retiring; want 1, 0", p.clients.Load(), retiredCount(px))
	}
}

func retiredCount(px *Proxy) int {
	px.mu.Lock()
	defer px.mu.Unlock()
	return len(px.retired)
}

// TestReloadAddThenReplacePools is twemproxy's second scenario: a second
// pool is added, then both are replaced by one pool on a third address
// with preconnect. The old addresses refuse, the new one serves, and the
// servers no pool uses any more are disconnected.
func TestReloadAddThenReplacePools(t *testing.T) {
	rs := startRedises(t, 3)
	a, b, c := loopback(t), loopback(t), loopback(t)
	px := startReloadable(t, redisPoolYAML("alpha", a, "", rs[0]))
	mustReload(t, px, redisPoolYAML("alpha", a, "", rs[0])+redisPoolYAML("beta", b, "", rs[1]))
	for _, addr := range []string{a, b} {
		if got := dialRaw(t, addr).roundTrip(cmd("SET", "x", addr)); got != "+OK\r\n" {
			t.Errorf("SET through %s: %q", addr, got)
		}
	}
	if got := redisString(t, rs[1].Addr, "GET", "x"); got != b {
		t.Errorf("beta's server holds %q, want %q", got, b)
	}
	mustReload(t, px, redisPoolYAML("gamma", c, "  preconnect: true\n", rs[2]))
	for _, addr := range []string{a, b} {
		if !refused(addr) {
			t.Errorf("%s still accepts", addr)
		}
	}
	if got := dialRaw(t, c).roundTrip(cmd("SET", "y", "1")); got != "+OK\r\n" {
		t.Errorf("SET through the new pool: %q", got)
	}
	// Nothing connects to the servers no pool has any more.
	for _, s := range rs[:2] {
		if !waitFor(5*time.Second, func() bool { return connectedClients(t, s) == 1 }) { // RedisDo's own
			t.Errorf("%s still has %d clients", s.Addr, connectedClients(t, s)-1)
		}
	}
	if names := poolNames(px); names != "gamma" {
		t.Errorf("pools %q", names)
	}
}

func connectedClients(t *testing.T, s *testutil.Server) int {
	info := redisString(t, s.Addr, "INFO", "clients")
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "connected_clients:"); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	return -1
}

// TestReloadBindFailureChangesNothing: a new address that cannot be bound
// refuses the whole reload; the running pools go on as they were.
func TestReloadBindFailureChangesNothing(t *testing.T) {
	rs := startRedises(t, 1)
	a := loopback(t)
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	px := startReloadable(t, redisPoolYAML("alpha", a, "", rs...))
	pools := px.Pools()
	err = px.Reload(parseYAML(t, redisPoolYAML("alpha", a, "  timeout: 100\n", rs...)+redisPoolYAML("beta", taken.Addr().String(), "", rs...)))
	if err == nil || !strings.Contains(err.Error(), `pool "beta"`) || !strings.Contains(err.Error(), taken.Addr().String()) {
		t.Fatalf("reload error %v; want one naming pool beta and %s", err, taken.Addr())
	}
	if got := px.Pools(); len(got) != 1 || got[0] != pools[0] || got[0].cfg.Timeout != 0 {
		t.Errorf("pools changed: %v", poolNames(px))
	}
	if got := dialRaw(t, a).roundTrip(cmd("PING")); got != "+PONG\r\n" {
		t.Errorf("PING: %q", got)
	}
	if applied, failed := px.ReloadStats(); applied != 0 || failed != 1 {
		t.Errorf("reloads %d, failed %d; want 0, 1", applied, failed)
	}
	if retiredCount(px) != 0 {
		t.Error("a pool was retired")
	}
}

// TestReloadPlacementAsFreshStart: after a reload, keys go where a fresh
// start with the new file puts them, with a server that is ejected now
// still out of the ring.
func TestReloadPlacementAsFreshStart(t *testing.T) {
	addr := loopback(t)
	conf := func(extra string, servers ...string) string {
		y := "alpha:\n  listen: " + addr + "\n  redis: true\n  hash: murmur\n  distribution: ketama\n  auto_eject_hosts: true\n  server_failure_limit: 1\n" + extra + "  servers:\n"
		for _, s := range servers {
			y += "   - " + s + "\n"
		}
		return y
	}
	first := conf("", "127.0.0.1:7001:1 a", "127.0.0.1:7002:1 b", "127.0.0.1:7003:1 c")
	second := conf("  hash_tag: \"{}\"\n", "127.0.0.1:7001:1 a", "127.0.0.1:7003:1 c", "127.0.0.1:7004:2 d", "127.0.0.1:7005:1 e")
	px := startReloadable(t, first)
	// Eject c, as server_failure_limit failures would.
	c := px.Pools()[0].serverNamed("c")
	c.mu.Lock()
	c.ejected = true
	c.mu.Unlock()
	px.Pools()[0].rebuildRing()

	mustReload(t, px, second)
	fresh, err := New(parseYAML(t, second), Options{})
	if err != nil {
		t.Fatal(err)
	}
	fp := fresh.Pools()[0]
	fp.serverNamed("c").ejected = true
	fp.rebuildRing()
	p := px.Pools()[0]
	if p.serverNamed("c") != c || p.serverNamed("a") == nil {
		t.Fatal("the kept servers were not kept")
	}
	for i := range 5000 {
		k := []byte(fmt.Sprintf("user:{%d}:%d", i%97, i))
		if got, want := p.pick(k).name, fp.pick(k).name; got != want {
			t.Fatalf("key %s on %s after the reload, %s after a fresh start", k, got, want)
		}
	}
	// c stays out until its probe answers (nothing listens on 7003).
	if p.pick([]byte("anything")) == c || !c.isEjected() {
		t.Error("the ejected server is back in the ring")
	}
}

// TestReloadTransactionFinishesOnOldConfig: what a client sent before the
// reload runs under the configuration it was read under — a MULTI queued
// across the reload executes on the old database — and its next requests
// use the new one.
func TestReloadTransactionFinishesOnOldConfig(t *testing.T) {
	rs := startRedises(t, 1)
	addr := loopback(t)
	px := startReloadable(t, redisPoolYAML("alpha", addr, "", rs...))
	c := dialRaw(t, addr)
	c.roundTrip(cmd("MULTI"))
	if got := c.roundTrip(cmd("SET", "tx", "old")); got != "+QUEUED\r\n" {
		t.Fatalf("SET in MULTI: %q", got)
	}
	mustReload(t, px, redisPoolYAML("alpha", addr, "  redis_db: 3\n", rs...))
	if got := c.roundTrip(cmd("EXEC")); got != "*1\r\n+OK\r\n" {
		t.Fatalf("EXEC: %q", got)
	}
	if got := redisString(t, rs[0].Addr, "GET", "tx"); got != "old" {
		t.Errorf("db 0 holds %q, want the transaction's write", got)
	}
	if got := c.roundTrip(cmd("SET", "after", "new")); got != "+OK\r\n" {
		t.Fatalf("SET after EXEC: %q", got)
	}
	if got := redisString(t, rs[0].Addr, "GET", "after"); got != "" {
		t.Errorf("db 0 holds the write made after the reload: %q", got)
	}
	if got := c.roundTrip(cmd("GET", "after")); got != "$3\r\nnew\r\n" {
		t.Errorf("GET after: %q", got)
	}
	// The old pool's server (database 0) is let go once nobody uses it.
	if !waitFor(5*time.Second, func() bool { return retiredCount(px) == 0 }) {
		t.Error("the replaced pool never closed")
	}
}

// TestReloadMemcached: a Memcached pool reloaded with one more server
// keeps serving its clients and keeps the server that stays.
func TestReloadMemcached(t *testing.T) {
	m1, m2 := testutil.StartMemcached(t), testutil.StartMemcached(t)
	addr := loopback(t)
	conf := func(servers ...*testutil.Server) string {
		return "mc:\n  listen: " + addr + "\n  hash: fnv1a_64\n  distribution: ketama\n  servers:\n" + serverLines(servers...)
	}
	px := startReloadable(t, conf(m1))
	c := dialRaw(t, addr)
	c.send("set k 0 0 1\r\nv\r\n")
	if got := c.readLine(); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	kept := px.Pools()[0].servers[0]
	mustReload(t, px, conf(m1, m2))
	if px.Pools()[0].serverNamed(kept.name) != kept {
		t.Error("the server that stays was replaced")
	}
	c.send("version\r\n")
	if got := c.readLine(); !strings.HasPrefix(got, "VERSION ") {
		t.Errorf("version after the reload: %q", got)
	}
	if !waitFor(5*time.Second, func() bool { return px.Pools()[0].clients.Load() == 1 }) {
		t.Error("the client did not move to the new pool")
	}
}

// TestReloadSentinelKeepsWatcher: a Sentinel pool whose Sentinel settings
// are unchanged keeps its watcher (groups keep following their masters,
// no new discovery); a changed setting starts a new one.
func TestReloadSentinelKeepsWatcher(t *testing.T) {
	tp := testutil.StartSentinelTopology(t, []string{"g1"}, 1)
	addr := loopback(t)
	conf := func(heartbeat int) string {
		return fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  timeout: 500\n  sentinel_heartbeat: %d\n  sentinels:\n   - %s s0\n  groups:\n   - g1\n",
			addr, heartbeat, tp.Sentinels[0].Addr)
	}
	px := startReloadable(t, conf(200))
	if !waitFor(10*time.Second, func() bool { return groupAddr(px, "g1") == tp.MasterAddr("g1") }) {
		t.Fatal("master never found")
	}
	c := dialRaw(t, addr)
	if got := c.roundTrip(cmd("SET", "k", "v")); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	w := px.Pools()[0].watcher
	mustReload(t, px, conf(200))
	if px.Pools()[0].watcher != w || groupAddr(px, "g1") != tp.MasterAddr("g1") {
		t.Error("an unchanged Sentinel pool did not keep its watcher and master")
	}
	if got := c.roundTrip(cmd("GET", "k")); got != "$1\r\nv\r\n" {
		t.Errorf("GET after the reload: %q", got)
	}
	mustReload(t, px, conf(300))
	if px.Pools()[0].watcher == w {
		t.Error("a changed sentinel_heartbeat kept the old watcher")
	}
	if got := c.roundTrip(cmd("GET", "k")); got != "$1\r\nv\r\n" {
		t.Errorf("GET after the second reload: %q", got)
	}
}

// TestReloadUnderLoad: 50 clients pipeline mixed requests while the
// configuration is reloaded every 200 ms, alternating between two files
// that differ in one pool and keep another. Every request gets exactly one
// reply, no connection of the kept pool is closed (clients or servers),
// and goroutines and descriptors return to their baseline.
func TestReloadUnderLoad(t *testing.T) {
	duration := 10 * time.Second
	if testing.Short() {
		duration = 3 * time.Second
	}
	rs := startRedises(t, 4)
	kept, changing := loopback(t), loopback(t)
	fileA := redisPoolYAML("kept", kept, "", rs[0], rs[1]) + redisPoolYAML("changing", changing, "", rs[2])
	fileB := redisPoolYAML("kept", kept, "", rs[0], rs[1]) + redisPoolYAML("changing", changing, "  timeout: 2000\n", rs[2], rs[3])

	baseGoroutines := runtime.NumGoroutine()
	baseFDs := countFDs(t)
	px := startReloadable(t, fileA)
	// Warm the kept pool's connections up (a key on each server), then
	// count them.
	warm := dialRaw(t, kept)
	for _, srv := range px.Pools()[0].servers {
		for i := 0; srv.stats.connects.Load() == 0 && i < 10_000; i++ {
			if k := fmt.Sprint("w", i); px.Pools()[0].pick([]byte(k)) == srv {
				warm.roundTrip(cmd("SET", k, "1"))
			}
		}
	}
	warm.conn.Close()
	keptConnects := func() uint64 {
		var n uint64
		for _, s := range px.Pools()[0].servers {
			n += s.stats.connects.Load()
		}
		return n
	}
	connects := keptConnects()

	const clients = 50
	const depth = 16
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, answered, failed atomic.Int64
	var firstErr atomic.Value
	for i := range clients {
		addr := kept
		if i%2 == 1 {
			addr = changing
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			for round := 0; round < 1_000_000; round++ {
				select {
				case <-stop:
					return
				default:
				}
				var req strings.Builder
				for j := range depth {
					k := fmt.Sprintf("c%d:%d", i, (round*depth+j)%64)
					switch j % 4 {
					case 0:
						req.WriteString(cmd("SET", k, "value"))
					case 1:
						req.WriteString(cmd("GET", k))
					case 2:
						req.WriteString(cmd("INCR", "n:"+k))
					default:
						req.WriteString(cmd("MGET", k, k+"x", k+"y"))
					}
				}
				_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := io.WriteString(conn, req.String()); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, "write: "+err.Error())
					return
				}
				sent.Add(depth)
				for j := range depth {
					var b strings.Builder
					if err := readRESP(r, &b); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("client %d on %s: read: %v", i, addr, err))
						return
					}
					answered.Add(1)
					if reply := b.String(); reply[0] == '-' || (j%4 == 3) != (reply[0] == '*') {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("client %d on %s: reply %q to request %d", i, addr, reply, j))
						return
					}
				}
			}
		}()
	}
	deadline := time.Now().Add(duration)
	reloads := 0
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		file := fileA
		if reloads%2 == 0 {
			file = fileB
		}
		mustReload(t, px, file)
		reloads++
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || sent.Load() != answered.Load() || answered.Load() == 0 {
		t.Fatalf("%d failures (first: %v), %d requests sent, %d answered", failed.Load(), firstErr.Load(), sent.Load(), answered.Load())
	}
	t.Logf("%d reloads, %d requests answered", reloads, answered.Load())
	if got := keptConnects(); got != connects {
		var why []string
		for _, srv := range px.Pools()[0].servers {
			why = append(why, fmt.Sprintf("%s: eof %d, err %d, timed out %d", srv.name,
				srv.stats.eof.Load(), srv.stats.err.Load(), srv.stats.timedOut.Load()))
		}
		t.Errorf("the kept pool's servers were dialled %d times during the reloads (%s)", got-connects, strings.Join(why, "; "))
	}
	if !waitFor(10*time.Second, func() bool { return retiredCount(px) == 0 }) {
		t.Errorf("%d replaced pools never closed", retiredCount(px))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := px.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !waitFor(10*time.Second, func() bool {
		return runtime.NumGoroutine() <= baseGoroutines+2 && countFDs(t) <= baseFDs
	}) {
		t.Errorf("goroutines %d (baseline %d), descriptors %d (baseline %d)", runtime.NumGoroutine(), baseGoroutines, countFDs(t), baseFDs)
	}
}

// countFDs counts this process's open descriptors.
func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

// TestReloadUnixSocket: a unix socket path that stays keeps its socket
// (the same file, never unlinked), also when its pool is renamed; a path
// that goes is removed and refuses, as a fresh start without it would
// leave it.
func TestReloadUnixSocket(t *testing.T) {
	rs := startRedises(t, 1)
	dir := t.TempDir()
	p1, p2 := dir+"/one.sock", dir+"/two.sock"
	px := startReloadable(t, redisPoolYAML("alpha", p1, "", rs...))
	before, err := os.Stat(p1)
	if err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, p1)
	// The pool on p1 is renamed and reconfigured: the socket stays.
	mustReload(t, px, redisPoolYAML("renamed", p1, "  timeout: 1000\n", rs...)+redisPoolYAML("beta", p2, "", rs...))
	if after, err := os.Stat(p1); err != nil || !os.SameFile(before, after) {
		t.Errorf("the kept socket %s was replaced: %v", p1, err)
	}
	if names := poolNames(px); names != "renamed beta" {
		t.Errorf("pools %q", names)
	}
	if got := c.roundTrip(cmd("PING")); got != "+PONG\r\n" {
		t.Errorf("PING on the kept socket: %q", got)
	}
	if got := dialRaw(t, p2).roundTrip(cmd("PING")); got != "+PONG\r\n" {
		t.Errorf("PING on the new socket: %q", got)
	}
	mustReload(t, px, redisPoolYAML("beta", p2, "", rs...))
	if _, err := os.Stat(p1); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dropped socket's path is still there: %v", err)
	}
	if _, err := net.Dial("unix", p1); err == nil {
		t.Error("the dropped socket still accepts")
	}
}

// TestReloadSubscriberAndBlockedClient: a subscriber and a client blocked
// in BLPOP stay on the old pool through a reload, get their message and
// their element, and move to the new pool once out of it.
func TestReloadSubscriberAndBlockedClient(t *testing.T) {
	rs := startRedises(t, 2)
	addr := loopback(t)
	yaml := redisPoolYAML("alpha", addr, "", rs...)
	px := startReloadable(t, yaml)
	sub := dialRaw(t, addr)
	if got := sub.roundTrip(cmd("SUBSCRIBE", "news")); got != "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n" {
		t.Fatalf("SUBSCRIBE: %q", got)
	}
	blocked := dialRaw(t, addr)
	blocked.send(cmd("BLPOP", "queue", "10"))
	waitBlocked(t, 1, rs...)

	mustReload(t, px, redisPoolYAML("alpha", addr, "  timeout: 5000\n", rs...))
	np := px.Pools()[0]
	pub := dialRaw(t, addr)
	if got := pub.roundTrip(cmd("PUBLISH", "news", "hello")); got != ":1\r\n" {
		t.Errorf("PUBLISH after the reload: %q", got)
	}
	if got := sub.readReply(); got != "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n" {
		t.Errorf("the subscriber got %q", got)
	}
	if got := pub.roundTrip(cmd("RPUSH", "queue", "job")); got != ":1\r\n" {
		t.Errorf("RPUSH: %q", got)
	}
	if got := blocked.readReply(); got != "*2\r\n$5\r\nqueue\r\n$3\r\njob\r\n" {
		t.Errorf("BLPOP: %q", got)
	}
	if got := sub.roundTrip(cmd("UNSUBSCRIBE")); !strings.HasPrefix(got, "*3\r\n$11\r\nunsubscribe\r\n") {
		t.Errorf("UNSUBSCRIBE: %q", got)
	}
	for _, c := range []*rawClient{sub, blocked} {
		if got := c.roundTrip(cmd("PING")); got != "+PONG\r\n" {
			t.Errorf("PING: %q", got)
		}
	}
	if !waitFor(5*time.Second, func() bool { return np.clients.Load() == 3 && retiredCount(px) == 0 }) {
		t.Errorf("clients in the new pool %d, want 3; %d pools retiring", np.clients.Load(), retiredCount(px))
	}
}
