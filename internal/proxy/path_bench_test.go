package proxy

// Benchmarks of the in-process Redis data path: client bytes in over
// loopback, through the proxy to real redis-servers and back. The client is
// a raw TCP connection that writes pre-encoded requests and reads replies
// with a minimal RESP scanner into a fixed buffer: it allocates nothing
// per request (TestSteadyStateAllocs checks that against a redis-server
// directly), so the process's malloc count over a run is the proxy's. Every
// reply is compared with the one expected, so a benchmark that runs is also
// a correct one.
//
//	go test -run X -bench BenchmarkRedis -benchmem ./internal/proxy/
//
// proxy-allocs/req is runtime.MemStats.Mallocs over the measured loop
// divided by the requests sent (for MGET10, one MGET is one request; for
// the ×16 pipeline, each GET is one); proxy-B/req is TotalAlloc likewise.
// ns/req divides ns/op by the requests of one op. The parallel variants
// also count the goroutines RunParallel starts (about 0.001 per request, as
// BenchmarkRedisDirectGETParallel shows). The BenchmarkRedisDirect*
// variants run the same client against one redis-server without the proxy:
// the baseline latency, and proof that the client allocates nothing.
//
// To find what allocates:
//
//	go test -run X -bench 'BenchmarkRedisGET$' -memprofile mem.out -memprofilerate 1 ./internal/proxy/
//	go tool pprof -sample_index=alloc_objects -top mem.out

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// benchValueSize is the size of every value the benchmarks store.
const benchValueSize = 32

// pathFixture is a proxy over three redis-servers (or, direct, one
// redis-server and no proxy).
type pathFixture struct {
	px      *Proxy
	addr    string
	servers []*testutil.Server
}

func newPathFixture(tb testing.TB) *pathFixture {
	tb.Helper()
	servers := startRedises(tb, 3)
	px, addr := redisPool(tb, "", servers...)
	return &pathFixture{px: px, addr: addr, servers: servers}
}

// newDirectFixture is one redis-server and no proxy: the baseline that
// shows what the proxy adds, and that the client allocates nothing.
func newDirectFixture(tb testing.TB) *pathFixture {
	tb.Helper()
	srv := testutil.StartRedis(tb)
	return &pathFixture{addr: srv.Addr, servers: []*testutil.Server{srv}}
}

// benchValue is the value stored under key: exactly benchValueSize bytes,
// different for every key, so that a reply in the wrong place is caught.
func benchValue(key string) string {
	v := "value-of-" + key + strings.Repeat(".", benchValueSize)
	return v[:benchValueSize]
}

// bulkReply encodes s as a RESP bulk string reply.
func bulkReply(s string) []byte { return []byte(fmt.Sprintf("$%d\r\n%s\r\n", len(s), s)) }

// spreadKeys returns n keys "prefix:i" spread evenly over the servers of
// the fixture's pool. (Keys that differ only in their last digit tend to
// land on the same server with fnv1a_64 and ketama, so consecutive ones
// would not do.)
func (f *pathFixture) spreadKeys(tb testing.TB, prefix string, n int) []string {
	tb.Helper()
	perServer := (n + len(f.servers) - 1) / len(f.servers)
	on := map[string]int{}
	var keys []string
	for i := 0; len(keys) < n; i++ {
		if i == 100000 {
			tb.Fatalf("no %d keys %s:* spread over %d servers", n, prefix, len(f.servers))
		}
		k := fmt.Sprintf("%s:%d", prefix, i)
		srv := f.servers[0].Addr
		if f.px != nil {
			srv = backendOf(f.px, k)
		}
		if on[srv] < perServer {
			on[srv]++
			keys = append(keys, k)
		}
	}
	return keys
}

// preload stores benchValue(key) under every key, through the proxy.
func (f *pathFixture) preload(tb testing.TB, keys ...string) {
	tb.Helper()
	c := dialBench(tb, f.addr, time.Minute)
	for _, k := range keys {
		if err := c.do([]byte(cmd("SET", k, benchValue(k))), okReply); err != nil {
			tb.Fatalf("preload %s: %v", k, err)
		}
	}
}

var okReply = []byte("+OK\r\n")

// benchClient is an allocation-free RESP client on one TCP connection.
type benchClient struct {
	conn       net.Conn
	buf        []byte // replies read and not yet consumed: buf[start:end]
	start, end int
}

// dialBench connects to addr. The deadline covers the whole life of the
// connection: set once, so that a stuck proxy fails the run instead of
// hanging it, without a per-request call.
func dialBench(tb testing.TB, addr string, life time.Duration) *benchClient {
	tb.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close() })
	if err := conn.SetDeadline(time.Now().Add(life)); err != nil {
		tb.Fatal(err)
	}
	return &benchClient{conn: conn, buf: make([]byte, 64<<10)}
}

