package testutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// reply sends req on c and reads one reply: a line, or a whole RESP bulk
// string or array, returned as raw bytes.
func reply(t *testing.T, c net.Conn, req string) string {
	t.Helper()
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write %q: %v", req, err)
	}
	got, err := readReply(bufio.NewReader(c))
	if err != nil {
		t.Fatalf("reply to %q: %q, %v", req, got, err)
	}
	return got
}

// readReply reads one RESP reply, or one line of a memcached reply.
func readReply(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return line, err
	}
	n, convErr := strconv.Atoi(strings.TrimSpace(line[1:]))
	switch {
	case convErr != nil || n < 0:
		return line, nil
	case line[0] == '$':
		payload := make([]byte, n+2)
		_, err := io.ReadFull(r, payload)
		return line + string(payload), err
	case line[0] == '*':
		for range n {
			elem, err := readReply(r)
			line += elem
			if err != nil {
				return line, err
			}
		}
	}
	return line, nil
}

// ping checks that the redis-protocol server s answers PING.
func ping(t *testing.T, s *Server) {
	t.Helper()
	if got := reply(t, s.Dial(t), "PING\r\n"); got != "+PONG\r\n" {
		t.Fatalf("%v: PING = %q, want +PONG", s, got)
	}
}

// processGone reports whether pid no longer exists, or is a zombie waiting
// for a PID 1 that does not reap (as in some containers).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || procState(pid) == 'Z'
}

