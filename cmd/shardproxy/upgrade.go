package main

// Binary upgrade on SIGUSR2, the way nginx and HAProxy do it: the running
// process starts the program file again with the same command line and
// hands it every listening socket as an inherited descriptor. Both
// processes hold the same sockets, so the kernel's accept queues are never
// closed and no connect is refused. The new process reads its
// configuration, adopts the sockets, and answers on a pipe; only on "ok"
// does the old one stop accepting, serve its clients for the grace period
// and exit. Any other outcome leaves the old process serving as before.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/internal/logging"
)

const (
	// upgradeTimeoutEnv overrides defaultUpgradeTimeout with a Go duration
	// ("2s", "1m"): for a configuration that takes long to start, and for
	// tests of a new process that never answers.
	upgradeTimeoutEnv = "SHARDPROXY_UPGRADE_TIMEOUT"
	// defaultUpgradeTimeout bounds the wait for the new process's answer.
	defaultUpgradeTimeout = 10 * time.Second
	// exitWait bounds the wait for a new process that said it failed to
	// exit, before it is killed.
	exitWait = 2 * time.Second
	// maxReadyMessage bounds what is read from the readiness pipe.
	maxReadyMessage = 64 << 10
	// clientPoll is how often handOver looks whether the clients have left.
	clientPoll = 20 * time.Millisecond
)

// errNoReady is the failure of a new process that did not answer in time.
var errNoReady = errors.New("no ready signal")

// programPath returns the path of the program file this process runs,
// resolved once at start-up so that SIGUSR2 starts whatever file is at
// that path then, a newly installed binary included. On Linux
// os.Executable reads /proc/self/exe, which names the old inode: once the
// file was replaced it reads "path (deleted)", and executing it would
// restart the old program.
func programPath() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(p, " (deleted)"), nil
}

// upgradeTimeout returns how long to wait for the new process: the
// value of upgradeTimeoutEnv if it is a positive duration, else the
// default and a reason to warn.
func upgradeTimeout(env string) (time.Duration, error) {
	if env == "" {
		return defaultUpgradeTimeout, nil
	}
	d, err := time.ParseDuration(env)
	if err != nil || d <= 0 {
		return defaultUpgradeTimeout, fmt.Errorf("%s=%q is not a positive duration; using %v", upgradeTimeoutEnv, env, defaultUpgradeTimeout)
	}
	return d, nil
}

// upgrade is a new process started by SIGUSR2 that may not have answered
// yet. pid and proc are immutable after startSuccessor; watch owns the
// process's end (wait, kill) except for abort's SIGTERM.
type upgrade struct {
	pid  int
	proc *os.Process
	// done yields once: nil when the new process said it is ready, else
	// why it will not take over (it has exited or was killed by then).
	done chan error
	stop chan struct{} // closed by abort
}

// startSuccessor starts exe with argv, handing it files (sockets by key,
// as in listenFDsEnv), and watches for its answer for at most timeout.
// The caller closes files afterwards; they stay non-blocking (passable).
// A daemon's successor gets a session of its own, as daemonize gives the
// first daemon; either way it inherits this process's standard I/O
// (/dev/null for a daemon).
func startSuccessor(exe string, argv []string, daemon bool, files map[string]*os.File, timeout time.Duration) (*upgrade, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	extra := []*os.File{w} // readyFD
	defer func() {
		for _, f := range extra {
			f.Close()
		}
	}()
	items := make([]fdKey, 0, len(files))
	for _, key := range slices.Sorted(maps.Keys(files)) {
		f, err := passable(files[key])
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("socket %s: %w", key, err)
		}
		items = append(items, fdKey{fd: readyFD + len(extra), key: key})
		extra = append(extra, f)
	}
	cmd := &exec.Cmd{
		Path: exe,
		Args: argv,
		// Appended last, so they win over any stale copy in the environment.
		Env:         append(os.Environ(), upgradeReadyEnv+"="+strconv.Itoa(readyFD), listenFDsEnv+"="+formatListenFDs(items)),
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		ExtraFiles:  extra,
		SysProcAttr: &syscall.SysProcAttr{Setsid: daemon},
	}
	if err := cmd.Start(); err != nil {
		r.Close()
		return nil, err
	}
	u := &upgrade{pid: cmd.Process.Pid, proc: cmd.Process, done: make(chan error, 1), stop: make(chan struct{})}

	msg := make(chan string, 1)
	go func() {
		// EOF once the new process has answered, or is gone.
		b, _ := io.ReadAll(io.LimitReader(r, maxReadyMessage))
		r.Close()
		msg <- string(b)
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	go u.watch(msg, exited, timeout)
	return u, nil
}

