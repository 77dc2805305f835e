package testutil

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	// startTimeout bounds how long a Start function waits for a server to
	// accept connections.
	startTimeout = 10 * time.Second
	// defaultStopWait is how long Stop waits after SIGTERM before SIGKILL.
	defaultStopWait = 5 * time.Second
	// logTail is how much of a server's log a failure message quotes.
	logTail = 8 << 10
)

// errExited reports that a server exited while it was being waited for.
var errExited = errors.New("process exited")

// Server is a process started for a test. The Start functions return it
// running and accepting connections; it is stopped by the test's cleanup.
// Its methods are safe for concurrent use.
type Server struct {
	// Immutable once the Start function returns.

	Name      string // program name, e.g. "redis-server"
	Network   string // "tcp", or "unix" when Addr is a socket path
	Addr      string // "127.0.0.1:PORT", or the unix socket path
	Port      int    // the TCP port of Addr; 0 for a unix socket
	Dir       string // the server's own temporary directory
	ConfPath  string // the configuration file written for it, if any
	StatsAddr string // nutcracker's stats address; empty for other servers

	// Cmd is the current process. Restart replaces it; read it only from
	// the goroutine that calls Restart.
	Cmd *exec.Cmd

	path      string   // program path
	args      []string // its arguments, the same at every start
	waitAddrs []string // addresses that must accept before start returns
	outPath   string   // stdout and stderr of every incarnation, appended
	logPath   string   // a log file the server writes itself, or ""
	stopWait  time.Duration
	// wakeOnStop makes Stop connect to Addr after SIGTERM. memcached's
	// signal handler only sets a flag, which its libevent loop checks after
	// an event has run; without one, it exits at its next once-a-second
	// clock tick. An accepted connection is such an event.
	wakeOnStop bool

	mu  sync.Mutex
	cur *proc // guarded by mu; nil before the first start
	pid int   // guarded by mu; the PID of cur, kept after it exits
}

// proc is one incarnation of a Server's process.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process is reaped

	reaped bool  // guarded by Server.mu; once set, the PID may be reused
	err    error // the exit status; written before done is closed
}

// newServer returns a Server for path with its own temp dir, registered with
// t.Cleanup. Call it before creating anything the process needs to outlive:
// cleanups run last-in first-out, so the process is stopped before the
// directories created earlier are removed.
func newServer(t testing.TB, path string) *Server {
	t.Helper()
	s := &Server{
		Name:     filepath.Base(path),
		Dir:      t.TempDir(),
		path:     path,
		stopWait: defaultStopWait,
	}
	s.outPath = filepath.Join(s.Dir, "output.log")
	t.Cleanup(func() { s.cleanup(t) })
	return s
}

// setAddr sets Addr, Network and Port from addr.
func (s *Server) setAddr(addr string) {
	s.Addr = addr
	s.Network = addrNetwork(addr)
	if s.Network == "tcp" {
		if _, port, err := net.SplitHostPort(addr); err == nil {
			s.Port, _ = strconv.Atoi(port)
		}
	}
}

// cleanup stops the server at the end of the test. It quotes the log if the
// test failed, and fails the test if a race-enabled Go child found a race.
func (s *Server) cleanup(t testing.TB) {
	s.Stop()
	s.mu.Lock()
	started := s.cur != nil
	s.mu.Unlock()
	if !started {
		return
	}
	log := s.Log()
	if strings.Contains(log, "WARNING: DATA RACE") {
		t.Errorf("%s (pid %d) reported a data race:\n%s", s.Name, s.PID(), tail(log, 4*logTail))
	} else if t.Failed() {
		t.Logf("%s %s (pid %d) log:\n%s", s.Name, s.Addr, s.PID(), tail(log, logTail))
	}
}

// startOrFail starts the process and waits until it accepts; on failure it
// fails the test, quoting the log.
func (s *Server) startOrFail(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("starting %s %s: %v\n--- log ---\n%s", s.Name, strings.Join(s.args, " "), err, tail(s.Log(), logTail))
	}
}

// portHeldError is start's error when something already listens on an
// address the server is to listen on: another process took the port
// FreePort chose.
type portHeldError struct {
	addr   string
	holder string // who listens there, when it can be found out
}

func (e *portHeldError) Error() string {
	msg := e.addr + " already accepts connections before the server started: another process holds it"
	if e.holder != "" {
		msg += " (" + e.holder + ")"
	}
	return msg
}

