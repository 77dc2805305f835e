package proxy

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/testutil"
)

// newHandOverProxy builds, without starting, a proxy for yaml that
// adopts inherited.
func newHandOverProxy(t *testing.T, yaml string, inherited map[string]*os.File) *Proxy {
	t.Helper()
	cfg, err := config.Parse("test.yml", []byte(yaml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	px, err := New(cfg, Options{Inherited: inherited})
	if err != nil {
		t.Fatal(err)
	}
	return px
}

func shutdownNow(t *testing.T, px *Proxy) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := px.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

// dupFiles duplicates a hand-over, for a second successor.
func dupFiles(t *testing.T, files map[string]*os.File) map[string]*os.File {
	t.Helper()
	dup := make(map[string]*os.File, len(files))
	for key, f := range files {
		ln, err := net.FileListener(f)
		if err != nil {
			t.Fatal(err)
		}
		d, err := ln.(interface{ File() (*os.File, error) }).File()
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		ln.Close()
		if err != nil {
			t.Fatal(err)
		}
		dup[key] = d
	}
	return dup
}

// TestHandOverListeners follows the listener API of a binary upgrade: the
// sockets are handed over (ListenerFiles, Options.Inherited); a successor
// whose Start fails leaves them, unix socket path included, to the old
// proxy; one that starts takes them over and the old one stops accepting
// (StopAccepting) without unlinking the path.
func TestHandOverListeners(t *testing.T) {
	dir, err := os.MkdirTemp("", "sp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "p.sock")
	tcpAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	yaml := fmt.Sprintf("tcp:\n  listen: %s\n  redis: true\n  servers:\n   - 127.0.0.1:1:1\n"+
		"sock:\n  listen: %s\n  redis: true\n  servers:\n   - 127.0.0.1:1:1\n", tcpAddr, sock)

	old := newHandOverProxy(t, yaml, nil)
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	files, err := old.ListenerFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files["tcp:"+tcpAddr] == nil || files["unix:"+sock] == nil {
		t.Fatalf("ListenerFiles: %v", files)
	}

	// A third pool on a taken address: the successor cannot start.
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	busy := yaml + fmt.Sprintf("busy:\n  listen: %s\n  redis: true\n  servers:\n   - 127.0.0.1:1:1\n", hold.Addr())
	if err := newHandOverProxy(t, busy, dupFiles(t, files)).Start(); err == nil {
		t.Fatal("a successor with a taken address started")
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the failed successor removed the socket path: %v", err)
	}
	for _, addr := range []string{tcpAddr, sock} {
		if got := dialRaw(t, addr).roundTrip(cmd("PING")); got != "+PONG\r\n" {
			t.Fatalf("old proxy after a failed successor, %s: %q", addr, got)
		}
	}

	successor := newHandOverProxy(t, yaml, files)
	if err := successor.Start(); err != nil {
		t.Fatal(err)
	}
	defer shutdownNow(t, successor)
	if len(files) != 0 {
		t.Errorf("inherited files not taken: %v", files)
	}
	held := dialRaw(t, sock) // accepted by either: both accept now
	if got := held.roundTrip(cmd("PING")); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	old.StopAccepting()
	for _, addr := range []string{tcpAddr, sock} {
		c := dialRaw(t, addr)
		if got := c.roundTrip(cmd("PING")); got != "+PONG\r\n" {
			t.Fatalf("%s after StopAccepting: %q", addr, got)
		}
	}
	if n := successor.Clients(); n < 2 {
		t.Errorf("successor has %d clients, want the 2 that came after StopAccepting", n)
	}
	// The client the old proxy accepted, if it did, is still served.
	if got := held.roundTrip(cmd("PING")); got != "+PONG\r\n" {
		t.Fatalf("PING on a connection made before StopAccepting: %q", got)
	}
	shutdownNow(t, old)
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("the old proxy removed the socket path it handed over: %v", err)
	}
	if got := dialRaw(t, sock).roundTrip(cmd("PING")); got != "+PONG\r\n" {
		t.Fatalf("after the old proxy stopped: %q", got)
	}
}
