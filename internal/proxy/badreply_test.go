package proxy

// Hostile and broken servers. A fake server answers a request for the key
// "bad" with broken bytes; the requests queued on that connection must get
// one error reply each, at once, the connection must be closed and counted
// as server_err, and the client must go on (its next request, for "good",
// is answered properly on a new connection). After many such events the
// proxy holds no more descriptors or goroutines than before.

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/memcache"
	"github.com/shardproxy/shardproxy/internal/resp"
	"github.com/shardproxy/shardproxy/internal/testutil"
)

// badReplyWithin is how soon the replies must come: at once, with room
// for a loaded machine and the race detector. Before the fix, never.
const badReplyWithin = 3 * time.Second

// badEvents is how many bad replies each shape is sent, for the leak check.
const badEvents = 100

// badShape is one way a server's reply goes wrong.
type badShape struct {
	name  string
	reply fakeReply
	// what is the reason the client reads after "bad reply from server
	// <name>: "; "" when the broken reply follows a good one (extra
	// reply), which the client gets instead of an error.
	what string
}

// badProto is what the test needs to know of a protocol.
type badProto struct {
	name  string
	pool  func(t *testing.T, extra, server string) (*Proxy, string)
	parse func([]byte) (int, string)
	// good answers a request properly; keys: "good", "twice" (the first
	// of two replies), "version" (memcached).
	good func(key string) []byte
	// send is what the client writes for one event: a request for the
	// bad key and one after it (PING, answered by the proxy after the
	// bad one; memcached version, queued on the same connection).
	send string
	// want is what the client reads for send; errs are the proxy's error
	// text for the requests the server failed.
	want func(errText string) []string
	// errLine words a proxy error reply.
	errLine func(text string) string
	// goodReq and goodWant: a request answered properly afterwards.
	goodReq, goodWant string
	// read reads one reply within badReplyWithin.
	read func(t *testing.T, c *rawClient) string
}

var badRedis = &badProto{
	name: "redis",
	pool: func(t *testing.T, extra, server string) (*Proxy, string) {
		return startProxy(t, "alpha:\n  listen: 127.0.0.1:{{port}}\n  redis: true\n"+extra+"  servers:\n   - "+server+":1\n")
	},
	parse: fakeRedisParse,
	good: func(key string) []byte {
		switch key {
		case "twice":
			return []byte("$1\r\nv\r\n")
		}
		return []byte("$2\r\nok\r\n")
	},
	send:     cmd("GET", "bad") + cmd("PING"),
	want:     func(e string) []string { return []string{"-ERR " + e + "\r\n", "+PONG\r\n"} },
	errLine:  func(text string) string { return "-ERR " + text + "\r\n" },
	goodReq:  cmd("GET", "good"),
	goodWant: "$2\r\nok\r\n",
	read: func(t *testing.T, c *rawClient) string {
		t.Helper()
		_ = c.conn.SetReadDeadline(time.Now().Add(badReplyWithin))
		var b strings.Builder
		if err := readRESP(c.r, &b); err != nil {
			t.Fatalf("no reply within %v: %v (so far %q)", badReplyWithin, err, b.String())
		}
		return b.String()
	},
}

var badMemcache = &badProto{
	name: "memcache",
	pool: func(t *testing.T, extra, server string) (*Proxy, string) {
		return startProxy(t, "mc:\n  listen: 127.0.0.1:{{port}}\n"+extra+"  servers:\n   - "+server+":1\n")
	},
	parse: fakeMemcacheParse,
	good: func(key string) []byte {
		if key == "version" {
			return []byte("VERSION 1.6.0\r\n")
		}
		v := "ok"
		if key == "twice" {
			v = "v"
		}
		return []byte(fmt.Sprintf("VALUE %s 0 %d\r\n%s\r\nEND\r\n", key, len(v), v))
	},
	send: "get bad\r\nversion\r\n",
	want: func(e string) []string {
		return []string{"SERVER_ERROR " + e + "\r\n", "SERVER_ERROR " + e + "\r\n"}
	},
	errLine:  func(text string) string { return "SERVER_ERROR " + text + "\r\n" },
	goodReq:  "get good\r\n",
	goodWant: "VALUE good 0 2\r\nok\r\nEND\r\n",
	read: func(t *testing.T, c *rawClient) string {
		t.Helper()
		_ = c.conn.SetReadDeadline(time.Now().Add(badReplyWithin))
		var b strings.Builder
		for {
			line, err := c.r.ReadString('\n')
			b.WriteString(line)
			if err != nil {
				t.Fatalf("no reply within %v: %v (so far %q)", badReplyWithin, err, b.String())
			}
			if !strings.HasPrefix(line, "VALUE ") && (b.Len() == len(line) || line == "END\r\n") {
				return b.String() // one line, or the END of VALUE blocks
			}
			if strings.HasPrefix(line, "VALUE ") {
				f := strings.Fields(line)
				n, _ := strconv.Atoi(f[3])
				data := make([]byte, n+2)
				if _, err := io.ReadFull(c.r, data); err != nil {
					t.Fatalf("value: %v", err)
				}
				b.Write(data)
			}
		}
	},
}

