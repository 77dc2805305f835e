package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemonEnv marks the re-executed daemon and names the file descriptor of its
// readiness pipe. The mark travels in the environment, not in a flag, so the
// daemon's command line stays exactly as the operator typed it (init scripts
// find it with pgrep -f / pkill -f).
const daemonEnv = "SHARDPROXY_DAEMON_READY_FD"

// readyTimeout bounds how long `shardproxy -d` waits for the daemon to say
// it is listening.
const readyTimeout = 10 * time.Second

// daemonize starts this program again as a daemon — same argv, its own
// session, standard I/O on /dev/null — and waits until it reports that its
// listeners are up (or why it could not start). Go cannot fork, so a re-exec
// replaces nutcracker's double fork; setsid detaches it from the terminal and
// the daemon is reparented to init when this process exits.
func daemonize(stderr io.Writer) int {
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "shardproxy: daemonize: %v\n", err)
		return 1
	}
	devNull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		fmt.Fprintf(stderr, "shardproxy: daemonize: %v\n", err)
		return 1
	}
	defer devNull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		fmt.Fprintf(stderr, "shardproxy: daemonize: %v\n", err)
		return 1
	}
	defer r.Close()
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        os.Args,
		Env:         append(os.Environ(), daemonEnv+"=3"),
		Stdin:       devNull,
		Stdout:      devNull,
		Stderr:      devNull,
		ExtraFiles:  []*os.File{w}, // fd 3
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		fmt.Fprintf(stderr, "shardproxy: daemonize: %v\n", err)
		return 1
	}
	pid := cmd.Process.Pid
	_ = cmd.Process.Release()

	msg := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(r) // EOF once the daemon is ready or gone
		msg <- string(b)
	}()
	select {
	case m := <-msg:
		if m == "ok" {
			return 0
		}
		if m == "" {
			m = "daemon exited before it was ready"
		}
		fmt.Fprintf(stderr, "shardproxy: %s\n", strings.TrimSpace(m))
		return 1
	case <-time.After(readyTimeout):
		fmt.Fprintf(stderr, "shardproxy: daemon (pid %d) not ready after %v; it goes on starting, see its log\n", pid, readyTimeout)
		return 0
	}
}

// daemonState is the daemon's end of the readiness pipe.
type daemonState struct{ pipe *os.File }

// daemonChild returns the readiness pipe when this process is the daemon
// started by daemonize, else nil. It clears the mark so that processes the
// daemon might start do not inherit it.
func daemonChild() *daemonState {
	v, ok := os.LookupEnv(daemonEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(daemonEnv)
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil
	}
	return &daemonState{pipe: os.NewFile(uintptr(fd), "daemon-ready")}
}

func (d *daemonState) ready() {
	_, _ = d.pipe.WriteString("ok")
	d.pipe.Close()
}

func (d *daemonState) fail(err error) {
	_, _ = d.pipe.WriteString(err.Error())
	d.pipe.Close()
}

// writePidFile writes this process's pid, as nutcracker's -p does.
func writePidFile(path string) error {
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing pid file: %w", err)
	}
	return nil
}

// removePidFile removes the pid file if it still holds our pid (another
// instance may have taken it over).
func removePidFile(path string, logger *slog.Logger) {
	b, err := os.ReadFile(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			logger.Warn("reading pid file", "path", path, "err", err)
		}
		return
	}
	if strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		return
	}
	if err := os.Remove(path); err != nil {
		logger.Warn("removing pid file", "path", path, "err", err)
	}
}
