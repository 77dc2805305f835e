package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// redisPoolConf is a Redis pool named name on listen over servers.
func redisPoolConf(name, listen, extra string, servers ...*testutil.Server) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:\n  listen: %s\n  redis: true\n%s  servers:\n", name, listen, extra)
	for _, s := range servers {
		fmt.Fprintf(&b, "   - %s:1\n", s.Addr)
	}
	return b.String()
}

// pingNew does a PING on a new connection to addr.
func pingNew(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(c, "PING\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING: %q", line)
	}
	return nil
}

func refusedConnect(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return strings.Contains(err.Error(), "connection refused")
}

// rawStats reads the stats port's JSON.
func rawStats(t *testing.T, addr string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// descriptors sorts the process's open descriptors: sockets, and what the
// others are (readlink of /proc/PID/fd/N).
func descriptors(t *testing.T, pid int) (sockets int, others []string) {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if strings.HasPrefix(target, "socket:") {
			sockets++
		} else {
			others = append(others, e.Name()+"="+target)
		}
	}
	return sockets, others
}

// TestReloadSignal drives SIGUSR1 on the binary: an invalid file changes
// nothing and is reported with file:line and counted; twemproxy's
// test_pool_add_del — a second pool over the same servers added, then
// both replaced by one with preconnect on a third address — leaves the
// process with exactly the descriptors it needs (twemproxy's count: 5
// sockets).
func TestReloadSignal(t *testing.T) {
	rs := []*testutil.Server{testutil.StartRedis(t), testutil.StartRedis(t)}
	a, b, c := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)), fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	dir := t.TempDir()
	conf := filepath.Join(dir, "nutcracker.yml")
	logPath := filepath.Join(dir, "proxy.log")
	write := func(yaml string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(redisPoolConf("alpha", a, "", rs...))
	statsPort := testutil.FreePort(t)
	statsAddr := fmt.Sprintf("127.0.0.1:%d", statsPort)
	cmd := startForeground(t, a, "-c", conf, "-o", logPath, "-v", "6", "-s", strconv.Itoa(statsPort), "-a", "127.0.0.1", "-i", "10")
	pid := cmd.Process.Pid
	readFileEventually(t, logPath, "shardproxy started")
	_, baseline := descriptors(t, pid)

	// An invalid file: nothing changes, every problem is logged.
	write(redisPoolConf("alpha", a, "  hashh: fnv1a_64\n", rs...) + redisPoolConf("beta", b, "  timeout: -5\n", rs...))
	_ = syscall.Kill(pid, syscall.SIGUSR1)
	readFileEventually(t, logPath, "reload refused")
	readFileEventually(t, logPath, conf+`:4: pool \"alpha\": unknown key \"hashh\"`)
	readFileEventually(t, logPath, conf+`:11: pool \"beta\": timeout`)
	if err := pingNew(a); err != nil {
		t.Errorf("after a refused reload: %v", err)
	}
	if !refusedConnect(b) {
		t.Error("a refused reload opened beta's address")
	}
	if s := rawStats(t, statsAddr); !strings.Contains(s, `"reloads":0, "reloads_failed":1, `) {
		t.Errorf("stats after a refused reload: %s", s)
	}

	// A second pool over the same servers (twemproxy's test_pool_add_del).
	write(redisPoolConf("alpha", a, "", rs...) + redisPoolConf("beta", b, "", rs...))
	_ = syscall.Kill(pid, syscall.SIGUSR1)
	readFileEventually(t, logPath, "configuration reloaded")
	for _, addr := range []string{a, b} {
		if err := pingNew(addr); err != nil {
			t.Errorf("%s after adding beta: %v", addr, err)
		}
	}
	if s := rawStats(t, statsAddr); !strings.Contains(s, `"reloads":1, "reloads_failed":1, `) || !strings.Contains(s, `"beta": {`) {
		t.Errorf("stats after adding beta: %s", s)
	}

	// Both replaced by one pool with preconnect on a third address.
	write(redisPoolConf("gamma", c, "  preconnect: true\n", rs...))
	_ = syscall.Kill(pid, syscall.SIGUSR1)
	readFileEventually(t, logPath, `msg="configuration reloaded" conf=`+conf+" pools=1")
	for _, addr := range []string{a, b} {
		if !refusedConnect(addr) {
			t.Errorf("%s still accepts", addr)
		}
	}
	client, err := net.Dial("tcp", c)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	fmt.Fprint(client, "PING\r\n")
	if line, err := bufio.NewReader(client).ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING on the new pool: %q, %v", line, err)
	}
	if s := rawStats(t, statsAddr); !strings.Contains(s, `"gamma": {`) || strings.Contains(s, `"alpha"`) || strings.Contains(s, `"beta"`) {
		t.Errorf("stats after the replacement: %s", s)
	}
	// The listener, the stats listener, one per backend connection (two
	// servers, one connection each), one per client — twemproxy's count —
	// and besides sockets, what the process had at start.
	want := 1 + 1 + 2 + 1
	var sockets int
	var others []string
	settled := func() bool {
		sockets, others = descriptors(t, pid)
		return sockets == want && len(others) == len(baseline)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !settled() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if sockets != want || len(others) != len(baseline) {
		t.Errorf("%d sockets, want %d (listener, stats, 2 server connections, 1 client); other descriptors %v, at start %v",
			sockets, want, others, baseline)
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if code := waitExit(t, cmd, 10*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}
