package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSIGSEGVFromOutside is twemproxy's test_signal: `pkill -SEGV` makes the
// proxy log the signal and die by it, as nutcracker does.
func TestSIGSEGVFromOutside(t *testing.T) {
	conf, listen := poolConf(t, "")
	logPath := filepath.Join(t.TempDir(), "proxy.log")
	cmd := startForeground(t, listen, "-c", conf, "-o", logPath)
	// The proxy runs in this package's directory and the default action of
	// SIGSEGV dumps core: with the limit at 0 no core file is left in the
	// source tree (or passed to systemd-coredump or apport) by every run.
	if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_CORE, &unix.Rlimit{}, nil); err != nil {
		t.Fatal(err)
	}
	readFileEventually(t, logPath, "shardproxy started")

	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGSEGV); err != nil {
		t.Fatal(err)
	}
	waitExit(t, cmd, 10*time.Second)
	ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGSEGV {
		t.Errorf("wait status %#x (%v), want a death by SIGSEGV", ws, cmd.ProcessState)
	}
	if ws.CoreDump() {
		t.Errorf("core dumped with RLIMIT_CORE 0")
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// twemproxy's test looks for "SEGV"; the line is nutcracker's.
	want := `level=NOTICE msg="signal 11 (SIGSEGV) received, core dumping" signal=SIGSEGV`
	if !strings.Contains(string(b), want) {
		t.Errorf("log lacks %q:\n%s", want, b)
	}
}