// randomBinary is 4 KiB of random bytes, the same in every run.
func randomBinary() []byte {
	r := rand.New(rand.NewPCG(12, 34))
	b := make([]byte, 4096)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// redisWhat is what the proxy's Redis parser says of reply: the test's
// expectation for random bytes, checked to be a framing error.
func redisWhat(t *testing.T, reply []byte) string {
	t.Helper()
	s := resp.ReplyScanner{MaxLine: maxReplyLine}
	_, err := s.Scan(reply)
	var pe *resp.ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("the test's random bytes scan as %v, not as a protocol error", err)
	}
	return pe.Msg
}

func memcacheWhat(t *testing.T, reply []byte) string {
	t.Helper()
	var s memcache.ReplyScanner
	_, err := s.Scan(reply, memcache.Get)
	var pe *memcache.ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("the test's random bytes scan as %v, not as a protocol error", err)
	}
	return strings.TrimPrefix(pe.Reply, "SERVER_ERROR ")
}

func mute(b string) fakeReply { return fakeReply{data: []byte(b), mute: true} }

func TestBadReplyRedis(t *testing.T) {
	bin := randomBinary()
	runBadShapes(t, badRedis, []badShape{
		{"not RESP", mute("this is not resp\r\n"), "unknown reply type 't'"},
		{"bulk length not a number", mute("$abc\r\n"), "invalid bulk length in reply"},
		{"negative bulk length", mute("$-7\r\n"), "invalid bulk length in reply"},
		{"LF without CR", mute("+OK\n"), "expected CRLF at end of line in reply"},
		{"bulk not followed by CRLF", mute("$3\r\nabcXY"), "expected CRLF after bulk in reply"},
		{"4 KiB of random bytes", fakeReply{data: bin, mute: true}, redisWhat(t, bin)},
	})
}

func TestBadReplyMemcache(t *testing.T) {
	bin := randomBinary()
	runBadShapes(t, badMemcache, []badShape{
		{"VALUE without numbers", mute("VALUE broken\r\n"), "bad VALUE line in reply"},
		{"garbage", mute("this is garbage\r\n"), "unexpected line in retrieval reply"},
		{"data not followed by CRLF", mute("VALUE bad 0 3\r\nabcXY"), "data block not followed by CRLF"},
		{"RESP to memcached", mute("$3\r\nabc\r\n"), "unexpected line in retrieval reply"},
		{"4 KiB of random bytes", fakeReply{data: bin, mute: true}, memcacheWhat(t, bin)},
	})
}

// TestExtraReply: a server that answers one request twice. The client
// gets the first reply at once (it used to wait until its next request
// pushed it out), the connection is closed, and the extra reply is
// given to nobody: the next request is answered on a new connection.
func TestExtraReply(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		p := *badRedis
		p.send = cmd("GET", "twice") + cmd("PING")
		p.want = func(string) []string { return []string{"$1\r\nv\r\n", "+PONG\r\n"} }
		runBadShape(t, &p, badShape{"extra reply", mute("$1\r\nv\r\n+EXTRA\r\n"), ""}, badEvents)
	})
	t.Run("memcache", func(t *testing.T) {
		// Only the one request: a memcached request queued behind it
		// would take the extra reply for its own, as it would from any
		// server that answers twice; nothing can tell them apart.
		p := *badMemcache
		p.send = "get twice\r\n"
		p.want = func(string) []string { return []string{"VALUE twice 0 1\r\nv\r\nEND\r\n"} }
		runBadShape(t, &p, badShape{"extra reply", mute("VALUE twice 0 1\r\nv\r\nEND\r\nEND\r\n"), ""}, badEvents)
	})
}

func runBadShapes(t *testing.T, p *badProto, shapes []badShape) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) { runBadShape(t, p, sh, badEvents) })
	}
}

// runBadShape sends events bad requests through a proxy to a fake server
// that answers them with sh.
func runBadShape(t *testing.T, p *badProto, sh badShape, events int) {
	runBadShapeWith(t, p, sh, events, "", nil)
}

