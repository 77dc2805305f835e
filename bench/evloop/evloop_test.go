//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// startProxy runs the prototype in this process, with two loops, over
// the given servers.
func startProxy(t *testing.T, servers ...*testutil.Server) (*Proxy, Config) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
	cfg.Loops = 2
	for _, s := range servers {
		cfg.Servers = append(cfg.Servers, s.Addr)
	}
	px, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	px.Start()
	t.Cleanup(px.Close)
	testutil.WaitListening(t, "tcp", px.Addr(), 5*time.Second)
	return px, cfg
}

// conn is a test client: it writes raw bytes and reads replies one at a
// time, each as its type byte and text ("$" then the bulk, "$nil", "+OK",
// "-ERR …", ":1").
type conn struct {
	t *testing.T
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) *conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	return &conn{t, c, bufio.NewReader(c)}
}

func (c *conn) send(b []byte) {
	c.t.Helper()
	if _, err := c.Write(b); err != nil {
		c.t.Fatal(err)
	}
}

func (c *conn) reply() string {
	c.t.Helper()
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("reading a reply: %v", err)
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" || line[0] != '$' {
		return line
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil {
		c.t.Fatalf("bulk header %q", line)
	}
	if n < 0 {
		return "$nil"
	}
	buf := make([]byte, n+2)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		c.t.Fatal(err)
	}
	return "$" + string(buf[:n])
}

// do sends one command and returns its reply.
func (c *conn) do(args ...string) string {
	c.t.Helper()
	c.send(encode(nil, args...))
	return c.reply()
}

func encode(dst []byte, args ...string) []byte {
	dst = fmt.Appendf(dst, "*%d\r\n", len(args))
	for _, a := range args {
		dst = fmt.Appendf(dst, "$%d\r\n%s\r\n", len(a), a)
	}
	return dst
}

func TestRoundTrips(t *testing.T) {
	px, _ := startProxy(t, testutil.StartRedis(t))
	c := dial(t, px.Addr())
	big := strings.Repeat("v", 300<<10) // more than a read buffer, both ways
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"PING"}, "+PONG"},
		{[]string{"ping", "hi"}, "$hi"},
		{[]string{"GET", "missing"}, "$nil"},
		{[]string{"SET", "k", "v"}, "+OK"},
		{[]string{"get", "k"}, "$v"},
		{[]string{"SET", "k", "v2", "XX"}, "+OK"},
		{[]string{"GET", "k"}, "$v2"},
		{[]string{"SET", "big", big}, "+OK"},
		{[]string{"GET", "big"}, "$" + big},
		{[]string{"GET"}, "-ERR wrong number of arguments for 'get' command"},
		{[]string{"DEL", "k"}, "-ERR unknown command 'DEL' (the prototype serves GET, SET and PING)"},
	} {
		if got := c.do(tc.args...); got != tc.want {
			t.Errorf("%.40q: got %.60q, want %.60q", tc.args, got, tc.want)
		}
	}
	// An inline command, and a request that arrives a byte at a time.
	c.send([]byte("GET k\r\n"))
	if got := c.reply(); got != "$v2" {
		t.Errorf("inline GET: got %q", got)
	}
	for _, b := range encode(nil, "SET", "split", "value") {
		c.send([]byte{b})
	}
	if got := c.reply(); got != "+OK" {
		t.Errorf("SET sent byte by byte: got %q", got)
	}
	// A protocol error is answered, then the connection is closed.
	c.send([]byte("*1\r\n$x\r\n"))
	if got := c.reply(); !strings.HasPrefix(got, "-ERR Protocol error") {
		t.Errorf("protocol error: got %q", got)
	}
	if _, err := c.r.ReadByte(); err != io.EOF {
		t.Errorf("after a protocol error: %v, want EOF", err)
	}
}