// start runs the process and waits until every wait address accepts.
func (s *Server) start() error {
	for _, a := range s.waitAddrs {
		if accepting(addrNetwork(a), a) {
			return &portHeldError{addr: a, holder: listenerOf(a)}
		}
	}
	out, err := os.OpenFile(s.outPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.path, s.args...)
	// An *os.File is handed to the child as is: no copying goroutine, and
	// the output survives the process for Log.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr()
	err = cmd.Start()
	out.Close()
	if err != nil {
		return err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	s.mu.Lock()
	s.cur, s.Cmd, s.pid = p, cmd, cmd.Process.Pid
	s.mu.Unlock()
	go s.reap(p)

	deadline := time.Now().Add(startTimeout)
	for _, a := range s.waitAddrs {
		err := waitAccepting(addrNetwork(a), a, deadline, p.done)
		if errors.Is(err, errExited) {
			return fmt.Errorf("%s exited during start-up (%v)", s.Name, p.err)
		}
		if err != nil {
			return fmt.Errorf("after %v: %w", startTimeout, err)
		}
	}
	return nil
}

// reap waits for p to exit, kills whatever it left in its process group,
// and reaps it. Signals are sent under mu only while reaped is false, so
// they can never reach a process that reused the PID.
func (s *Server) reap(p *proc) {
	pid := p.cmd.Process.Pid
	zombie := waitZombie(pid)
	s.mu.Lock()
	if zombie {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	p.err = p.cmd.Wait()
	p.reaped = true
	s.mu.Unlock()
	close(p.done)
}

// signal sends sig to the current process (to its whole group if group is
// set) and returns it; it returns nil if no process is running.
func (s *Server) signal(sig syscall.Signal, group bool) *proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.cur
	if p == nil || p.reaped {
		return nil
	}
	pid := p.cmd.Process.Pid
	if group {
		pid = -pid
	}
	_ = syscall.Kill(pid, sig)
	return p
}

// PID returns the process ID of the server's latest process, which may have
// exited since.
func (s *Server) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// Running reports whether the server's process has not exited.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur != nil && !s.cur.reaped
}

// Stop sends SIGTERM (and SIGCONT, in case the server is paused), waits up
// to five seconds, then kills the process group, and returns once the
// process is reaped. It does nothing if the server is not running. For
// memcached it also opens and closes one connection after SIGTERM, to wake
// the event loop that must notice the signal.
func (s *Server) Stop() {
	p := s.signal(syscall.SIGTERM, false)
	if p == nil {
		return
	}
	s.signal(syscall.SIGCONT, true)
	if s.wakeOnStop {
		if c, err := net.DialTimeout(s.Network, s.Addr, 100*time.Millisecond); err == nil {
			c.Close()
		}
	}
	timer := time.NewTimer(s.stopWait)
	defer timer.Stop()
	select {
	case <-p.done:
		return
	case <-timer.C:
	}
	s.signal(syscall.SIGKILL, true)
	<-p.done
}

// Kill sends SIGKILL to the server's process group and returns once the
// process is reaped. It does nothing if the server is not running.
func (s *Server) Kill() {
	if p := s.signal(syscall.SIGKILL, true); p != nil {
		<-p.done
	}
}

// Pause stops the server's process group with SIGSTOP: connections stay
// open but nothing is answered. On Linux it returns once the process is
// stopped.
func (s *Server) Pause() {
	if p := s.signal(syscall.SIGSTOP, true); p != nil {
		waitStopped(p.cmd.Process.Pid)
	}
}

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() {
	s.signal(syscall.SIGCONT, true)
}

// Restart stops the server if it is running, then starts it again with the
// same arguments, port and directory, and waits until it accepts. Its
// output is appended to the same log.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.Stop()
	if f, err := os.OpenFile(s.outPath, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		fmt.Fprintf(f, "\n=== testutil: restarting %s at %s ===\n", s.Name, time.Now().Format(time.RFC3339Nano))
		f.Close()
	}
	s.startOrFail(t)
}

// Log returns what the server has written so far: its stdout and stderr
// and, for servers that write one (nutcracker), its log file.
func (s *Server) Log() string {
	var b strings.Builder
	out, err := os.ReadFile(s.outPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(&b, "(reading %s: %v)\n", s.outPath, err)
	}
	b.Write(out)
	if s.logPath != "" {
		fmt.Fprintf(&b, "--- %s ---\n", s.logPath)
		log, err := os.ReadFile(s.logPath)
		if err != nil {
			fmt.Fprintf(&b, "(%v)\n", err)
		}
		b.Write(log)
	}
	return b.String()
}

// Dial connects to the server, failing the test if it cannot, and closes
// the connection when the test ends.
func (s *Server) Dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(s.Network, s.Addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", s.Name, s.Addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// tail returns the last n bytes of s, marked as cut if it was longer.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[...]\n" + s[len(s)-n:]
}
