//go:build linux

package main

// End-to-end tests of the binary upgrade (SIGUSR2) with the built binary
// and a real redis-server. A successor is the child of the process it
// replaces; the test process makes itself their subreaper, so that each
// proxy becomes its child once its parent has exited, and every exit
// status can be checked.

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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/proxy"
	"github.com/shardproxy/shardproxy/internal/testutil"
)

// lineage is the proxy processes of one test: the first one and each
// successor.
type lineage struct {
	t       *testing.T
	pids    []int
	reaped  map[int]bool
	outputs []string // the standard output and error files of the processes started
}

// newLineage makes the test process the child subreaper of what it
// starts (undone when the test ends) and kills, at the end, any proxy of
// the lineage still running.
func newLineage(t *testing.T) *lineage {
	t.Helper()
	const prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER, linux/prctl.h
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", e)
	}
	l := &lineage{t: t, reaped: make(map[int]bool)}
	t.Cleanup(func() {
		for _, pid := range l.pids {
			if !l.reaped[pid] {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				l.waitStatus(pid, 5*time.Second)
			}
		}
		_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 0, 0)
		// Successors inherit the file, so it has every process's reports.
		for _, path := range l.outputs {
			if b, _ := os.ReadFile(path); bytes.Contains(b, []byte("WARNING: DATA RACE")) {
				t.Errorf("a proxy reported a data race:\n%s", b)
			}
		}
	})
	return l
}

// start runs bin with args and extra environment, its output in a file of
// the test's directory, and returns its pid.
func (l *lineage) start(bin string, env []string, args ...string) int {
	l.t.Helper()
	out, err := os.Create(filepath.Join(l.t.TempDir(), "output"))
	if err != nil {
		l.t.Fatal(err)
	}
	defer out.Close()
	l.outputs = append(l.outputs, out.Name())
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	// A file, not a buffer: successors inherit it, and nothing waits for
	// them to close it.
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	l.add(cmd.Process.Pid)
	return cmd.Process.Pid
}

func (l *lineage) add(pid int) { l.pids = append(l.pids, pid) }

// exitCode waits, at most within, for pid to exit and returns its exit
// status (128+n for a death by signal n).
func (l *lineage) exitCode(pid int, within time.Duration) int {
	l.t.Helper()
	code, ok := l.waitStatus(pid, within)
	if !ok {
		l.t.Fatalf("pid %d still running after %v", pid, within)
	}
	return code
}

