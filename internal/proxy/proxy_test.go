package proxy

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/logging"
	"github.com/shardproxy/shardproxy/internal/testutil"
)

// startProxy runs a proxy in-process with the configuration yaml; every
// "{{port}}" in it is replaced by a free port (the pool's listen port).
// It returns the proxy and the first pool's address.
func startProxy(t testing.TB, yaml string) (*Proxy, string) {
	t.Helper()
	for strings.Contains(yaml, "{{port}}") {
		yaml = strings.Replace(yaml, "{{port}}", fmt.Sprint(testutil.FreePort(t)), 1)
	}
	cfg, err := config.Parse("test.yml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	px := startProxyOpts(t, cfg, Options{})
	return px, px.Pools()[0].Addr().String()
}

// startProxyOpts starts a proxy of cfg with opts (the tests' logger and
// buffer size filled in) and shuts it down when the test ends.
func startProxyOpts(t testing.TB, cfg *config.Config, opts Options) *Proxy {
	t.Helper()
	var logOut io.Writer = io.Discard
	if testing.Verbose() {
		logOut = os.Stderr
	}
	opts.Logger = logging.NewLogger(logOut, logging.NewVerbosity(logging.Info))
	opts.BufSize = 16384
	px, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := px.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return px
}

// serverLines formats servers as a YAML servers: list.
func serverLines(servers ...*testutil.Server) string {
	var b strings.Builder
	for _, s := range servers {
		fmt.Fprintf(&b, "   - %s:1\n", s.Addr)
	}
	return b.String()
}

// rawClient speaks raw bytes to the proxy, for exact reply checks.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, r: bufio.NewReader(c)}
}

func (c *rawClient) send(s string) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readReply reads one complete RESP reply and returns it verbatim.
func (c *rawClient) readReply() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	if err := readRESP(c.r, &b); err != nil {
		c.t.Fatalf("read reply: %v (so far %q)", err, b.String())
	}
	return b.String()
}

func readRESP(r *bufio.Reader, b *strings.Builder) error {
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	b.WriteString(line)
	switch line[0] {
	case '$':
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		if n < 0 {
			return nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return err
		}
		b.Write(buf)
	case '*':
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		for i := 0; i < n; i++ {
			if err := readRESP(r, b); err != nil {
				return err
			}
		}
	}
	return nil
}

// roundTrip sends req and returns the one reply.
func (c *rawClient) roundTrip(req string) string {
	c.t.Helper()
	c.send(req)
	return c.readReply()
}

// expectClosed checks that the proxy closed the connection.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := c.r.ReadByte(); err == nil {
		c.t.Fatalf("connection still open: read %q", b)
	}
}

var _ = slog.LevelInfo

// cmd encodes a request as multibulk (nutcracker rejects inline commands).
func cmd(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}