// runBadShapeWith is runBadShape with extra pool keys, and each event
// checked by perEvent (given the event's bytes allocated) when not nil.
func runBadShapeWith(t *testing.T, p *badProto, sh badShape, events int, extra string, perEvent func(t *testing.T, allocated uint64)) {
	f := startFakeServer(t, p.parse, func(key string) fakeReply {
		switch key {
		case "bad", "twice":
			return sh.reply
		}
		return fakeReply{data: p.good(key)}
	})
	px, addr := p.pool(t, extra, f.addr)
	statsAddr := startStats(t, px)
	c := dialRaw(t, addr)
	roundTrip := func(req, want string) {
		t.Helper()
		c.send(req)
		if got := p.read(t, c); got != want {
			t.Fatalf("%q: got %q, want %q", req, got, want)
		}
	}
	roundTrip(p.goodReq, p.goodWant) // connected: the state the events return to
	goroutines, sockets := runtime.NumGoroutine(), faultSockets(t)

	errText := "Invalid argument: bad reply from server " + f.addr + ": " + sh.what
	want := p.want(errText)
	var mem runtime.MemStats
	for i := range events {
		if perEvent != nil {
			runtime.ReadMemStats(&mem)
		}
		before := mem.TotalAlloc
		c.send(p.send)
		for j, w := range want {
			if got := p.read(t, c); got != w {
				t.Fatalf("event %d, reply %d: got %q, want %q", i, j, got, w)
			}
		}
		if perEvent != nil {
			runtime.ReadMemStats(&mem)
			perEvent(t, mem.TotalAlloc-before)
		}
		// The bad connection is closed, and the next request, which the
		// server answers properly, goes to a new one.
		roundTrip(p.goodReq, p.goodWant)
	}
	if !waitFor(5*time.Second, func() bool { return f.dropped.Load() >= int64(events) }) {
		t.Errorf("the proxy closed %d of the %d bad connections", f.dropped.Load(), events)
	}
	if got := f.accepted.Load(); got != int64(events)+1 {
		t.Errorf("%d connections to the server, want %d (one per bad reply, and the first)", got, events+1)
	}
	var serverErr any
	if !waitFor(5*time.Second, func() bool {
		doc := readStats(t, statsAddr)
		pool, _ := doc[px.Pools()[0].Name()].(map[string]any)
		srv, _ := pool[f.addr].(map[string]any)
		serverErr = srv["server_err"]
		return serverErr == float64(events)
	}) {
		t.Errorf("server_err %v, want %d", serverErr, events)
	}
	faultWaitLeaks(t, fmt.Sprintf("after %d bad replies", events), goroutines+2, sockets+2)
}

// TestReplyLimits: a reply that never ends, or is larger than
// max_reply_bytes, fails its request when the limit is crossed, and the
// proxy's memory stays bounded by the limit meanwhile.
func TestReplyLimits(t *testing.T) {
	const limit = 1 << 20
	extra := fmt.Sprintf("  max_reply_bytes: %d\n", limit)
	tooLarge := fmt.Sprintf("reply larger than max_reply_bytes (%d bytes)", limit)
	chunk := func(unit string) []byte { return bytes.Repeat([]byte(unit), (64<<10)/len(unit)) }
	// With the buffer doubling up to the limit, an event allocates about
	// twice the limit; without a limit it would be what the server sent.
	bounded := func(most *uint64) func(t *testing.T, allocated uint64) {
		return func(t *testing.T, allocated uint64) {
			t.Helper()
			*most = max(*most, allocated)
			if allocated > 4*limit {
				t.Fatalf("%d bytes allocated while failing one endless reply, limit %d", allocated, limit)
			}
		}
	}
	const events = 20
	cases := []struct {
		p     *badProto
		shape badShape
	}{
		{badRedis, badShape{"endless bulk", fakeReply{data: []byte("$1000000000\r\n"), stream: chunk("x")}, tooLarge}},
		{badRedis, badShape{"bulk over the limit", fakeReply{data: []byte("$1048577\r\n"), stream: chunk("x")}, tooLarge}},
		{badRedis, badShape{"endless array", fakeReply{data: []byte("*1000000000\r\n"), stream: chunk("$3\r\nabc\r\n")}, tooLarge}},
		{badRedis, badShape{"endless line", fakeReply{data: []byte("+"), stream: chunk("x")}, "line too long in reply"}},
		{badMemcache, badShape{"endless value", fakeReply{data: []byte("VALUE bad 0 1000000000\r\n"), stream: chunk("x")}, tooLarge}},
		{badMemcache, badShape{"endless values", fakeReply{data: []byte("VALUE bad 0 3\r\nabc\r\n"), stream: chunk("VALUE bad 0 3\r\nabc\r\n")}, tooLarge}},
		{badMemcache, badShape{"endless line", fakeReply{data: []byte("VALUE "), stream: chunk("x")}, "reply line too long"}},
	}
	for _, tc := range cases {
		t.Run(tc.p.name+"/"+tc.shape.name, func(t *testing.T) {
			var most uint64
			runBadShapeWith(t, tc.p, tc.shape, events, extra, bounded(&most))
			t.Logf("at most %.2f MiB allocated in an event", float64(most)/(1<<20))
		})
	}
}