// fatalRecorder is a testing.TB whose Fatal records the message and ends
// only the goroutine, so tests can check how this package fails.
type fatalRecorder struct {
	testing.TB
	msg string // written before Goexit, read after the goroutine ends
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatal(args ...any) {
	f.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// catchFatal runs fn and returns the message it failed with ("" if none).
func catchFatal(t *testing.T, fn func(tb testing.TB)) string {
	t.Helper()
	f := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f.msg
}

func TestFreePortUnique(t *testing.T) {
	seen := make(map[int]bool)
	for range 50 {
		p := FreePort(t)
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			t.Fatalf("FreePort returned %d, which is not free: %v", p, err)
		}
		l.Close()
	}
}

// TestFreePortAcrossProcesses: the test binaries of `go test ./...` run in
// parallel, and a port one of them reserved must not be handed to another
// (the cause of a CI failure: a sentinel test started redis-server on a port
// another package's server had just taken). The child is this test binary
// again, asked to lock the parent's ports.
func TestFreePortAcrossProcesses(t *testing.T) {
	if ports := os.Getenv("TESTUTIL_LOCK_PORTS"); ports != "" {
		for _, f := range strings.Fields(ports) {
			p, _ := strconv.Atoi(f)
			fmt.Printf("%d:%v\n", p, lockPort(p))
		}
		return
	}
	lo, hi, ok := portRange()
	if !ok {
		t.Skip("the ephemeral port range leaves no room below it; FreePort falls back to the kernel's choice")
	}
	mine := []string{strconv.Itoa(FreePort(t)), strconv.Itoa(FreePort(t))}
	for _, p := range mine {
		if n, _ := strconv.Atoi(p); n < lo || n >= hi {
			t.Errorf("FreePort returned %d, outside %d-%d", n, lo, hi-1)
		}
	}
	// A port this process reserved and gave up again, to show the child can
	// lock at all.
	spare := FreePort(t)
	unlock := syscall.Flock_t{Type: syscall.F_UNLCK, Start: int64(spare), Len: 1}
	if err := syscall.FcntlFlock(portLockFile().Fd(), syscall.F_SETLK, &unlock); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestFreePortAcrossProcesses$")
	cmd.Env = append(os.Environ(), "TESTUTIL_LOCK_PORTS="+strings.Join(append(mine, strconv.Itoa(spare)), " "))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	for _, p := range mine {
		if !strings.Contains(string(out), p+":false") {
			t.Errorf("another process could lock port %s, which FreePort gave this one:\n%s", p, out)
		}
	}
	if !strings.Contains(string(out), strconv.Itoa(spare)+":true") {
		t.Errorf("another process could not lock the unreserved port %d:\n%s", spare, out)
	}
}

func TestBinary(t *testing.T) {
	if p := Binary(t, "redis-server"); !filepath.IsAbs(p) {
		t.Errorf("Binary(redis-server) = %q, want an absolute path", p)
	}
	// nutcracker is in /usr/sbin on Debian, which may not be in PATH.
	t.Setenv("PATH", "/usr/bin:/bin")
	if p := Binary(t, "nutcracker"); p == "" {
		t.Error("Binary(nutcracker) not found via the sbin fallback")
	}

	// A program that is not in the list fails, naming the list, even
	// when it is installed.
	unlisted := "sh" // a variable: TestProgramsListed rightly rejects the constant
	got := catchFatal(t, func(tb testing.TB) { Binary(tb, unlisted) })
	if want := "sh is not in scripts/programs.txt, the list of programs tests may run: add it there with its Debian package"; got != want {
		t.Errorf("Binary(sh) failed with %q, want %q", got, want)
	}
}

func TestMissingBinaryMessage(t *testing.T) {
	for _, tc := range []struct {
		pkg  string
		ci   bool
		want string
	}{
		{"no-such-pkg", false, "no-such-server-binary not found: apt-get install no-such-pkg (or run make test, which installs it)"},
		{"no-such-pkg", true, "no-such-server-binary not found (CI=true): scripts/install-deps.sh installs the Debian package no-such-pkg; did make test run it?"},
		{"-", true, "no-such-server-binary not found in PATH or /usr/local/sbin, /usr/sbin, /sbin; it does not come from a Debian package (see scripts/programs.txt)"},
	} {
		if got := missingBinaryMessage("no-such-server-binary", tc.pkg, tc.ci); got != tc.want {
			t.Errorf("package %q, CI %v: %q, want %q", tc.pkg, tc.ci, got, tc.want)
		}
	}
}

func TestRedis(t *testing.T) {
	s := StartRedis(t)
	ping(t, s)
	if s.Network != "tcp" || s.Addr != fmt.Sprintf("127.0.0.1:%d", s.Port) {
		t.Errorf("Network, Addr, Port = %q, %q, %d", s.Network, s.Addr, s.Port)
	}
	c := s.Dial(t)
	if got := reply(t, c, "CONFIG GET dir\r\n"); !strings.HasSuffix(got, s.Dir+"\r\n") {
		t.Errorf("CONFIG GET dir = %q, want %s", got, s.Dir)
	}
	if got := reply(t, c, "DEBUG SLEEP 0\r\n"); got != "+OK\r\n" {
		t.Errorf("DEBUG SLEEP 0 = %q, want +OK", got)
	}
}

func TestRedisExtraConfLines(t *testing.T) {
	s := StartRedis(t, "requirepass s3cret")
	c := s.Dial(t)
	if got := reply(t, c, "PING\r\n"); !strings.HasPrefix(got, "-NOAUTH") {
		t.Errorf("PING without AUTH = %q, want -NOAUTH", got)
	}
	if got := reply(t, c, "AUTH s3cret\r\n"); got != "+OK\r\n" {
		t.Errorf("AUTH = %q", got)
	}
}

func TestRedisUnix(t *testing.T) {
	var sock string
	var pid int
	t.Run("serve", func(t *testing.T) {
		s := StartRedisUnix(t)
		if s.Network != "unix" || s.Port != 0 || len(s.Addr) >= 104 {
			t.Errorf("Network, Addr, Port = %q, %q, %d", s.Network, s.Addr, s.Port)
		}
		ping(t, s)
		sock, pid = s.Addr, s.PID()
	})
	// The subtest's cleanups have run: the server is stopped, and its
	// socket directory removed.
	if !processGone(pid) {
		t.Errorf("redis-server %d still running after its test ended", pid)
	}
	if _, err := os.Stat(filepath.Dir(sock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket dir %s after the test: %v", filepath.Dir(sock), err)
	}
}

func TestSentinel(t *testing.T) {
	master := StartRedis(t)
	s := StartSentinel(t,
		fmt.Sprintf("sentinel monitor mymaster 127.0.0.1 %d 1", master.Port),
		"sentinel down-after-milliseconds mymaster 1000")
	ping(t, s)
	c := s.Dial(t)
	fmt.Fprint(c, "SENTINEL get-master-addr-by-name mymaster\r\n")
	want := fmt.Sprintf("$9\r\n127.0.0.1\r\n$%d\r\n%d\r\n", len(strconv.Itoa(master.Port)), master.Port)
	got := make([]byte, 0, 64)
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !strings.HasSuffix(string(got), want) {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("get-master-addr-by-name: %q, %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
}

func TestMemcached(t *testing.T) {
	s := StartMemcached(t, "-m", "8")
	if got := reply(t, s.Dial(t), "version\r\n"); !strings.HasPrefix(got, "VERSION 1.") {
		t.Errorf("version = %q", got)
	}
	if os.Geteuid() == 0 && !slices.Contains(s.Cmd.Args, "root") {
		t.Errorf("running as root, but memcached args %q lack -u root", s.Cmd.Args)
	}
	start := time.Now()
	s.Stop()
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Stop took %v; memcached should be woken to act on SIGTERM", d)
	}
}

func TestMemcachedOnPort(t *testing.T) {
	port := FreePort(t)
	s := StartMemcachedOnPort(t, port)
	if s.Port != port {
		t.Errorf("Port = %d, want %d", s.Port, port)
	}
	if got := reply(t, s.Dial(t), "version\r\n"); !strings.HasPrefix(got, "VERSION ") {
		t.Errorf("version = %q", got)
	}

	msg := catchFatal(t, func(tb testing.TB) { StartMemcachedOnPort(tb, port) })
	if want := fmt.Sprintf("port %d is busy", port); !strings.Contains(msg, want) {
		t.Errorf("second StartMemcachedOnPort failed with %q, want it to contain %q", msg, want)
	}
}

func TestStartRefusesAddressHeldByOthers(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	var s *Server
	msg := catchFatal(t, func(tb testing.TB) {
		s = StartProcess(tb, "sleep", []string{"60"}, l.Addr().String())
	})
	if !strings.Contains(msg, "already accepts connections") {
		t.Errorf("StartProcess failed with %q, want it to report the held address", msg)
	}
	if s != nil {
		t.Error("StartProcess returned a server")
	}
}

func TestStartFailureQuotesLog(t *testing.T) {
	start := time.Now()
	msg := catchFatal(t, func(tb testing.TB) { StartRedis(tb, "no-such-directive yes") })
	if !strings.Contains(msg, "exited during start-up") || !strings.Contains(msg, "Bad directive") {
		t.Errorf("StartRedis with a bad directive failed with:\n%s", msg)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("failing start took %v; an exited server should be noticed at once", d)
	}
}

func TestNutcracker(t *testing.T) {
	r1, r2 := StartRedis(t), StartRedis(t)
	port := FreePort(t)
	yaml := fmt.Sprintf(`alpha:
  listen: 127.0.0.1:%d
  hash: fnv1a_64
  distribution: ketama
  redis: true
  servers:
   - 127.0.0.1:%d:1
   - 127.0.0.1:%d:1
`, port, r1.Port, r2.Port)
	s := StartNutcracker(t, yaml)
	if s.Port != port {
		t.Errorf("Port = %d, want %d", s.Port, port)
	}
	c := s.Dial(t)
	if got := reply(t, c, "*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n"); got != "+OK\r\n" {
		t.Fatalf("SET through nutcracker = %q\n%s", got, s.Log())
	}
	if got := reply(t, c, "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n"); got != "$3\r\nbar\r\n" {
		t.Fatalf("GET through nutcracker = %q", got)
	}
	holders := 0
	for _, r := range []*Server{r1, r2} {
		if reply(t, r.Dial(t), "*2\r\n$6\r\nEXISTS\r\n$3\r\nfoo\r\n") == ":1\r\n" {
			holders++
		}
	}
	if holders != 1 {
		t.Errorf("key found on %d backends, want 1", holders)
	}

	stats, err := net.DialTimeout("tcp", s.StatsAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer stats.Close()
	stats.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(stats)
	if err != nil || !strings.Contains(string(b), `"service":"nutcracker"`) {
		t.Errorf("stats = %q, %v", b, err)
	}
	if !strings.Contains(s.Log(), "nutcracker-0.5.0 built for") {
		t.Errorf("Log lacks nutcracker's start line:\n%s", s.Log())
	}
}

func TestListenAddrs(t *testing.T) {
	yaml := `alpha:
  listen: 127.0.0.1:22121
beta:
    listen:   "localhost:22122"   # quoted
gamma:
  listen: /tmp/gamma 0666
  servers:
   - 127.0.0.1:6379:1
# listen: 1.2.3.4:5 is a comment
`
	want := []string{"127.0.0.1:22121", "localhost:22122", "/tmp/gamma"}
	if got := listenAddrs(yaml); !slices.Equal(got, want) {
		t.Errorf("listenAddrs = %q, want %q", got, want)
	}
}

func TestPauseResume(t *testing.T) {
	s := StartRedis(t)
	c := s.Dial(t)
	s.Pause()
	if st := procState(s.PID()); st != 'T' {
		t.Errorf("state after Pause = %q, want T", st)
	}
	io.WriteString(c, "PING\r\n")
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	buf := make([]byte, 16)
	if n, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("paused server answered %q, %v", buf[:n], err)
	}
	s.Resume()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.ReadFull(c, buf[:7]); err != nil || string(buf[:n]) != "+PONG\r\n" {
		t.Fatalf("after Resume: %q, %v", buf[:n], err)
	}
}

func TestKillRestart(t *testing.T) {
	s := StartRedis(t)
	pid := s.PID()
	s.Kill()
	if s.Running() || !processGone(pid) {
		t.Fatalf("pid %d still there after Kill", pid)
	}
	if _, err := net.Dial("tcp", s.Addr); err == nil {
		t.Fatal("killed server still accepts")
	}
	s.Kill() // no-op

	s.Restart(t)
	if s.PID() == pid || !s.Running() {
		t.Errorf("after Restart PID = %d (was %d), running %v", s.PID(), pid, s.Running())
	}
	ping(t, s)
	if !strings.Contains(s.Log(), "=== testutil: restarting redis-server") {
		t.Error("Log lacks the restart marker")
	}

	// Restart of a running server stops it first.
	pid = s.PID()
	s.Restart(t)
	if !processGone(pid) {
		t.Errorf("old pid %d still there after Restart", pid)
	}
	ping(t, s)
}

func TestStopIdempotent(t *testing.T) {
	s := StartMemcached(t)
	pid := s.PID()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(s.Stop)
	}
	wg.Wait()
	s.Stop()
	s.Kill()
	s.Pause()
	s.Resume()
	if s.Running() || s.PID() != pid {
		t.Errorf("Running = %v, PID = %d (was %d)", s.Running(), s.PID(), pid)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("kill(%d, 0) after Stop = %v, want ESRCH", pid, err)
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("/proc/%d after Stop: %v", pid, err)
	}
}

func TestStopPausedIsPrompt(t *testing.T) {
	s := StartRedis(t)
	s.Pause()
	start := time.Now()
	s.Stop()
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Stop of a paused server took %v; SIGCONT should let it act on SIGTERM", d)
	}
}

// helperEnv makes the test binary, started as a child, act as a server
// that ignores SIGTERM and leaves a grandchild in its process group.
const helperEnv = "TESTUTIL_HELPER_ADDR"

// TestHelperProcess is not a test: it is the child of
// TestStopEscalatesAndKillsGroup.
func TestHelperProcess(t *testing.T) {
	addr := os.Getenv(helperEnv)
	if addr == "" {
		return
	}
	signal.Ignore(syscall.SIGTERM)
	sleep := exec.Command("sleep", "300")
	if err := sleep.Start(); err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Printf("grandchild=%d\n", sleep.Process.Pid)
	l, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			os.Exit(1)
		}
		c.Close()
	}
}

