package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

func memcachePool(t testing.TB, extra string, servers ...*testutil.Server) (*Proxy, string) {
	t.Helper()
	return startProxy(t, "mc:\n  listen: 127.0.0.1:{{port}}\n  hash: fnv1a_64\n  distribution: ketama\n"+
		extra+"  servers:\n"+serverLines(servers...))
}

func startMemcacheds(t testing.TB, n int) []*testutil.Server {
	t.Helper()
	var out []*testutil.Server
	for range n {
		out = append(out, testutil.StartMemcached(t))
	}
	return out
}

// readLine reads one reply line.
func (c *rawClient) readLine() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: %v (so far %q)", err, line)
	}
	return line
}

// readUntil reads lines until one equals last, and returns them all.
func (c *rawClient) readUntil(last string) string {
	c.t.Helper()
	var b strings.Builder
	for {
		line := c.readLine()
		b.WriteString(line)
		if line == last {
			return b.String()
		}
	}
}

func TestMemcacheBasics(t *testing.T) {
	servers := startMemcacheds(t, 3)
	px, addr := memcachePool(t, "", servers...)
	c := dialRaw(t, addr)

	c.send("set a 5 0 1\r\nx\r\n")
	if got := c.readLine(); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}
	c.send("get a\r\n")
	if got := c.readUntil("END\r\n"); got != "VALUE a 5 1\r\nx\r\nEND\r\n" {
		t.Errorf("get: %q", got)
	}
	// Keys over all servers, values back in the client's order.
	var keys []string
	spread := map[string]bool{}
	for i := 0; len(spread) < 3 || len(keys) < 12; i++ {
		k := fmt.Sprintf("key%d", i)
		keys = append(keys, k)
		spread[px.Pools()[0].pick([]byte(k)).cfg.Address.String()] = true
		c.send(fmt.Sprintf("set %s 0 0 %d noreply\r\nv-%s\r\n", k, len(k)+2, k))
	}
	c.send("mn\r\n")
	if got := c.readLine(); got != "MN\r\n" {
		t.Fatalf("noreply sets then mn: %q", got)
	}
	req := "get " + strings.Join(keys[:3], " ") + " missing " + strings.Join(keys[3:], " ") + " " + keys[0] + "\r\n"
	var want strings.Builder
	for _, k := range append(append(append(append([]string{}, keys[:3]...), "missing"), keys[3:]...), keys[0]) {
		if k == "missing" {
			continue
		}
		fmt.Fprintf(&want, "VALUE %s 0 %d\r\nv-%s\r\n", k, len(k)+2, k)
	}
	want.WriteString("END\r\n")
	c.send(req)
	if got := c.readUntil("END\r\n"); got != want.String() {
		t.Errorf("multi-get:\n got %q\nwant %q", got, want.String())
	}
	// gets returns cas uniques; one get per server, not per key.
	c.send("gets " + strings.Join(keys, " ") + "\r\n")
	if got := c.readUntil("END\r\n"); strings.Count(got, "VALUE ") != len(keys) {
		t.Errorf("gets: %q", got)
	}
	for _, tt := range []struct{ req, want string }{
		{"incr nope 1\r\n", "NOT_FOUND\r\n"},
		{"set n 0 0 1\r\n5\r\n", "STORED\r\n"},
		{"incr n 10\r\n", "15\r\n"},
		{"decr n 3\r\n", "12\r\n"},
		{"touch n 100\r\n", "TOUCHED\r\n"},
		{"append n 0 0 1\r\n0\r\n", "STORED\r\n"},
		{"delete n\r\n", "DELETED\r\n"},
		{"delete n\r\n", "NOT_FOUND\r\n"},
		{"bogus\r\n", "ERROR\r\n"},
		// memcached reads "abcd\r" as the block, rejects it, then takes the
		// lone "\n" for an empty command line.
		{"set k 0 0 3\r\nabcd\r\n", "CLIENT_ERROR bad data chunk\r\nERROR\r\n"},
		{"get " + strings.Repeat("k", 251) + "\r\n", "CLIENT_ERROR bad command line format\r\n"},
		{"mg key1 v\r\n", "VA 6\r\nv-key1\r\n"},
		{"mg nope v\r\n", "EN\r\n"},
		{"ms m1 2\r\nhi\r\n", "HD\r\n"},
		{"md m1\r\n", "HD\r\n"},
		{"stats\r\n", "SERVER_ERROR 'stats' is not supported through the proxy\r\n"},
	} {
		c.send(tt.req)
		got := c.readLine()
		if strings.HasPrefix(got, "VA ") || got == "CLIENT_ERROR bad data chunk\r\n" {
			got += c.readLine()
		}
		if got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.req, got, tt.want)
		}
	}
	// Quiet meta requests: a miss and a success are hidden, mn closes.
	c.send("mg nope v q\r\nms q1 1 q\r\nx\r\nmg key1 v q\r\nmn\r\n")
	if got := c.readUntil("MN\r\n"); got != "VA 6\r\nv-key1\r\nMN\r\n" {
		t.Errorf("quiet pipeline: %q", got)
	}
	c.send("version\r\n")
	if got := c.readLine(); !strings.HasPrefix(got, "VERSION ") {
		t.Errorf("version: %q", got)
	}
	c.send("quit\r\n")
	c.expectClosed()
}