// passable returns a descriptor of socket f to hand to a new process,
// one that exec leaves non-blocking. The *os.File that net's File methods
// return switches its descriptor to blocking mode when exec takes it
// (File.Fd), and that mode belongs to the socket, shared with this
// process's listener: the accept loop would then wait inside accept(2),
// where closing the listener does not reach it, and a failed upgrade
// would leave a process that cannot stop. A File made by os.NewFile is
// handed over as it is.
func passable(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var (
		dup   uintptr
		errno syscall.Errno
	)
	if err := rc.Control(func(fd uintptr) {
		dup, _, errno = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nil, err
	}
	if errno != 0 {
		return nil, os.NewSyscallError("fcntl", errno)
	}
	return os.NewFile(dup, f.Name()), nil
}

// watch waits for the new process's answer, its exit, the timeout or
// abort, and puts the outcome in done. A process that will not take over
// is reaped, and killed first if it is still running.
func (u *upgrade) watch(msg <-chan string, exited <-chan error, timeout time.Duration) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case m := <-msg:
		if m == "ok" {
			u.done <- nil
			return
		}
		// It said why it failed (or closed the pipe by dying): it exits.
		u.done <- failure(m, u.reap(exited, exitWait))
	case err := <-exited:
		// The pipe's end of file usually comes first; wait a moment for
		// what it said. Even "ok" is a failure now: it has gone.
		m := ""
		select {
		case m = <-msg:
		case <-time.After(100 * time.Millisecond):
			// The pipe is still open in a process it started.
		}
		u.done <- failure(m, exitStatus(err))
	case <-timer.C:
		u.done <- fmt.Errorf("%w within %v (%s)", errNoReady, timeout, u.reap(exited, 0))
	case <-u.stop:
		u.done <- errors.New("aborted: this process is shutting down")
	}
}

// reap waits up to wait for the process to exit, then kills it, and
// returns how it ended.
func (u *upgrade) reap(exited <-chan error, wait time.Duration) string {
	if wait > 0 {
		select {
		case err := <-exited:
			return exitStatus(err)
		case <-time.After(wait):
		}
	}
	_ = u.proc.Kill()
	return exitStatus(<-exited)
}

// failure is the error of a new process that answered msg (what went
// wrong, "" or "ok") and ended with status.
func failure(msg, status string) error {
	msg = strings.TrimSpace(msg)
	if msg == "" || msg == "ok" {
		msg = "it exited before it was ready"
	}
	return fmt.Errorf("%s (%s)", msg, status)
}

func exitStatus(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// abort asks a new process that has not answered yet to stop (SIGTERM):
// this process is shutting down, and the new one must not take over. The
// signal is sent before abort returns, so the caller may exit at once.
func (u *upgrade) abort() {
	select {
	case <-u.stop:
	default:
		_ = u.proc.Signal(syscall.SIGTERM)
		close(u.stop)
	}
}

// startUpgrade starts the new process of a binary upgrade (SIGUSR2) with
// every listening socket; it returns nil, having logged why, if it could
// not.
func (in *instance) startUpgrade() *upgrade {
	if in.exeErr != nil {
		in.logger.Error("upgrade failed: the program file is unknown", "signal", "SIGUSR2", "err", in.exeErr)
		return nil
	}
	files, err := in.px.ListenerFiles()
	if err != nil {
		in.logger.Error("upgrade failed: cannot hand over the listeners", "signal", "SIGUSR2", "err", err)
		return nil
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	sf, err := in.stats.File()
	if err != nil {
		in.logger.Error("upgrade failed: cannot hand over the stats socket", "signal", "SIGUSR2", "err", err)
		return nil
	}
	files[statsKey] = sf
	up, err := startSuccessor(in.exe, os.Args, in.daemon, files, in.upgradeTimeout)
	if err != nil {
		in.logger.Error("upgrade failed: cannot start the new process", "signal", "SIGUSR2", "exe", in.exe, "err", err)
		return nil
	}
	logging.Log(in.logger, logging.Notice, "upgrading: new process started", "signal", "SIGUSR2", "exe", in.exe,
		"new_pid", up.pid, "sockets", len(files), "ready_timeout", in.upgradeTimeout)
	return up
}

// handOver is the old process's part once the new one is ready: stop
// accepting (the new process accepts on the same sockets), serve the
// clients already connected for the grace period, then close them at a
// request boundary as a shutdown does, and exit 0.
func (in *instance) handOver(newPID int, sigs <-chan os.Signal) int {
	logging.Log(in.logger, logging.Notice, "upgrade: new process ready; no longer accepting",
		"new_pid", newPID, "clients", in.px.Clients(), "grace", in.grace)
	in.px.StopAccepting()
	statsDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
		defer cancel()
		statsDone <- in.stats.Shutdown(ctx)
	}()

	grace := time.NewTimer(in.grace)
	defer grace.Stop()
	poll := time.NewTicker(clientPoll)
	defer poll.Stop()
wait:
	for in.px.Clients() > 0 {
		select {
		case <-grace.C:
			break wait
		case <-poll.C:
		case sig := <-sigs:
			switch sig {
			case syscall.SIGINT, syscall.SIGTERM:
				logging.Log(in.logger, logging.Notice, "grace period cut short", "signal", sig.String())
				break wait
			case syscall.SIGUSR1, syscall.SIGUSR2:
				logging.Log(in.logger, logging.Warn, "signal ignored: this process has handed over", "signal", sig.String(), "new_pid", newPID)
			default:
				in.handleAside(sig)
			}
		}
	}
	logging.Log(in.logger, logging.Notice, "shutting down after the upgrade", "clients", in.px.Clients(), "drain_timeout", drainTimeout)
	in.shutdown(sigs)
	if err := <-statsDone; err != nil {
		logging.Log(in.logger, logging.Warn, "stats server stopped before answering every client", "err", err)
	}
	return 0
}

// reclaimPidFile writes this process's pid into the pid file again if a
// new process that then failed had written its own.
func (in *instance) reclaimPidFile() {
	if in.pidFile == "" {
		return
	}
	if b, err := os.ReadFile(in.pidFile); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		return
	}
	if err := writePidFile(in.pidFile); err != nil {
		in.logger.Error("restoring the pid file", "path", in.pidFile, "err", err)
	}
}