func TestStopEscalatesAndKillsGroup(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	t.Setenv(helperEnv, addr)
	s := StartProcess(t, os.Args[0], []string{"-test.run=^TestHelperProcess$"}, addr)
	s.stopWait = 300 * time.Millisecond
	m := regexp.MustCompile(`grandchild=(\d+)`).FindStringSubmatch(s.Log())
	if m == nil {
		t.Fatalf("helper did not report its child:\n%s", s.Log())
	}
	grandchild, _ := strconv.Atoi(m[1])
	pid := s.PID()

	start := time.Now()
	s.Stop()
	if d := time.Since(start); d < s.stopWait {
		t.Errorf("Stop returned after %v, before the SIGTERM grace period", d)
	}
	if !processGone(pid) {
		t.Errorf("helper %d survived Stop", pid)
	}
	deadline := time.Now().Add(2 * time.Second)
	for !processGone(grandchild) {
		if time.Now().After(deadline) {
			syscall.Kill(grandchild, syscall.SIGKILL)
			t.Fatalf("grandchild %d survived its group's Stop", grandchild)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWaitListening(t *testing.T) {
	addr := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	errc := make(chan error, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		l, err := net.Listen("tcp", addr)
		if err == nil {
			t.Cleanup(func() { l.Close() })
		}
		errc <- err
	}()
	WaitListening(t, "tcp", addr, 5*time.Second)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}

	free := fmt.Sprintf("127.0.0.1:%d", FreePort(t))
	msg := catchFatal(t, func(tb testing.TB) { WaitListening(tb, "tcp", free, 50*time.Millisecond) })
	if !strings.Contains(msg, "not accepting connections") {
		t.Errorf("WaitListening on a closed port failed with %q", msg)
	}
}

func TestGoBuild(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "go.mod"), []byte("module example.com/hello\n\ngo 1.26\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "cmd", "hello"), 0o755)
	os.WriteFile(filepath.Join(root, "cmd", "hello", "main.go"), []byte(
		"package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"), 0o644)
	bin := filepath.Join(t.TempDir(), "hello")
	if err := goBuild(root, "./cmd/hello", bin, raceEnabled); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin).Output(); err != nil || string(out) != "hello\n" {
		t.Errorf("built binary printed %q, %v", out, err)
	}

	os.WriteFile(filepath.Join(root, "cmd", "hello", "main.go"), []byte("package main\n\nfunc main() { undefined() }\n"), 0o644)
	if err := goBuild(root, "./cmd/hello", bin, false); err == nil || !strings.Contains(err.Error(), "undefined") {
		t.Errorf("building broken code: %v, want the compiler error", err)
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "shardproxy")); err != nil {
		t.Errorf("moduleRoot = %s, which lacks cmd/shardproxy: %v", root, err)
	}
}

