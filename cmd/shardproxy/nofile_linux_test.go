package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// nofileClient is one client connection of TestOutOfDescriptors.
type nofileClient struct {
	conn net.Conn
	r    *bufio.Reader
}

// refusal is what a client that the proxy turned away saw.
type refusal struct {
	line    string        // the error line, "" if the proxy closed without one
	elapsed time.Duration // from dialling to the close
}

// nofileTry dials addr, sends req and reads one line within a bound. A
// client whose line is ok is served and returned open; any other line (an
// error reply) must be followed by the proxy's close, and the client comes
// back as a refusal. A client that sees neither within the bound fails the
// test: it hung.
func nofileTry(t *testing.T, addr, req, ok string) (*nofileClient, *refusal) {
	t.Helper()
	const bound = 2 * time.Second
	start := time.Now()
	c, err := net.DialTimeout("tcp", addr, bound)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	_ = c.SetDeadline(start.Add(bound))
	if _, err := io.WriteString(c, req); err != nil {
		// The proxy may have closed it already: read what it wrote.
		t.Logf("write to %s: %v", addr, err)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err == nil && line == ok {
		_ = c.SetDeadline(time.Time{})
		return &nofileClient{conn: c, r: r}, nil
	}
	defer c.Close()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("client of %s hung: no reply and no close within %v (read %q)", addr, bound, line)
	}
	if err == nil {
		// An error line: the close must follow it.
		if _, err := r.ReadByte(); err == nil || errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("client of %s got %q and then was not closed (%v)", addr, line, err)
		}
	} else if line != "" {
		t.Fatalf("client of %s: partial line %q, %v", addr, line, err)
	}
	return nil, &refusal{line: line, elapsed: time.Since(start)}
}