// Several clients pipeline SETs and GETs whose keys alternate between two
// servers, while the first server is held in DEBUG SLEEP: the second
// server's replies arrive first and must wait for the earlier ones, and
// the requests of all the clients share one connection per server and
// loop. Every client must get its replies in its own order, and every key
// must be on the server ketama gives it.
func TestPipelinedClientsTwoServers(t *testing.T) {
	servers := []*testutil.Server{testutil.StartRedis(t), testutil.StartRedis(t)}
	px, cfg := startProxy(t, servers...)
	p, err := cfg.build(rand.Uint32)
	if err != nil {
		t.Fatal(err)
	}
	const clients, perClient = 6, 200
	keys := make([][]string, clients)
	where := map[string]int{}
	for ci := range clients {
		want := 0 // alternate servers within each client's pipeline
		for i := 0; len(keys[ci]) < perClient; i++ {
			k := fmt.Sprintf("c%d:k%d", ci, i)
			if s := p.ring.Pick([]byte(k)); s == want {
				keys[ci] = append(keys[ci], k)
				where[k] = s
				want = 1 - want
			}
		}
	}
	// Hold the first server: its replies come after the second's.
	slept := make(chan error, 1)
	go func() {
		_, err := testutil.RedisDo(servers[0].Addr, "", "DEBUG", "SLEEP", "0.3")
		slept <- err
	}()
	time.Sleep(50 * time.Millisecond)

	// A client that leaves (with a reset) with requests in flight: its
	// replies, when they come, are dropped, and nobody else's disturbed.
	gone := dial(t, px.Addr())
	gone.send(encode(encode(encode(nil, "GET", keys[0][0]), "GET", keys[0][1]), "PING"))
	time.Sleep(20 * time.Millisecond)
	if err := gone.Conn.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	gone.Close()

	var wg sync.WaitGroup
	errs := make(chan string, clients)
	for ci := range clients {
		c := dial(t, px.Addr())
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []byte
			for i, k := range keys[ci] {
				batch = encode(batch, "SET", k, fmt.Sprintf("v%d:%d", ci, i))
				batch = encode(batch, "GET", k)
			}
			if _, err := c.Write(batch); err != nil {
				errs <- err.Error()
				return
			}
			r := bufio.NewReader(c)
			for i := range keys[ci] {
				for _, want := range []string{"+OK\r\n", fmt.Sprintf("$%d\r\nv%d:%d\r\n", len(fmt.Sprintf("v%d:%d", ci, i)), ci, i)} {
					got := make([]byte, len(want))
					if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
						errs <- fmt.Sprintf("client %d request %d: got %q (%v), want %q", ci, i, got, err, want)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if err := <-slept; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	// Placement: each key is on its ketama server and not on the other.
	for k, s := range where {
		v, err := testutil.RedisDo(servers[s].Addr, "", "EXISTS", k)
		if err != nil || v != int64(1) {
			t.Errorf("%s: EXISTS on server %d = %v, %v; want 1", k, s, v, err)
		}
		if v, _ := testutil.RedisDo(servers[1-s].Addr, "", "EXISTS", k); v != int64(0) {
			t.Errorf("%s is also on server %d", k, 1-s)
		}
	}
}

// A server that goes away answers its waiting requests with errors; the
// next request dials again.
func TestServerLost(t *testing.T) {
	srv := testutil.StartRedis(t)
	px, _ := startProxy(t, srv)
	c := dial(t, px.Addr())
	if got := c.do("SET", "a", "1"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	srv.Restart(t)
	got := c.do("GET", "a")
	if !strings.HasPrefix(got, "-ERR server ") && got != "$nil" {
		t.Errorf("GET across a restart: %q, want an error or a miss", got)
	}
	if got := c.do("GET", "a"); got != "$nil" {
		t.Errorf("GET after the restart: %q, want $nil (no persistence)", got)
	}
}

func TestConfigErrors(t *testing.T) {
	cfg := Config{Listen: "nowhere", Hash: "md6", Distribution: "round", Servers: []string{"a:b", "127.0.0.1:1:0"}}
	_, err := cfg.build(rand.Uint32)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"-listen", "-loops 0", "-hash \"md6\"", "-distribution \"round\"", "\"a:b\"", "weight"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// A client that pipelines more requests than it may have in flight, and
// more reply bytes than it may have unread, is paused, not refused: it
// gets every reply, in order, once it reads them.
func TestLimits(t *testing.T) {
	px, _ := startProxy(t, testutil.StartRedis(t))
	// A small receive buffer, so that the proxy's writes to this client
	// block and it waits for EPOLLOUT.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	nc, err := d.Dial("tcp", px.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &conn{t, nc, bufio.NewReader(nc)}
	value := strings.Repeat("x", 100<<10)
	if got := c.do("SET", "big", value); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	var batch []byte
	const small = 2 * maxInflight
	for i := range small {
		batch = encode(batch, "GET", "k"+strconv.Itoa(i%10))
	}
	const large = 8 * maxOutput / (100 << 10)
	for range large {
		batch = encode(batch, "GET", "big")
	}
	batch = encode(batch, "PING", "last")
	go func() { _, _ = c.Write(batch) }()
	time.Sleep(200 * time.Millisecond) // let the proxy fill up and pause
	for i := range small {
		if got := c.reply(); got != "$nil" {
			t.Fatalf("GET %d: %q", i, got)
		}
	}
	for i := range large {
		if got := c.reply(); got != "$"+value {
			t.Fatalf("GET big %d: %.20q…", i, got)
		}
	}
	if got := c.reply(); got != "$last" {
		t.Fatalf("PING: %q", got)
	}
}
