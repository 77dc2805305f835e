package main

// End-to-end tests of the built binary: flags, -t, -d with -p, signals.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// withStats appends a free stats port on 127.0.0.1 unless args choose one:
// the default port, 22222, would be shared by every test.
func withStats(t *testing.T, args []string) []string {
	t.Helper()
	for _, a := range args {
		if a == "-s" || strings.HasPrefix(a, "--stats-port") {
			return args
		}
	}
	// Prepended: a test of a missing option argument ends with the option.
	return append([]string{"-s", strconv.Itoa(testutil.FreePort(t)), "-a", "127.0.0.1"}, args...)
}

// runBinary runs the proxy to completion and returns its stderr and exit code.
func runBinary(t *testing.T, args ...string) (string, int) {
	t.Helper()
	bin := testutil.BuildShardproxy(t)
	cmd := exec.Command(bin, withStats(t, args)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("shardproxy %q: %v", args, err)
		}
		return stderr.String(), cmd.ProcessState.ExitCode()
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("shardproxy %q did not exit; output:\n%s", args, stderr.String())
		return "", -1
	}
}

func writeConf(t *testing.T, yaml string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "conf.yml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// poolConf is a one-pool Redis configuration listening on a free port.
func poolConf(t *testing.T, extra string) (path, listen string) {
	t.Helper()
	listen = fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	return writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n%s  servers:\n   - 127.0.0.1:6379:1\n", listen, extra)), listen
}

func TestCLIInformational(t *testing.T) {
	tests := []struct {
		args     []string
		code     int
		contains []string
	}{
		{[]string{"-V"}, 0, []string{"This is shardproxy-", "go1."}},
		{[]string{"--version"}, 0, []string{"This is shardproxy-"}},
		{[]string{"-h"}, 0, []string{"This is shardproxy-", "Usage: shardproxy [-?hVdDt]", "-m, --mbuf-size=N"}},
		{[]string{"--help"}, 0, []string{"Usage: shardproxy"}},
		{[]string{"-D"}, 0, []string{"pool stats:\n  client_eof          \"# eof on client connections\"", "server stats:\n  server_eof", "server_ejected_at"}},
		{[]string{"-x"}, 1, []string{"shardproxy: invalid option -- 'x'\nUsage: shardproxy"}},
		{[]string{"--nope"}, 1, []string{"shardproxy: unrecognized option '--nope'\nUsage:"}},
		{[]string{"-v", "12"}, 1, []string{"option -v value 12 is not between 0 and 11", "Usage:"}},
		{[]string{"-m", "100"}, 1, []string{"mbuf chunk size must be between 512 and 16777216 bytes", "Usage:"}},
		{[]string{"-s", "x"}, 1, []string{"option -s requires a number", "Usage:"}},
		{[]string{"-c"}, 1, []string{"option -c requires a file name", "Usage:"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, code := runBinary(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; output:\n%s", code, tt.code, out)
			}
			for _, want := range tt.contains {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func TestCLITestConf(t *testing.T) {
	root := moduleRoot(t)
	good := []string{filepath.Join(root, "conf", "nutcracker.yml"), filepath.Join(root, "conf", "demo.yml")}
	examples, _ := filepath.Glob(filepath.Join(root, "internal", "config", "testdata", "*.yml"))
	for _, ex := range examples {
		if filepath.Base(ex) != "misindented.yml" {
			good = append(good, ex)
		}
	}
	if len(good) < 5 {
		t.Fatalf("expected the example configs, found %q", good)
	}
	for _, path := range good {
		out, code := runBinary(t, "-t", "-c", path)
		want := fmt.Sprintf("shardproxy: configuration file '%s' syntax is ok\n", path)
		if code != 0 || out != want {
			t.Errorf("-t %s: exit %d, output %q", path, code, out)
		}
	}

	mis := filepath.Join(root, "internal", "config", "testdata", "misindented.yml")
	out, code := runBinary(t, "--test-conf", "--conf-file", mis)
	if code != 1 || !strings.Contains(out, mis+":3: ") || !strings.HasSuffix(out, "syntax is invalid\n") {
		t.Errorf("-t misindented: exit %d, output %q", code, out)
	}

	bad := writeConf(t, "alpha:\n  listen: 127.0.0.1:0\n  hash: fnv2\n  servers:\n   - 127.0.0.1:6379:1\n")
	out, code = runBinary(t, "-t", "-c", bad)
	for _, want := range []string{bad + ":2: pool \"alpha\":", bad + ":3: pool \"alpha\": hash \"fnv2\" is not one of", "syntax is invalid"} {
		if code != 1 || !strings.Contains(out, want) {
			t.Errorf("-t bad: exit %d, output lacks %q:\n%s", code, want, out)
		}
	}

	out, code = runBinary(t, "-t", "-c", filepath.Join(t.TempDir(), "missing.yml"))
	if code != 1 || !strings.Contains(out, "missing.yml") {
		t.Errorf("-t missing file: exit %d, output %q", code, out)
	}

	// Without -t a bad configuration never starts the proxy.
	out, code = runBinary(t, "-c", bad)
	if code != 1 || !strings.Contains(out, "syntax is invalid") {
		t.Errorf("start with bad config: exit %d, output %q", code, out)
	}
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(wd, "..", "..")
}

// startForeground starts the proxy in the foreground and waits for listen.
func startForeground(t *testing.T, listen string, args ...string) *exec.Cmd {
	t.Helper()
	bin := testutil.BuildShardproxy(t)
	cmd := exec.Command(bin, withStats(t, args)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	testutil.WaitListening(t, "tcp", listen, 10*time.Second)
	return cmd
}

func waitExit(t *testing.T, cmd *exec.Cmd, within time.Duration) int {
	t.Helper()
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(within):
		t.Fatalf("pid %d still running after %v", cmd.Process.Pid, within)
		return -1
	}
}

func readFileEventually(t *testing.T, path, want string) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(path)
		if strings.Contains(string(b), want) {
			return string(b)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never contained %q; it holds:\n%s", path, want, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSignalsAndLogFile(t *testing.T) {
	conf, listen := poolConf(t, "")
	dir := t.TempDir()
	logPath := filepath.Join(dir, "proxy.log")
	pidPath := filepath.Join(dir, "proxy.pid")
	cmd := startForeground(t, listen, "-c", conf, "-o", logPath, "-p", pidPath, "-v", "6")
	pid := cmd.Process.Pid

	if b, err := os.ReadFile(pidPath); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
		t.Fatalf("pid file: %q, %v; want %d", b, err, pid)
	}
	readFileEventually(t, logPath, "shardproxy started")

	// A client connection is logged at info (verbosity 6) and is served.
	c, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "PING\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || line != "+PONG\r\n" {
		t.Fatalf("client read %q, %v", line, err)
	}
	c.Close()
	readFileEventually(t, logPath, "client connected")

	_ = syscall.Kill(pid, syscall.SIGTTIN)
	readFileEventually(t, logPath, "verbosity=7")
	// Signals of one kind do not queue: send the next after the first is seen.
	_ = syscall.Kill(pid, syscall.SIGTTOU)
	readFileEventually(t, logPath, `msg="verbosity lowered" signal=SIGTTOU verbosity=6`)
	_ = syscall.Kill(pid, syscall.SIGTTOU)
	readFileEventually(t, logPath, "verbosity=5")

	// logrotate: move the file away, SIGHUP, and the proxy writes a new one.
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(pid, syscall.SIGHUP)
	readFileEventually(t, logPath, "log file reopened")

	// An idle client must not hold up the shutdown.
	idle, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	start := time.Now()
	_ = syscall.Kill(pid, syscall.SIGTERM)
	if code := waitExit(t, cmd, 10*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d, want 0", code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v with only idle clients", d)
	}
	if _, err := os.Stat(pidPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file still there after exit: %v", err)
	}
	readFileEventually(t, logPath, "shardproxy stopped")
}

func TestSIGINTExitsZero(t *testing.T) {
	conf, listen := poolConf(t, "")
	cmd := startForeground(t, listen, "-c", conf)
	_ = cmd.Process.Signal(os.Interrupt)
	if code := waitExit(t, cmd, 10*time.Second); code != 0 {
		t.Errorf("exit code after SIGINT = %d, want 0", code)
	}
}

func TestClientConnectionsEnforced(t *testing.T) {
	conf, listen := poolConf(t, "  client_connections: 1\n")
	startForeground(t, listen, "-c", conf)
	// WaitListening's probe connection holds the only slot until the proxy
	// sees it close, so the first real client may need a retry.
	var first net.Conn
	for deadline := time.Now().Add(5 * time.Second); ; {
		c, err := net.Dial("tcp", listen)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprint(c, "PING\r\n")
		line, err := bufio.NewReader(c).ReadString('\n')
		if err == nil && line == "+PONG\r\n" {
			first = c
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("first client: %q, %v", line, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer first.Close()
	second, err := net.Dial("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := bufio.NewReader(second).ReadString('\n')
	if b != "-ERR max number of clients reached\r\n" {
		t.Fatalf("second client got %q", b)
	}
	if _, err := second.Read(make([]byte, 1)); err == nil {
		t.Error("second client not closed")
	}
}

func TestListenFailureExitsOne(t *testing.T) {
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  servers:\n   - 127.0.0.1:11211:1\n", hold.Addr()))
	out, code := runBinary(t, "-c", conf)
	if code != 1 || !strings.Contains(out, `pool "alpha": listen on `+hold.Addr().String()) {
		t.Errorf("exit %d, output %q", code, out)
	}
}

func TestUnixSocketListener(t *testing.T) {
	dir, err := os.MkdirTemp("", "sp")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "proxy.sock")
	// A stale socket from an earlier run is replaced.
	stale, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s 0600\n  redis: true\n  servers:\n   - 127.0.0.1:6379:1\n", sock))
	bin := testutil.BuildShardproxy(t)
	cmd := exec.Command(bin, withStats(t, []string{"-c", conf})...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitListening(t, "unix", sock, 10*time.Second)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
		t.Errorf("socket %s: %v, %v", sock, fi.Mode(), err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if code := waitExit(t, cmd, 10*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind after exit: %v", err)
	}

	// A path that is not a socket is never deleted.
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf = writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  servers:\n   - 127.0.0.1:11211:1\n", regular))
	out, code := runBinary(t, "-c", conf)
	if code != 1 || !strings.Contains(out, "is not a unix socket") {
		t.Errorf("exit %d, output %q", code, out)
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep" {
		t.Error("regular file was touched")
	}
}

func TestDaemonize(t *testing.T) {
	conf, listen := poolConf(t, "")
	dir := t.TempDir()
	pidPath := filepath.Join(dir, "proxy.pid")
	logPath := filepath.Join(dir, "proxy.log")
	args := withStats(t, []string{"-d", "-c", conf, "-p", pidPath, "-o", logPath})

	start := time.Now()
	out, code := runBinary(t, args...)
	if code != 0 {
		t.Fatalf("-d exit %d: %s", code, out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("-d took %v to return", d)
	}
	b, err := os.ReadFile(pidPath)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file holds %q", b)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("daemon pid %d not running", pid)
	}
	testutil.WaitListening(t, "tcp", listen, 5*time.Second)

	// Detached: its own session, not our child, command line as typed.
	sid, err := getsid(pid)
	if err != nil || sid != pid {
		t.Errorf("daemon session id = %d (%v), want its own pid %d", sid, err, pid)
	}
	if ppid := statField(t, pid, 3); ppid == strconv.Itoa(os.Getpid()) {
		t.Errorf("daemon is the test's child")
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	wantCmdline := strings.Join(append([]string{testutil.BuildShardproxy(t)}, args...), "\x00") + "\x00"
	if string(cmdline) != wantCmdline {
		t.Errorf("daemon cmdline = %q, want %q", cmdline, wantCmdline)
	}
	environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if bytes.Contains(environ, []byte(daemonEnv)) {
		// The mark is in the initial environment block; the daemon only
		// unsets it for processes it might start.
		t.Logf("daemon environ holds %s (expected: initial environment)", daemonEnv)
	}
	fd0, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid))
	if fd0 != os.DevNull {
		t.Errorf("daemon stdin = %q, want /dev/null", fd0)
	}
	readFileEventually(t, logPath, "shardproxy started")

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for syscall.Kill(pid, 0) == nil {
		if time.Now().After(deadline) {
			t.Fatalf("daemon %d still running after SIGTERM", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := os.Stat(pidPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after daemon exit: %v", err)
	}
}

func TestDaemonizeReportsStartFailure(t *testing.T) {
	hold, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  servers:\n   - 127.0.0.1:11211:1\n", hold.Addr()))
	pidPath := filepath.Join(t.TempDir(), "pid")
	out, code := runBinary(t, "-d", "-c", conf, "-p", pidPath)
	if code != 1 || !strings.Contains(out, "listen on "+hold.Addr().String()) {
		t.Errorf("-d with a busy port: exit %d, output %q", code, out)
	}
	if _, err := os.Stat(pidPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left by a daemon that failed: %v", err)
	}
}

// statField returns field n (1-based) of /proc/pid/stat.
func statField(t *testing.T, pid, n int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	rest := string(b[bytes.LastIndexByte(b, ')')+2:])
	return strings.Fields(rest)[n-3]
}

func getsid(pid int) (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(sid), nil
}

// TestStatsPort: the binary serves -a/-s: raw JSON to a client that sends
// nothing, HTTP to one that sends a request; a port already taken stops the
// start, as with nutcracker.
func TestStatsPort(t *testing.T) {
	conf, listen := poolConf(t, "")
	statsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	_, port, _ := net.SplitHostPort(statsAddr)
	startForeground(t, listen, "-c", conf, "-s", port, "-a", "127.0.0.1", "-i", "50")
	testutil.WaitListening(t, "tcp", statsAddr, 5*time.Second)

	c, err := net.Dial("tcp", statsAddr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	raw, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.HasPrefix(raw, []byte(`{"service":"nutcracker", "source":`)) || !bytes.Contains(raw, []byte(`"alpha": {"client_eof":`)) {
		t.Errorf("raw stats: %q, %v", raw, err)
	}
	resp, err := http.Get("http://" + statsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`shardproxy_pool_client_connections{pool="alpha"} 0`)) {
		t.Errorf("/metrics: %d\n%s", resp.StatusCode, body)
	}

	// The stats port is taken now: a second proxy does not start.
	conf2, _ := poolConf(t, "")
	out, code := runBinary(t, "-c", conf2, "-s", port, "-a", "127.0.0.1")
	if code != 1 || !strings.Contains(out, statsAddr) {
		t.Errorf("second proxy on a taken stats port: exit %d, %q", code, out)
	}
}