// TestReplyJustUnderLimit: a value that fits max_reply_bytes passes.
func TestReplyJustUnderLimit(t *testing.T) {
	const limit = 1 << 20
	value := strings.Repeat("v", limit-32)
	for _, p := range []*badProto{badRedis, badMemcache} {
		t.Run(p.name, func(t *testing.T) {
			var reply string
			if p == badRedis {
				reply = fmt.Sprintf("$%d\r\n%s\r\n", len(value), value)
			} else {
				reply = fmt.Sprintf("VALUE good 0 %d\r\n%s\r\nEND\r\n", len(value), value)
			}
			f := startFakeServer(t, p.parse, func(string) fakeReply { return fakeReply{data: []byte(reply)} })
			_, addr := p.pool(t, fmt.Sprintf("  max_reply_bytes: %d\n", limit), f.addr)
			c := dialRaw(t, addr)
			for range 3 {
				c.send(p.goodReq)
				if got := p.read(t, c); got != reply {
					t.Fatalf("got %d bytes (%.40q...), want the %d-byte reply", len(got), got, len(reply))
				}
			}
		})
	}
}

// TestLargeValueHeldOnce: a 64 MiB value from a real redis-server passes
// through the proxy with one buffer of its size: the reader's buffer
// grows to the announced size at once (no doubling), and that buffer is
// handed to the request and then to the client's write without a copy.
func TestLargeValueHeldOnce(t *testing.T) {
	const size = 64 << 20
	srv := testutil.StartRedis(t)
	_, addr := redisPool(t, "", srv)

	// Store the value straight into redis-server, from one small buffer.
	direct := srv.Dial(t)
	_ = direct.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(direct, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n", size); err != nil {
		t.Fatal(err)
	}
	piece := bytes.Repeat([]byte("0123456789abcdef"), (1<<20)/16)
	for range size / len(piece) {
		if _, err := direct.Write(piece); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.WriteString(direct, "\r\n"); err != nil {
		t.Fatal(err)
	}
	ok := make([]byte, 5)
	if _, err := io.ReadFull(direct, ok); err != nil || string(ok) != "+OK\r\n" {
		t.Fatalf("SET: %q %v", ok, err)
	}
	direct.Close()

	c := dialRaw(t, addr)
	if got := c.roundTrip(cmd("GET", "small")); got != "$-1\r\n" {
		t.Fatalf("GET small: %q", got)
	}
	runtime.GC()
	debug.FreeOSMemory()
	resetPeak := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	rssBefore := procStatusKB(t, "VmRSS")
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	allocBefore := mem.TotalAlloc

	c.send(cmd("GET", "big"))
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	header, err := c.r.ReadString('\n')
	if err != nil || header != fmt.Sprintf("$%d\r\n", size) {
		t.Fatalf("GET big: header %q, %v", header, err)
	}
	if n, err := io.CopyN(io.Discard, c.r, size+2); err != nil {
		t.Fatalf("GET big: %d bytes of the value, %v", n, err)
	}

	runtime.ReadMemStats(&mem)
	allocated := mem.TotalAlloc - allocBefore
	t.Logf("allocated %.1f MiB for a %d MiB value", float64(allocated)/(1<<20), size>>20)
	if allocated > size*12/10 {
		t.Errorf("allocated %d bytes while a %d-byte value passed: more than 1.2 times its size", allocated, size)
	}
	if resetPeak && !raceEnabled() {
		// The race detector shadows every byte touched: RSS means
		// nothing under it.
		peak := procStatusKB(t, "VmHWM")
		t.Logf("peak RSS %d KiB over %d KiB before", peak-rssBefore, rssBefore)
		if grew := (peak - rssBefore) << 10; grew > size*12/10 {
			t.Errorf("peak RSS grew by %d bytes while a %d-byte value passed", grew, size)
		}
	}
}

// procStatusKB reads a "kB" field of /proc/self/status.
func procStatusKB(t *testing.T, field string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