// TestMemcacheTimeoutAndRefused: a paused server times out with
// twemproxy's SERVER_ERROR wording; a dead one is refused; every request
// gets exactly one reply.
func TestMemcacheTimeoutAndRefused(t *testing.T) {
	servers := startMemcacheds(t, 1)
	_, addr := memcachePool(t, "  timeout: 200\n", servers...)
	c := dialRaw(t, addr)
	c.send("set a 0 0 1\r\nx\r\n")
	if got := c.readLine(); got != "STORED\r\n" {
		t.Fatal(got)
	}
	servers[0].Pause()
	start := time.Now()
	c.send("get a\r\nset b 0 0 1 noreply\r\ny\r\nmn\r\n")
	if got := c.readLine(); got != "SERVER_ERROR Connection timed out\r\n" {
		t.Errorf("get on a paused server: %q", got)
	}
	if got := c.readLine(); got != "MN\r\n" {
		t.Errorf("after the timed-out noreply set: %q", got)
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 3*time.Second {
		t.Errorf("timed out after %v", d)
	}
	servers[0].Resume()
	servers[0].Kill()
	c.send("get a\r\n")
	if got := c.readLine(); !strings.HasPrefix(got, "SERVER_ERROR ") {
		t.Errorf("get on a dead server: %q", got)
	}
	c.send("get a\r\n")
	if got := c.readLine(); got != "SERVER_ERROR Connection refused\r\n" {
		t.Errorf("get on a dead server: %q", got)
	}
}

// TestMemcacheNoreplyFailuresCounted: a noreply request that fails sends
// the client nothing, keeps the replies in step, and is counted.
func TestMemcacheNoreplyFailuresCounted(t *testing.T) {
	servers := startMemcacheds(t, 1)
	px, addr := memcachePool(t, "", servers...)
	c := dialRaw(t, addr)
	// incr of a non-number and add of an existing key fail silently.
	c.send("set n 0 0 1 noreply\r\nx\r\nincr n 1 noreply\r\nadd n 0 0 1 noreply\r\ny\r\nincr nope 1 noreply\r\nget n\r\n")
	if got := c.readUntil("END\r\n"); got != "VALUE n 0 1\r\nx\r\nEND\r\n" {
		t.Errorf("after silent failures: %q", got)
	}
	// Only error replies count: NOT_STORED and NOT_FOUND are answers.
	if got := px.Pools()[0].NoreplyErrors(); got != 1 {
		t.Errorf("NoreplyErrors = %d, want 1 (the incr of a non-number)", got)
	}
	// A noreply request to a dead server fails unseen, and is counted.
	servers[0].Kill()
	c.send("set m 0 0 1 noreply\r\nz\r\nmn\r\n")
	if got := c.readLine(); got != "MN\r\n" {
		t.Errorf("after a noreply set to a dead server: %q", got)
	}
	if got := px.Pools()[0].NoreplyErrors(); got != 2 {
		t.Errorf("NoreplyErrors = %d, want 2", got)
	}
}

// binaryGet is a memcached binary-protocol GET of key (opcode 0x00, as
// memjs sends it): the 24-byte header, then the key.
func binaryGet(key string, opaque uint32) string {
	var h [24]byte
	h[0] = 0x80
	binary.BigEndian.PutUint16(h[2:4], uint16(len(key)))
	binary.BigEndian.PutUint32(h[8:12], uint32(len(key)))
	binary.BigEndian.PutUint32(h[12:16], opaque)
	return string(h[:]) + key
}

// TestMemcacheBinaryProtocolRefused: a binary-protocol client gets a
// binary error response (status 0x0081, its opaque echoed, a message
// saying why), after the replies to its earlier requests, and then the
// proxy's close, at once rather than at the client's timeout.
func TestMemcacheBinaryProtocolRefused(t *testing.T) {
	const msg = "shardproxy serves the memcached ASCII and meta protocols only, not the binary protocol"
	servers := startMemcacheds(t, 1)
	_, addr := memcachePool(t, "", servers...)
	c := dialRaw(t, addr)
	c.send("set a 0 0 1\r\nx\r\n")
	if got := c.readLine(); got != "STORED\r\n" {
		t.Fatalf("set: %q", got)
	}

	for _, tc := range []struct {
		name   string
		writes []string // sent with a pause between them
		before string   // the replies to the text requests before it
	}{
		{"binary get", []string{binaryGet("foo", 0xdeadbeef)}, ""},
		{"text get first, same write", []string{"get a\r\n" + binaryGet("foo", 0xdeadbeef)}, "VALUE a 0 1\r\nx\r\nEND\r\n"},
		{"header in two writes", []string{"get a\r\nmn\r\n" + binaryGet("foo", 0xdeadbeef)[:10], binaryGet("foo", 0xdeadbeef)[10:]},
			"VALUE a 0 1\r\nx\r\nEND\r\nMN\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			start := time.Now()
			for i, w := range tc.writes {
				if i > 0 {
					time.Sleep(100 * time.Millisecond)
				}
				c.send(w)
			}
			_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			got := make([]byte, len(tc.before)+24+len(msg))
			if n, err := io.ReadFull(c.r, got); err != nil {
				t.Fatalf("read: %v (got %q)", err, got[:n])
			}
			if s := string(got[:len(tc.before)]); s != tc.before {
				t.Fatalf("replies before the binary request: %q, want %q", s, tc.before)
			}
			h := got[len(tc.before) : len(tc.before)+24]
			want := []byte{
				0x81,       // response magic
				0x00,       // the request's opcode (GET)
				0x00, 0x00, // key length
				0x00,       // extras length
				0x00,       // data type
				0x00, 0x81, // status: unknown command
				0, 0, 0, byte(len(msg)), // total body length
				0xde, 0xad, 0xbe, 0xef, // the request's opaque
				0, 0, 0, 0, 0, 0, 0, 0, // CAS
			}
			if string(h) != string(want) {
				t.Fatalf("response header % x\n           want % x", h, want)
			}
			if body := string(got[len(tc.before)+24:]); body != msg {
				t.Fatalf("message %q", body)
			}
			b, err := c.r.ReadByte()
			if !errors.Is(err, io.EOF) {
				t.Fatalf("after the response: read %q, %v; want the proxy's close (EOF)", b, err)
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("closed after %v", d)
			}
		})
	}

	// The first connection, and the pool, are unaffected.
	c.send("get a\r\n")
	if got := c.readUntil("END\r\n"); got != "VALUE a 0 1\r\nx\r\nEND\r\n" {
		t.Fatalf("get on another connection: %q", got)
	}
}