// do writes req and checks that the next replies are want, in order.
func (c *benchClient) do(req []byte, want ...[]byte) error {
	if _, err := c.conn.Write(req); err != nil {
		return err
	}
	for i, w := range want {
		got, err := c.next()
		if err != nil {
			return fmt.Errorf("reply %d: %w", i, err)
		}
		if !bytes.Equal(got, w) {
			return fmt.Errorf("reply %d: got %q, want %q", i, got, w)
		}
	}
	return nil
}

// next returns the next complete reply, a slice of c.buf valid until the
// next call.
func (c *benchClient) next() ([]byte, error) {
	for {
		if n, ok := scanRESP(c.buf[c.start:c.end]); ok {
			reply := c.buf[c.start : c.start+n]
			c.start += n
			return reply, nil
		}
		if c.start > 0 {
			c.end = copy(c.buf, c.buf[c.start:c.end])
			c.start = 0
		}
		if c.end == len(c.buf) {
			return nil, errors.New("reply larger than the client's buffer")
		}
		n, err := c.conn.Read(c.buf[c.end:])
		if err != nil {
			return nil, err
		}
		c.end += n
	}
}

// scanRESP returns the length of the complete RESP2 reply at the start of
// b, or ok == false when b holds only part of one. It trusts its input.
func scanRESP(b []byte) (n int, ok bool) {
	pos, pending := 0, 1
	for pending > 0 {
		nl := bytes.IndexByte(b[pos:], '\n')
		if nl < 1 {
			return 0, false
		}
		line := b[pos : pos+nl-1] // without \r\n
		pos += nl + 1
		pending--
		switch line[0] {
		case '$':
			if size := atoiRESP(line[1:]); size >= 0 {
				if pos+size+2 > len(b) {
					return 0, false
				}
				pos += size + 2
			}
		case '*':
			if count := atoiRESP(line[1:]); count > 0 {
				pending += count
			}
		}
	}
	return pos, true
}

func atoiRESP(b []byte) int {
	if len(b) > 0 && b[0] == '-' {
		return -1
	}
	n := 0
	for _, d := range b {
		n = 10*n + int(d-'0')
	}
	return n
}

// heapAllocs returns the process's heap allocation count and bytes so far.
func heapAllocs() (objects, bytes uint64) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs, ms.TotalAlloc
}

// allocMeter measures allocations between start and stop.
type allocMeter struct{ objects, bytes uint64 }

func startAllocMeter() allocMeter {
	o, b := heapAllocs()
	return allocMeter{o, b}
}

// perRequest returns the objects and bytes allocated since start, divided
// by requests.
func (m allocMeter) perRequest(requests int) (objects, bytes float64) {
	o, b := heapAllocs()
	return float64(o-m.objects) / float64(requests), float64(b-m.bytes) / float64(requests)
}

func reportPerRequest(b *testing.B, m allocMeter, requests, perOp int) {
	objects, byts := m.perRequest(requests)
	b.ReportMetric(objects, "proxy-allocs/req")
	b.ReportMetric(byts, "proxy-B/req")
	if perOp > 1 {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(requests), "ns/req")
	}
}

// pathCase is one request shape: the bytes of one op and its replies.
type pathCase struct {
	name    string
	req     []byte
	replies [][]byte
}

func getCase(f *pathFixture, tb testing.TB) pathCase {
	k := "get:0"
	f.preload(tb, k)
	return getKeyCase(k)
}

func setCase(_ *pathFixture, _ testing.TB) pathCase { return setKeyCase("set:0") }

func mget10Case(f *pathFixture, tb testing.TB) pathCase {
	keys := f.spreadKeys(tb, "mget", 10)
	f.preload(tb, keys...)
	want := []byte(fmt.Sprintf("*%d\r\n", len(keys)))
	for _, k := range keys {
		want = append(want, bulkReply(benchValue(k))...)
	}
	return pathCase{"MGET10", []byte(cmd(append([]string{"MGET"}, keys...)...)), [][]byte{want}}
}

// benchScript is the script of the EVAL and EVALSHA cases.
const benchScript = "return redis.call('GET', KEYS[1])"

// evalCase runs a script by its body, which the proxy looks up in its
// script cache each time.
func evalCase(f *pathFixture, tb testing.TB) pathCase {
	k := "eval:0"
	f.preload(tb, k)
	return pathCase{"EVAL", []byte(cmd("EVAL", benchScript, "1", k)), [][]byte{bulkReply(benchValue(k))}}
}