func TestReapStaleBuildDirs(t *testing.T) {
	tmp := t.TempDir()
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(tmp, fmt.Sprintf("%s%d-123", buildDirPrefix, dead.Process.Pid))
	live := filepath.Join(tmp, fmt.Sprintf("%s%d-456", buildDirPrefix, os.Getpid()))
	other := filepath.Join(tmp, "unrelated-1")
	for _, d := range []string{stale, live, other} {
		os.Mkdir(d, 0o755)
	}
	reapStaleBuildDirs(tmp)
	for d, wantExist := range map[string]bool{stale: false, live: true, other: true} {
		if _, err := os.Stat(d); (err == nil) != wantExist {
			t.Errorf("%s: exists = %v, want %v", filepath.Base(d), err == nil, wantExist)
		}
	}
}

func TestSentinelTopology(t *testing.T) {
	start := time.Now()
	tp := StartSentinelTopology(t, []string{"alpha", "beta"}, 3)
	t.Logf("topology ready in %v", time.Since(start))
	if len(tp.Sentinels) != 3 {
		t.Fatalf("%d sentinels, want 3", len(tp.Sentinels))
	}
	for _, g := range tp.Groups {
		m, r := tp.Master(g), tp.Replica(g)
		if m == r || m != tp.nodes[g][0] {
			t.Fatalf("%s: master %v, replica %v, want the first server as master", g, m, r)
		}
		v, err := RedisDo(r.Addr, "", "ROLE")
		if role, _ := v.([]any); err != nil || len(role) == 0 || role[0] != "slave" {
			t.Errorf("%s: ROLE of the replica = %v, %v", g, v, err)
		}
	}

	// A forced failover promotes the replica, as every sentinel agrees.
	old, want := tp.Master("alpha"), tp.Replica("alpha")
	start = time.Now()
	tp.Failover("alpha")
	for tp.MasterAddr("alpha") != want.Addr {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("master of alpha still %s 10 s after SENTINEL FAILOVER", tp.MasterAddr("alpha"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("SENTINEL FAILOVER done in %v", time.Since(start))
	if tp.Master("alpha") != want || tp.Replica("alpha") != old {
		t.Errorf("after the failover: master %v, replica %v", tp.Master("alpha"), tp.Replica("alpha"))
	}
	if got := tp.Master("beta"); got != tp.nodes["beta"][0] {
		t.Errorf("beta's master moved to %v", got)
	}
}

func TestSentinelTopologyPassword(t *testing.T) {
	tp := StartSentinelTopology(t, []string{"g"}, 1, WithPassword("s3cret"))
	m := tp.Master("g")
	if _, err := RedisDo(m.Addr, "", "PING"); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Errorf("PING without AUTH: %v, want NOAUTH", err)
	}
	if v, err := RedisDo(m.Addr, "s3cret", "PING"); err != nil || v != "PONG" {
		t.Errorf("PING after AUTH: %v, %v", v, err)
	}
}

func TestRedisDo(t *testing.T) {
	s := StartRedis(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"SET", "k", "v\r\n"}, "OK"},
		{[]string{"GET", "k"}, "v\r\n"},
		{[]string{"GET", "missing"}, "<nil>"},
		{[]string{"RPUSH", "l", "a", "b"}, "2"},
		{[]string{"LRANGE", "l", "0", "-1"}, "[a b]"},
	} {
		v, err := RedisDo(s.Addr, "", tc.args...)
		if got := fmt.Sprint(v); err != nil || got != tc.want {
			t.Errorf("%q = %s, %v; want %s", tc.args, got, err, tc.want)
		}
	}
	if _, err := RedisDo(s.Addr, "", "NOSUCH"); !errors.As(err, new(RedisError)) {
		t.Errorf("unknown command: %v, want a RedisError", err)
	}
}

// TestListenerOfNamesTheHolder: a port found taken is reported with the
// process listening on it.
func TestListenerOfNamesTheHolder(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := listenerOf(l.Addr().String())
	if want := fmt.Sprintf("pid %d: ", os.Getpid()); !strings.HasPrefix(got, want) {
		t.Errorf("listenerOf(%s) = %q, want it to start with %q", l.Addr(), got, want)
	}
	if msg := (&portHeldError{addr: l.Addr().String(), holder: got}).Error(); !strings.Contains(msg, "already accepts connections") || !strings.Contains(msg, got) {
		t.Errorf("error %q", msg)
	}
}
