//go:build linux

package proxy

// What large values and a client that floods cost the proxy, measured as
// the peak resident memory (VmHWM) of a shardproxy process built without
// the race detector (whose shadow memory would hide what is measured).

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// procStatus returns a field of /proc/PID/status in bytes (VmRSS, VmHWM).
func procStatus(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// resetPeak makes VmHWM start again from the current resident size.
func resetPeak(t *testing.T, pid int) {
	t.Helper()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS of the proxy: %v", err)
	}
}

// startProxyProcess runs a shardproxy process with one pool, configured by
// yaml, in which {{addr}} is the pool's address.
func startProxyProcess(t *testing.T, yaml string) (pid int, addr string) {
	t.Helper()
	bin := testutil.BuildPackage(t, "./cmd/shardproxy")
	addr = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	yaml = strings.ReplaceAll(yaml, "{{addr}}", addr)
	conf := filepath.Join(t.TempDir(), "pool.yml")
	if err := os.WriteFile(conf, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := testutil.StartProcess(t, bin, []string{"-c", conf, "-a", "127.0.0.1",
		"-s", strconv.Itoa(testutil.FreePort(t)), "-v", "4"}, addr)
	return srv.PID(), addr
}

// TestMemoryLargeValue: a 64 MiB value costs the proxy at most 1.2 times its
// size while it is forwarded (it used to cost three to four times).
func TestMemoryLargeValue(t *testing.T) {
	const size = 64 << 20
	for _, proto := range []string{"redis", "memcached"} {
		t.Run(proto, func(t *testing.T) {
			var (
				pool, req string
				ok        string
			)
			value := strings.Repeat("v", size)
			if proto == "redis" {
				srv := testutil.StartRedis(t)
				pool = "p:\n  listen: {{addr}}\n  redis: true\n  servers:\n   - " + srv.Addr + ":1\n"
				req, ok = cmd("SET", "big", value), "+OK\r\n"
			} else {
				srv := testutil.StartMemcached(t, "-I", "128m", "-m", "512")
				pool = "p:\n  listen: {{addr}}\n  servers:\n   - " + srv.Addr + ":1\n"
				req, ok = fmt.Sprintf("set big 0 0 %d\r\n%s\r\n", size, value), "STORED\r\n"
			}
			pid, addr := startProxyProcess(t, pool)
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			r := bufio.NewReader(c)
			// A first request connects to the server.
			warm := cmd("SET", "small", "v")
			if proto != "redis" {
				warm = "set small 0 0 1\r\nv\r\n"
			}
			if _, err := io.WriteString(c, warm); err != nil {
				t.Fatal(err)
			}
			if line, err := r.ReadString('\n'); err != nil || line != ok {
				t.Fatalf("warm-up: %q %v", line, err)
			}
			before := procStatus(t, pid, "VmRSS")
			resetPeak(t, pid)
			if _, err := io.WriteString(c, req); err != nil {
				t.Fatal(err)
			}
			if line, err := r.ReadString('\n'); err != nil || line != ok {
				t.Fatalf("%d-byte value: %q %v", size, line, err)
			}
			growth := procStatus(t, pid, "VmHWM") - before
			t.Logf("%s: a %d MiB value raised the proxy's peak RSS by %.1f MiB (%.2fx)",
				proto, size>>20, float64(growth)/(1<<20), float64(growth)/size)
			if growth > size*12/10 {
				t.Errorf("peak RSS grew by %d bytes for a %d-byte value, want at most 1.2x", growth, size)
			}
		})
	}
}

// TestMemoryFloodingClient: a client that pipelines 1 KB SETs and GETs of a
// 4 MiB value without reading makes the proxy hold about its
// client_output_limit (it used to reach gigabytes).
func TestMemoryFloodingClient(t *testing.T) {
	const (
		limit = 16 << 20
		value = 4 << 20
	)
	srv := testutil.StartRedis(t)
	pid, addr := startProxyProcess(t, fmt.Sprintf("p:\n  listen: {{addr}}\n  redis: true\n  client_output_limit: %d\n  servers:\n   - %s:1\n", limit, srv.Addr))
	setup := dialRaw(t, addr)
	if got := setup.roundTrip(cmd("SET", "big", strings.Repeat("b", value))); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	before := procStatus(t, pid, "VmRSS")
	resetPeak(t, pid)

	flooder, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer flooder.Close()
	chunk := floodChunk()
	_ = flooder.SetWriteDeadline(time.Now().Add(2 * time.Second))
	var sent int
	for sent < 200<<20 {
		n, err := io.WriteString(flooder, chunk)
		sent += n
		if err != nil {
			break
		}
	}
	// The proxy still serves others.
	if got := setup.roundTrip(cmd("GET", "flood")); got != fmt.Sprintf("$1000\r\n%s\r\n", strings.Repeat("f", 1000)) {
		t.Fatalf("GET while flooded: %.40q", got)
	}
	growth := procStatus(t, pid, "VmHWM") - before
	t.Logf("flooder wrote %d KiB of requests; the proxy's peak RSS grew by %.1f MiB (client_output_limit %d MiB)",
		sent>>10, float64(growth)/(1<<20), limit>>20)
	if growth > 3*limit+32<<20 {
		t.Errorf("peak RSS grew by %d bytes, want about client_output_limit (%d)", growth, limit)
	}
}