// evalshaCase runs a script the proxy knows by its SHA1: every request
// has a retry armed, which the server's reply never uses.
func evalshaCase(f *pathFixture, tb testing.TB) pathCase {
	k := "evalsha:0"
	f.preload(tb, k)
	c := dialBench(tb, f.addr, time.Minute)
	sum := sha1.Sum([]byte(benchScript))
	sha := hex.EncodeToString(sum[:])
	if err := c.do([]byte(cmd("SCRIPT", "LOAD", benchScript)), bulkReply(sha)); err != nil {
		tb.Fatalf("SCRIPT LOAD: %v", err)
	}
	return pathCase{"EVALSHA", []byte(cmd("EVALSHA", sha, "1", k)), [][]byte{bulkReply(benchValue(k))}}
}

// pipelineCase is 16 GETs of keys on every server, written at once.
func pipelineCase(f *pathFixture, tb testing.TB) pathCase {
	keys := f.spreadKeys(tb, "pipe", 16)
	f.preload(tb, keys...)
	c := pathCase{name: "pipelined GET x16"}
	for _, k := range keys {
		c.req = append(c.req, cmd("GET", k)...)
		c.replies = append(c.replies, bulkReply(benchValue(k)))
	}
	return c
}

// warmUp runs the case enough times that every buffer, free list and
// backend connection on the path exists.
func warmUp(tb testing.TB, c *benchClient, pc pathCase) {
	tb.Helper()
	for range 200 {
		if err := c.do(pc.req, pc.replies...); err != nil {
			tb.Fatalf("%s warm-up: %v", pc.name, err)
		}
	}
}

// benchPath runs one client's requests in a loop, through the proxy or,
// with direct, straight to a redis-server.
func benchPath(b *testing.B, direct bool, mk func(*pathFixture, testing.TB) pathCase) {
	f := newFixture(b, direct)
	pc := mk(f, b)
	c := dialBench(b, f.addr, 30*time.Minute)
	warmUp(b, c, pc)
	ops := 0
	m := startAllocMeter()
	for b.Loop() {
		if err := c.do(pc.req, pc.replies...); err != nil {
			b.Fatalf("%s: %v", pc.name, err)
		}
		ops++
	}
	reportPerRequest(b, m, ops*len(pc.replies), len(pc.replies))
}

func newFixture(tb testing.TB, direct bool) *pathFixture {
	if direct {
		return newDirectFixture(tb)
	}
	return newPathFixture(tb)
}

func BenchmarkRedisGET(b *testing.B)           { benchPath(b, false, getCase) }
func BenchmarkRedisSET(b *testing.B)           { benchPath(b, false, setCase) }
func BenchmarkRedisMGET10(b *testing.B)        { benchPath(b, false, mget10Case) }
func BenchmarkRedisGETPipeline16(b *testing.B) { benchPath(b, false, pipelineCase) }
func BenchmarkRedisEVAL(b *testing.B)          { benchPath(b, false, evalCase) }
func BenchmarkRedisEVALSHA(b *testing.B)       { benchPath(b, false, evalshaCase) }

// The same without the proxy: the client straight to one redis-server.
// proxy-allocs/req is then the client's own, and must be 0.
func BenchmarkRedisDirectGET(b *testing.B)           { benchPath(b, true, getCase) }
func BenchmarkRedisDirectGETPipeline16(b *testing.B) { benchPath(b, true, pipelineCase) }

// parallelClients is how many client connections the parallel benchmarks
// run, one goroutine each: enough that requests of different clients meet
// in the backends' write buffers (cross-client batching).
const parallelClients = 50

// benchParallel runs parallelClients clients (rounded up to a multiple of
// GOMAXPROCS), each on its own connection and keys spread over the servers.
func benchParallel(b *testing.B, direct bool, mkCase func(key string) pathCase) {
	f := newFixture(b, direct)
	procs := runtime.GOMAXPROCS(0)
	par := (parallelClients + procs - 1) / procs
	n := par * procs
	keys := f.spreadKeys(b, "par", n)
	f.preload(b, keys...)
	clients := make([]*benchClient, n)
	cases := make([]pathCase, n)
	for i := range clients {
		clients[i] = dialBench(b, f.addr, 30*time.Minute)
		cases[i] = mkCase(keys[i])
		warmUp(b, clients[i], cases[i])
	}
	var next atomic.Int64
	var failed atomic.Bool
	b.SetParallelism(par)
	m := startAllocMeter()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := next.Add(1) - 1
		c, pc := clients[i], cases[i]
		for pb.Next() {
			if err := c.do(pc.req, pc.replies...); err != nil {
				if !failed.Swap(true) {
					b.Errorf("client %d %s: %v", i, pc.name, err)
				}
				return
			}
		}
	})
	b.StopTimer()
	reportPerRequest(b, m, b.N*len(cases[0].replies), len(cases[0].replies))
}