// TestOutOfDescriptors runs the proxy with RLIMIT_NOFILE 64 and connects
// more clients than it can hold: the ones it cannot serve are accepted and
// closed at once with an error line, never left waiting in the kernel's
// queue; the served ones keep working; service resumes as soon as clients
// leave; the refusals are counted in client_refused and logged at most
// about once a second. Two pools (Redis and Memcached) share the process
// and its one spare descriptor.
func TestOutOfDescriptors(t *testing.T) {
	redis := testutil.StartRedis(t)
	mc := testutil.StartMemcached(t)
	alpha := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	beta := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	statsPort := testutil.FreePort(t)
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  preconnect: true\n  servers:\n   - %s:1\n"+
		"beta:\n  listen: %s\n  preconnect: true\n  servers:\n   - %s:1\n", alpha, redis.Addr, beta, mc.Addr))
	logPath := filepath.Join(t.TempDir(), "proxy.log")
	cmd := startForeground(t, alpha, "-c", conf, "-o", logPath, "-s", strconv.Itoa(statsPort), "-a", "127.0.0.1")
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("proxy log:\n%s", b)
		}
	})
	const limit = 64
	if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: limit, Max: limit}, nil); err != nil {
		t.Fatal(err)
	}
	testutil.WaitListening(t, "tcp", beta, 5*time.Second)

	const refusedLine = "-ERR max number of clients reached\r\n"
	set := func(i int) string { return fmt.Sprintf("SET k%d v%d\r\n", i, i) }

	// Fill the proxy, then keep connecting: a bounded number of clients.
	const attempts = 200
	var (
		served   []*nofileClient
		refusals []refusal
	)
	exhausted := time.Now()
	for i := range attempts {
		c, ref := nofileTry(t, alpha, set(i), "+OK\r\n")
		if c != nil {
			served = append(served, c)
			exhausted = time.Now()
			continue
		}
		refusals = append(refusals, *ref)
	}
	defer func() {
		for _, c := range served {
			c.conn.Close()
		}
	}()
	if len(served) < 20 || len(refusals) < 100 {
		t.Fatalf("%d clients served, %d refused: want the proxy's %d descriptors to run out", len(served), len(refusals), limit)
	}
	refusalTimes(t, "alpha (Redis)", refusals, refusedLine)

	// The second pool refuses as promptly, through the same spare.
	var betaRefusals []refusal
	for range 5 {
		if c, ref := nofileTry(t, beta, "set x 0 0 1\r\na\r\n", "STORED\r\n"); c != nil {
			c.conn.Close()
			t.Fatal("beta served a client while out of descriptors")
		} else {
			betaRefusals = append(betaRefusals, *ref)
		}
	}
	refusalTimes(t, "beta (Memcached)", betaRefusals, "SERVER_ERROR max number of clients reached\r\n")

	// The clients already connected keep working, through the server.
	for i, c := range served {
		_ = c.conn.SetDeadline(time.Now().Add(2 * time.Second))
		fmt.Fprintf(c.conn, "GET k%d\r\n", i)
		want := fmt.Sprintf("$%d\r\nv%d\r\n", len(fmt.Sprint(i))+1, i)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(c.r, got); err != nil || string(got) != want {
			t.Fatalf("served client %d: GET read %q, %v; want %q", i, got, err, want)
		}
	}

	// Most clients leave: a new client is served at once.
	keep := 5
	freed := time.Now()
	for _, c := range served[keep:] {
		c.conn.Close()
	}
	served = served[:keep]
	var late int
	var resumed time.Duration
	for {
		c, ref := nofileTry(t, alpha, set(attempts), "+OK\r\n")
		if c != nil {
			resumed = time.Since(freed)
			c.conn.Close()
			break
		}
		if ref.line != "" && ref.line != refusedLine {
			t.Fatalf("refused with %q", ref.line)
		}
		late++
		if time.Since(freed) > 5*time.Second {
			t.Fatalf("no client served 5 s after %d clients left (%d refused since)", len(served), late)
		}
	}
	t.Logf("served again %v after the clients left (%d refused meanwhile)", resumed, late)
	if resumed > 500*time.Millisecond {
		t.Errorf("service resumed %v after clients left, want well under 500ms", resumed)
	}
	if c, ref := nofileTry(t, beta, "set x 0 0 1\r\na\r\n", "STORED\r\n"); c == nil {
		t.Errorf("beta still refuses after clients left: %q", ref.line)
	} else {
		c.conn.Close()
	}

	// Counted in client_refused, per pool.
	var doc map[string]any
	if err := json.Unmarshal(testutil.ReadStats(t, fmt.Sprintf("127.0.0.1:%d", statsPort)), &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		name string
		want int
	}{{"alpha", len(refusals) + late}, {"beta", len(betaRefusals)}} {
		pool, _ := doc[p.name].(map[string]any)
		if got, _ := pool["client_refused"].(float64); int(got) != p.want {
			t.Errorf("%s client_refused = %v, want %d", p.name, pool["client_refused"], p.want)
		}
	}

	// Logged at most about once a second per pool, with counts that add
	// up to the stats' (the last second's count comes when it ends).
	var warnings []string
	var logged int
	wantLogged := len(refusals) + late
	for deadline := time.Now().Add(5 * time.Second); logged != wantLogged && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		b, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		warnings, logged = nil, 0
		for line := range strings.Lines(string(b)) {
			if !strings.Contains(line, `msg="clients refused: out of file descriptors" pool=alpha refused=`) {
				continue
			}
			warnings = append(warnings, line)
			_, n, _ := strings.Cut(line, " refused=")
			n, _, _ = strings.Cut(n, " ")
			v, err := strconv.Atoi(n)
			if err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
			logged += v
		}
	}
	span := time.Since(exhausted)
	if logged != wantLogged || len(warnings) > 2+int(span/time.Second) {
		t.Errorf("%d refusal warnings for alpha over %v counting %d refusals; want at most %d counting %d:\n%s",
			len(warnings), span, logged, 2+int(span/time.Second), wantLogged, strings.Join(warnings, ""))
	}
	t.Logf("alpha's refusals logged in %d lines", len(warnings))
	if cmd.ProcessState != nil {
		t.Fatalf("the proxy exited: %v", cmd.ProcessState)
	}
}

// refusalTimes checks that every refusal was prompt and reports the times;
// a refusal may lack its error line (the close is what matters), but most
// must carry it.
func refusalTimes(t *testing.T, pool string, refusals []refusal, line string) {
	t.Helper()
	var times []time.Duration
	var withLine int
	for _, r := range refusals {
		times = append(times, r.elapsed)
		switch r.line {
		case line:
			withLine++
		case "":
		default:
			t.Errorf("%s: refused with %q, want %q", pool, r.line, line)
		}
	}
	slices.Sort(times)
	t.Logf("%s: %d refused (%d with the error line): median %v, max %v", pool, len(times), withLine, times[len(times)/2], times[len(times)-1])
	if worst := times[len(times)-1]; worst > 500*time.Millisecond {
		t.Errorf("%s: a refusal took %v, want well under 500ms", pool, worst)
	}
	if withLine < len(refusals)/2 {
		t.Errorf("%s: only %d of %d refused clients got %q", pool, withLine, len(refusals), line)
	}
}