func (l *lineage) waitStatus(pid int, within time.Duration) (int, bool) {
	deadline := time.Now().Add(within)
	for {
		var ws syscall.WaitStatus
		// 0: still running; ECHILD: not the test's child yet (its parent
		// runs) or no longer there.
		got, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if got == pid {
			l.reaped[pid] = true
			if ws.Signaled() {
				return 128 + int(ws.Signal()), true
			}
			return ws.ExitStatus(), true
		}
		if time.Now().After(deadline) {
			return 0, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// upgradeTo sends SIGUSR2 to pid and returns its successor's pid, read
// from the pid file once it names another process.
func upgradeTo(t *testing.T, pid int, pidPath string) int {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, _ := os.ReadFile(pidPath)
		if next, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && next != pid {
			return next
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid file still holds %q 15 s after SIGUSR2 to %d", b, pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// children returns the pids whose parent is pid.
func children(pid int) []int {
	var kids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		rest := string(b[bytes.LastIndexByte(b, ')')+2:])
		if f := strings.Fields(rest); len(f) > 1 && f[1] == strconv.Itoa(pid) {
			kids = append(kids, p)
		}
	}
	return kids
}

// pipes counts the pipes process pid has open.
func pipes(pid int) int {
	n := 0
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	for _, fd := range fds {
		if p, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); strings.HasPrefix(p, "pipe:") {
			n++
		}
	}
	return n
}

// ping sends PING on c and checks the answer.
func ping(c net.Conn, r *bufio.Reader) error {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "*1\r\n$4\r\nPING\r\n"); err != nil {
		return err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// pingAddr pings a new connection to addr ("tcp" unless it is a path).
func pingAddr(t *testing.T, addr string) {
	t.Helper()
	network := "tcp"
	if strings.HasPrefix(addr, "/") {
		network = "unix"
	}
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := ping(c, bufio.NewReader(c)); err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
}

// failures counts errors and keeps the first few.
type failures struct {
	n     int
	first []error
}

func (f *failures) add(err error) {
	f.n++
	if len(f.first) < 5 {
		f.first = append(f.first, err)
	}
}

// dialLoop dials addr, one connection after another with no pause, until
// stop is closed (at most a minute); each connection does one PING.
type dialLoop struct {
	ok, refused int
	failed      failures
}

func (d *dialLoop) run(addr string, stop <-chan struct{}) {
	r := bufio.NewReaderSize(nil, 64)
	for end := time.Now().Add(time.Minute); time.Now().Before(end); {
		select {
		case <-stop:
			return
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if errors.Is(err, syscall.ECONNREFUSED) {
			d.refused++
			continue
		}
		if err != nil {
			d.failed.add(err)
			continue
		}
		r.Reset(c)
		err = ping(c, r)
		c.Close()
		if err != nil {
			d.failed.add(err)
			continue
		}
		d.ok++
	}
}

// pipeliner sends INCR on its own key in pipelined batches, on
// connections that each live lifetime (shorter than the grace period, so
// that the proxy never has to cut one), until stop is closed. Each reply
// must be the next number: a missing or repeated reply breaks the
// sequence.
type pipeliner struct {
	key            string
	sent, answered int
	conns          int
	err            error
}

func (p *pipeliner) run(addr string, lifetime time.Duration, stop <-chan struct{}) {
	const batch = 16
	req := bytes.Repeat(fmt.Appendf(nil, "*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n", len(p.key), p.key), batch)
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	for end := time.Now().Add(time.Minute); !stopped() && time.Now().Before(end); {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			p.err = fmt.Errorf("dial: %w", err)
			return
		}
		p.conns++
		r := bufio.NewReader(c)
		for until := time.Now().Add(lifetime); !stopped() && time.Now().Before(until); {
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Write(req); err != nil {
				p.err = fmt.Errorf("connection %d: write: %w", p.conns, err)
				c.Close()
				return
			}
			p.sent += batch
			for range batch {
				line, err := r.ReadString('\n')
				if want := fmt.Sprintf(":%d\r\n", p.answered+1); err != nil || line != want {
					p.err = fmt.Errorf("connection %d, reply %d: %q, %v; want %q", p.conns, p.answered+1, line, err, want)
					c.Close()
					return
				}
				p.answered++
			}
		}
		c.Close()
	}
}

// TestUpgradeUnderLoad: three upgrades in a row while one client dials in
// a tight loop and others pipeline on established connections. No connect
// is refused, no request fails, and every request gets exactly one reply
// (the counter on the server equals the requests sent).
func TestUpgradeUnderLoad(t *testing.T) {
	fam := newLineage(t)
	redis := testutil.StartRedis(t)
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n   - %s:1\n", listen, redis.Addr))
	dir := t.TempDir()
	pidPath, logPath := filepath.Join(dir, "proxy.pid"), filepath.Join(dir, "proxy.log")
	pid := fam.start(testutil.BuildShardproxy(t), nil, withStats(t, []string{"-c", conf, "-p", pidPath, "-o", logPath})...)
	testutil.WaitListening(t, "tcp", listen, 10*time.Second)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var dialer dialLoop
	wg.Add(1)
	go func() {
		defer wg.Done()
		dialer.run(listen, stop)
	}()
	pipes := make([]*pipeliner, 4)
	for i := range pipes {
		pipes[i] = &pipeliner{key: fmt.Sprintf("upgrade-load-%d", i)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pipes[i].run(listen, 400*time.Millisecond, stop)
		}()
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}()

	start := time.Now()
	for i := range 3 {
		time.Sleep(300 * time.Millisecond)
		began := time.Now()
		next := upgradeTo(t, pid, pidPath)
		ready := time.Since(began)
		fam.add(next)
		if code := fam.exitCode(pid, 10*time.Second); code != 0 {
			t.Fatalf("upgrade %d: old process %d exited %d", i+1, pid, code)
		}
		t.Logf("upgrade %d: %d → %d, ready after %v, old gone after %v", i+1, pid, next, ready, time.Since(began))
		readFileEventually(t, logPath, fmt.Sprintf("upgraded_from=%d", pid))
		pid = next
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("3 upgrades in %v; %d dials answered", time.Since(start), dialer.ok)

	if dialer.refused != 0 || dialer.failed.n != 0 {
		t.Errorf("tight-loop dialer: %d refused, %d failed (first: %v), %d served", dialer.refused, dialer.failed.n, dialer.failed.first, dialer.ok)
	}
	if dialer.ok == 0 {
		t.Error("tight-loop dialer was never served")
	}
	for _, p := range pipes {
		if p.err != nil || p.sent != p.answered {
			t.Errorf("%s: sent %d, answered %d, over %d connections; %v", p.key, p.sent, p.answered, p.conns, p.err)
			continue
		}
		v, err := testutil.RedisDo(redis.Addr, "", "GET", p.key)
		if err != nil || v != strconv.Itoa(p.sent) {
			t.Errorf("%s on the server = %v, %v; %d INCR sent", p.key, v, err, p.sent)
		}
		t.Logf("%s: %d requests over %d connections", p.key, p.sent, p.conns)
	}

	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := fam.exitCode(pid, 10*time.Second); code != 0 {
		t.Errorf("last process exited %d after SIGTERM", code)
	}
	if _, err := os.Stat(pidPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after the last process exited: %v", err)
	}
}

// copyFile writes src's content to dst through a temporary file renamed
// over dst, as a package manager installs a binary: the running program's
// file is replaced, not overwritten.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	installFile(t, dst, b)
}

func installFile(t *testing.T, dst string, content []byte) {
	t.Helper()
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// TestUpgradeFailureKeepsServing: when the new process cannot take over,
// the old one logs why and goes on serving with its pid file; no process
// is left behind, and a later upgrade still works.
func TestUpgradeFailureKeepsServing(t *testing.T) {
	redis := testutil.StartRedis(t)
	tests := []struct {
		name  string
		env   []string
		spoil func(t *testing.T, bin, conf string) // makes the upgrade fail
		why   string                               // in the old process's log
	}{
		{"bad configuration", nil, func(t *testing.T, _, conf string) {
			if err := os.WriteFile(conf, []byte("alpha:\n  listen: 127.0.0.1:1\n  hash: fnv2\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, `hash \"fnv2\" is not one of`},
		{"address taken", nil, func(t *testing.T, _, conf string) {
			hold, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { hold.Close() })
			f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(f, "beta:\n  listen: %s\n  redis: true\n  servers:\n   - %s:1\n", hold.Addr(), redis.Addr)
			f.Close()
		}, "address already in use"},
		{"program exits at once", nil, func(t *testing.T, bin, _ string) {
			installFile(t, bin, []byte("#!/bin/sh\nexit 3\n"))
		}, "it exited before it was ready (exit status 3)"},
		{"program never ready", []string{upgradeTimeoutEnv + "=1s"}, func(t *testing.T, bin, _ string) {
			installFile(t, bin, []byte("#!/bin/sh\nexec sleep 60\n"))
		}, "no ready signal within 1s (signal: killed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fam := newLineage(t)
			dir := t.TempDir()
			bin := filepath.Join(dir, "shardproxy")
			copyFile(t, testutil.BuildShardproxy(t), bin)
			listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
			good := fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n   - %s:1\n", listen, redis.Addr)
			conf := writeConf(t, good)
			pidPath, logPath := filepath.Join(dir, "proxy.pid"), filepath.Join(dir, "proxy.log")
			pid := fam.start(bin, tt.env, withStats(t, []string{"-c", conf, "-p", pidPath, "-o", logPath})...)
			testutil.WaitListening(t, "tcp", listen, 10*time.Second)

			tt.spoil(t, bin, conf)
			start := time.Now()
			if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
				t.Fatal(err)
			}
			log := readFileEventually(t, logPath, "upgrade failed: this process goes on serving")
			t.Logf("failure noticed after %v", time.Since(start))
			if !strings.Contains(log, tt.why) {
				t.Errorf("log lacks %q:\n%s", tt.why, log)
			}
			pingAddr(t, listen)
			if b, _ := os.ReadFile(pidPath); strings.TrimSpace(string(b)) != strconv.Itoa(pid) {
				t.Errorf("pid file holds %q, want %d", b, pid)
			}
			if kids := children(pid); len(kids) != 0 {
				t.Errorf("processes left by the failed upgrade: %v", kids)
			}

			// Put things right: the next upgrade succeeds. (It needs the
			// old process's sockets still non-blocking, or StopAccepting
			// would wait forever in accept(2): see passable.)
			copyFile(t, testutil.BuildShardproxy(t), bin)
			if err := os.WriteFile(conf, []byte(good), 0o644); err != nil {
				t.Fatal(err)
			}
			next := upgradeTo(t, pid, pidPath)
			fam.add(next)
			if code := fam.exitCode(pid, 10*time.Second); code != 0 {
				t.Errorf("old process exited %d after the upgrade", code)
			}
			pingAddr(t, listen)
			_ = syscall.Kill(next, syscall.SIGTERM)
			if code := fam.exitCode(next, 10*time.Second); code != 0 {
				t.Errorf("new process exited %d after SIGTERM", code)
			}
		})
	}
}

// TestUpgradeAbortedByTERM: SIGTERM while the new process has not
// answered stops both: the new one gets SIGTERM, the old one shuts down
// as usual and exits 0.
func TestUpgradeAbortedByTERM(t *testing.T) {
	fam := newLineage(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "shardproxy")
	copyFile(t, testutil.BuildShardproxy(t), bin)
	conf, listen := poolConf(t, "")
	logPath := filepath.Join(dir, "proxy.log")
	pid := fam.start(bin, nil, withStats(t, []string{"-c", conf, "-o", logPath})...)
	testutil.WaitListening(t, "tcp", listen, 10*time.Second)

	installFile(t, bin, []byte("#!/bin/sh\nexec sleep 60\n"))
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	log := readFileEventually(t, logPath, "upgrading: new process started")
	_, after, _ := strings.Cut(log, "upgrading: new process started")
	_, after, _ = strings.Cut(after, "new_pid=")
	child, err := strconv.Atoi(strings.Fields(after)[0])
	if err != nil {
		t.Fatalf("no new_pid in the log:\n%s", log)
	}
	fam.add(child)
	start := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := fam.exitCode(pid, 10*time.Second); code != 0 {
		t.Errorf("old process exited %d after SIGTERM", code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("SIGTERM during an upgrade took %v", d)
	}
	t.Logf("old process exited %v after SIGTERM", time.Since(start))
	// The old process may have reaped it; if not, it is the test's child.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var ws syscall.WaitStatus
		if got, _ := syscall.Wait4(child, &ws, syscall.WNOHANG, nil); got == child {
			fam.reaped[child] = true
			if !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
				t.Errorf("new process (sleep) ended with %v, want death by SIGTERM", ws)
			}
			break
		}
		if errors.Is(syscall.Kill(child, 0), syscall.ESRCH) {
			fam.reaped[child] = true
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new process (sleep) %d still running", child)
		}
	}
	readFileEventually(t, logPath, "upgrade aborted: stopping the new process")
}

// buildVersion builds the proxy with main.version set to v.
func buildVersion(t *testing.T, v string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "shardproxy-"+v)
	cmd := exec.Command("go", "build", "-o", out, "-ldflags", "-X main.version="+v, "./cmd/shardproxy")
	cmd.Dir = moduleRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	return out
}

// infoField returns a field of INFO server through the proxy at addr.
func infoField(t *testing.T, addr, field string) string {
	t.Helper()
	v, err := testutil.RedisDo(addr, "", "INFO", "server")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := v.(string)
	for line := range strings.SplitSeq(s, "\r\n") {
		if val, ok := strings.CutPrefix(line, field+":"); ok {
			return val
		}
	}
	t.Fatalf("INFO server has no %s:\n%s", field, s)
	return ""
}

// TestUpgradeNewBinary: SIGUSR2 starts the program file now at the path
// the proxy was started from — a new build installed over it — not the
// old program.
func TestUpgradeNewBinary(t *testing.T) {
	const newVersion = "9.9.9-upgrade-test"
	fresh := buildVersion(t, newVersion)
	fam := newLineage(t)
	redis := testutil.StartRedis(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "shardproxy")
	copyFile(t, testutil.BuildShardproxy(t), bin)
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n   - %s:1\n", listen, redis.Addr))
	statsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	_, statsPort, _ := net.SplitHostPort(statsAddr)
	pidPath := filepath.Join(dir, "proxy.pid")
	pid := fam.start(bin, nil, "-c", conf, "-p", pidPath, "-s", statsPort, "-a", "127.0.0.1")
	testutil.WaitListening(t, "tcp", listen, 10*time.Second)
	if v := infoField(t, listen, "shardproxy_version"); v == newVersion {
		t.Fatalf("the first process already reports %s", v)
	}

	copyFile(t, fresh, bin)
	next := upgradeTo(t, pid, pidPath)
	fam.add(next)
	if code := fam.exitCode(pid, 10*time.Second); code != 0 {
		t.Errorf("old process exited %d", code)
	}
	if v := infoField(t, listen, "shardproxy_version"); v != newVersion {
		t.Errorf("after the upgrade INFO says shardproxy_version:%s, want %s", v, newVersion)
	}
	if p := infoField(t, listen, "process_id"); p != strconv.Itoa(next) {
		t.Errorf("INFO process_id:%s, want %d", p, next)
	}
	if b := testutil.ReadStats(t, statsAddr); !bytes.Contains(b, []byte(`"version":"`+newVersion+`"`)) {
		t.Errorf("stats JSON after the upgrade: %.200s", b)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", next)); exe != bin {
		t.Errorf("new process runs %q, want %q", exe, bin)
	}
	_ = syscall.Kill(next, syscall.SIGTERM)
	if code := fam.exitCode(next, 10*time.Second); code != 0 {
		t.Errorf("new process exited %d after SIGTERM", code)
	}
}

// TestUpgradeUnixSocket: a unix socket is handed over, never unlinked by
// the old process; a client connected to the old process is served by it
// for the grace period, then closed, and the old process exits 0.
func TestUpgradeUnixSocket(t *testing.T) {
	fam := newLineage(t)
	redis := testutil.StartRedis(t)
	sockDir, err := os.MkdirTemp("", "sp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "proxy.sock")
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s 0600\n  redis: true\n  servers:\n   - %s:1\n", sock, redis.Addr))
	dir := t.TempDir()
	pidPath, logPath := filepath.Join(dir, "proxy.pid"), filepath.Join(dir, "proxy.log")
	pid := fam.start(testutil.BuildShardproxy(t), nil, withStats(t, []string{"-c", conf, "-p", pidPath, "-o", logPath})...)
	testutil.WaitListening(t, "unix", sock, 10*time.Second)

	held, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	hr := bufio.NewReader(held)
	if err := ping(held, hr); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	next := upgradeTo(t, pid, pidPath)
	fam.add(next)
	handedOver := time.Since(began)
	// The old process still serves the client it had.
	_ = held.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprint(held, "*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n")
	head, err := hr.ReadString('\n')
	if err != nil || !strings.HasPrefix(head, "$") {
		t.Fatalf("INFO: %q, %v", head, err)
	}
	n, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
	info := make([]byte, n+2)
	if _, err := io.ReadFull(hr, info); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(info, fmt.Appendf(nil, "process_id:%d\r\n", pid)) {
		t.Errorf("the connection made before the upgrade is served by another process:\n%s", info)
	}
	if p := infoField(t, sock, "process_id"); p != strconv.Itoa(next) {
		t.Errorf("a client connecting after the hand-over is served by %s, want the new process %d", p, next)
	}

	if code := fam.exitCode(pid, 15*time.Second); code != 0 {
		t.Errorf("old process exited %d", code)
	}
	served := time.Since(began) - handedOver
	if served < proxy.DefaultGrace-500*time.Millisecond {
		t.Errorf("old process exited %v after the hand-over with a client connected; the grace period is %v", served, proxy.DefaultGrace)
	}
	_ = held.SetReadDeadline(time.Now().Add(time.Second))
	if b, err := hr.ReadByte(); err == nil {
		t.Errorf("connection to the old process still open after it exited: read %q", b)
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatalf("socket path after the old process exited: %v", err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket path after the old process exited: mode %v, want a socket with 0600", fi.Mode())
	}
	pingAddr(t, sock)

	_ = syscall.Kill(next, syscall.SIGTERM)
	if code := fam.exitCode(next, 10*time.Second); code != 0 {
		t.Errorf("new process exited %d", code)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind after the last process exited: %v", err)
	}
}

// TestUpgradeDaemon: -d -p. The pid file names the new process once it is
// ready and is still there after the old one exits; the new process is
// detached as the first daemon was, with the command line as typed.
func TestUpgradeDaemon(t *testing.T) {
	fam := newLineage(t) // before -d: the daemon becomes the test's child
	redis := testutil.StartRedis(t)
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n   - %s:1\n", listen, redis.Addr))
	dir := t.TempDir()
	pidPath, logPath := filepath.Join(dir, "proxy.pid"), filepath.Join(dir, "proxy.log")
	args := withStats(t, []string{"-d", "-c", conf, "-p", pidPath, "-o", logPath})
	if out, code := runBinary(t, args...); code != 0 {
		t.Fatalf("-d exit %d: %s", code, out)
	}
	b, err := os.ReadFile(pidPath)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file holds %q", b)
	}
	fam.add(pid)
	testutil.WaitListening(t, "tcp", listen, 5*time.Second)

	pipesBefore := pipes(pid)
	next := upgradeTo(t, pid, pidPath)
	fam.add(next)
	if code := fam.exitCode(pid, 10*time.Second); code != 0 {
		t.Errorf("old daemon exited %d", code)
	}
	if b, err := os.ReadFile(pidPath); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(next) {
		t.Errorf("pid file after the old daemon exited: %q, %v; want %d", b, err, next)
	}
	pingAddr(t, listen)
	if sid, err := getsid(next); err != nil || sid != next {
		t.Errorf("new daemon's session id = %d (%v), want its own pid %d", sid, err, next)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", next))
	if want := strings.Join(append([]string{testutil.BuildShardproxy(t)}, args...), "\x00") + "\x00"; string(cmdline) != want {
		t.Errorf("new daemon's cmdline = %q, want %q", cmdline, want)
	}
	for fd := range 3 {
		if p, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", next, fd)); p != os.DevNull {
			t.Errorf("new daemon's fd %d = %q, want %s", fd, p, os.DevNull)
		}
	}
	readFileEventually(t, logPath, fmt.Sprintf("upgraded_from=%d", pid))
	// The readiness pipe is closed once answered: the new daemon has as
	// many pipes open as the first (the race detector keeps one).
	if got, want := pipes(next), pipesBefore; got != want {
		t.Errorf("new daemon has %d pipes open, the first one had %d", got, want)
	}

	_ = syscall.Kill(next, syscall.SIGTERM)
	if code := fam.exitCode(next, 10*time.Second); code != 0 {
		t.Errorf("new daemon exited %d", code)
	}
	if _, err := os.Stat(pidPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file left after the new daemon exited: %v", err)
	}
}

// TestUpgradeStatsPort: the stats socket is handed over too: clients
// reading the stats in a loop across an upgrade are always answered.
func TestUpgradeStatsPort(t *testing.T) {
	fam := newLineage(t)
	redis := testutil.StartRedis(t)
	listen := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	conf := writeConf(t, fmt.Sprintf("alpha:\n  listen: %s\n  redis: true\n  servers:\n   - %s:1\n", listen, redis.Addr))
	statsAddr := fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))
	_, statsPort, _ := net.SplitHostPort(statsAddr)
	pidPath := filepath.Join(t.TempDir(), "proxy.pid")
	pid := fam.start(testutil.BuildShardproxy(t), nil, "-c", conf, "-p", pidPath, "-s", statsPort, "-a", "127.0.0.1")
	testutil.WaitListening(t, "tcp", statsAddr, 10*time.Second)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	type counts struct {
		ok, refused int
		failed      failures
	}
	var httpC, rawC counts
	wg.Add(2)
	go func() { // HTTP, a new connection per request, in a tight loop
		defer wg.Done()
		client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
		for end := time.Now().Add(time.Minute); time.Now().Before(end); {
			select {
			case <-stop:
				return
			default:
			}
			resp, err := client.Get("http://" + statsAddr + "/stats")
			if errors.Is(err, syscall.ECONNREFUSED) {
				httpC.refused++
				continue
			}
			if err != nil {
				httpC.failed.add(err)
				continue
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"service":"nutcracker"`)) {
				httpC.failed.add(fmt.Errorf("status %d, %v: %.100s", resp.StatusCode, err, body))
				continue
			}
			httpC.ok++
		}
	}()
	go func() { // nutcracker's way: connect, read the JSON
		defer wg.Done()
		for end := time.Now().Add(time.Minute); time.Now().Before(end); {
			select {
			case <-stop:
				return
			default:
			}
			c, err := net.DialTimeout("tcp", statsAddr, 5*time.Second)
			if errors.Is(err, syscall.ECONNREFUSED) {
				rawC.refused++
				continue
			}
			if err != nil {
				rawC.failed.add(err)
				continue
			}
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			body, err := io.ReadAll(c)
			c.Close()
			if err != nil || !bytes.HasPrefix(body, []byte(`{"service":"nutcracker"`)) || !bytes.HasSuffix(body, []byte("}\n")) {
				rawC.failed.add(fmt.Errorf("%v: %.100s", err, body))
				continue
			}
			rawC.ok++
		}
	}()

	time.Sleep(300 * time.Millisecond)
	next := upgradeTo(t, pid, pidPath)
	fam.add(next)
	if code := fam.exitCode(pid, 10*time.Second); code != 0 {
		t.Errorf("old process exited %d", code)
	}
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	for name, c := range map[string]counts{"HTTP": httpC, "raw": rawC} {
		t.Logf("%s stats reads: %d answered", name, c.ok)
		if c.refused != 0 || c.failed.n != 0 || c.ok == 0 {
			t.Errorf("%s stats reads: %d refused, %d failed (first: %v), %d answered", name, c.refused, c.failed.n, c.failed.first, c.ok)
		}
	}
	_ = syscall.Kill(next, syscall.SIGTERM)
	if code := fam.exitCode(next, 10*time.Second); code != 0 {
		t.Errorf("new process exited %d", code)
	}
}