func getKeyCase(k string) pathCase {
	return pathCase{"GET", []byte(cmd("GET", k)), [][]byte{bulkReply(benchValue(k))}}
}

func setKeyCase(k string) pathCase {
	return pathCase{"SET", []byte(cmd("SET", k, benchValue(k))), [][]byte{okReply}}
}

// BenchmarkRedisGETParallel: 50 clients each GET their own key.
func BenchmarkRedisGETParallel(b *testing.B) { benchParallel(b, false, getKeyCase) }

// BenchmarkRedisSETParallel: 50 clients each SET their own key.
func BenchmarkRedisSETParallel(b *testing.B) { benchParallel(b, false, setKeyCase) }

// BenchmarkRedisDirectGETParallel: the same 50 clients straight to one
// redis-server.
func BenchmarkRedisDirectGETParallel(b *testing.B) { benchParallel(b, true, getKeyCase) }

// raceEnabled reports whether the test binary has the race detector:
// sync.Pool then drops a quarter of what is put back, so pooled buffers are
// reallocated and the allocation bounds are looser.
func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// steadyBounds are TestSteadyStateAllocs's limits, in allocations per
// request, with a margin over what was measured (go1.26, linux/amd64):
// 0 on the steady path, for every case.
var steadyBounds = map[string]float64{
	"GET":               0.05,
	"SET":               0.05,
	"MGET10":            0.05,
	"pipelined GET x16": 0.01,
	"GET, 20 clients":   0.05,
	"EVAL":              0.05,
	"EVALSHA":           0.05,
}

// With the race detector, sync.Pool.Put drops a quarter of what it is given
// at random, so a read batch sometimes allocates a fresh 16 KiB buffer and
// its pointer.
var steadyBoundsRace = map[string]float64{
	"GET":               0.8,
	"SET":               0.8,
	"MGET10":            0.8,
	"pipelined GET x16": 0.1,
	"GET, 20 clients":   0.8,
	"EVAL":              0.8,
	"EVALSHA":           0.8,
}

// TestSteadyStateAllocs bounds the allocations per request of the steady
// path (a warmed-up session, backends connected), measured as in the
// benchmarks. The client's own allocations are checked to be zero first,
// against a redis-server directly, so the counts are the proxy's.
func TestSteadyStateAllocs(t *testing.T) {
	const ops = 3000
	measure := func(c *benchClient, pc pathCase) float64 {
		t.Helper()
		warmUp(t, c, pc)
		m := startAllocMeter()
		for range ops {
			if err := c.do(pc.req, pc.replies...); err != nil {
				t.Fatalf("%s: %v", pc.name, err)
			}
		}
		objects, _ := m.perRequest(ops * len(pc.replies))
		return objects
	}
	bounds := steadyBounds
	if raceEnabled() {
		bounds = steadyBoundsRace
	}
	check := func(name string, got float64) {
		t.Helper()
		t.Logf("%s: %.4f allocations per request", name, got)
		if got > bounds[name] {
			t.Errorf("%s: %.4f allocations per request, want at most %v", name, got, bounds[name])
		}
	}

	direct := newDirectFixture(t)
	pc := getCase(direct, t)
	if got := measure(dialBench(t, direct.addr, time.Minute), pc); got > 0.01 {
		t.Fatalf("the benchmark client itself allocates %.4f objects per request: the measurement would not be the proxy's", got)
	}

	f := newPathFixture(t)
	c := dialBench(t, f.addr, time.Minute)
	for _, mk := range []func(*pathFixture, testing.TB) pathCase{getCase, setCase, mget10Case, pipelineCase, evalCase, evalshaCase} {
		pc := mk(f, t)
		check(pc.name, measure(c, pc))
	}

	// Concurrent clients, whose requests share backend writes.
	const clients = 20
	keys := f.spreadKeys(t, "conc", clients)
	f.preload(t, keys...)
	conns := make([]*benchClient, clients)
	cases := make([]pathCase, clients)
	for i := range conns {
		conns[i] = dialBench(t, f.addr, time.Minute)
		cases[i] = getKeyCase(keys[i])
		warmUp(t, conns[i], cases[i])
	}
	errs := make(chan error, clients)
	m := startAllocMeter()
	for i, c := range conns {
		go func() {
			pc := cases[i]
			for range ops / 10 {
				if err := c.do(pc.req, pc.replies...); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	objects, _ := m.perRequest(clients * ops / 10)
	check("GET, 20 clients", objects)
}
