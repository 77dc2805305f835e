package segv_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

const prog = "./internal/segv/testdata/segvprog"

// TestSentSIGSEGV: kill -SEGV from another process is logged with
// nutcracker's wording and the process dies by SIGSEGV, with a core file
// when the limits allow one.
func TestSentSIGSEGV(t *testing.T) {
	bin := testutil.BuildPackage(t, prog)
	dir := t.TempDir()
	cmd := exec.Command(bin, "wait")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	// A core file is wanted only where it lands in dir, which the test
	// removes: core_pattern names a file in the working directory. Any
	// other pattern (a path, or a pipe to systemd-coredump or apport)
	// would keep a core of every run, so the limit is 0 then.
	wantCore := coreInWorkingDir(t)
	var lim unix.Rlimit
	if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_CORE, nil, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max == 0 {
		wantCore = false
	}
	if wantCore {
		lim.Cur = lim.Max
	} else {
		lim = unix.Rlimit{}
	}
	if err := unix.Prlimit(cmd.Process.Pid, unix.RLIMIT_CORE, &lim, nil); err != nil {
		t.Fatal(err)
	}

	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "ready\n" {
		t.Fatalf("segvprog said %q, %v; stderr:\n%s", line, err, stderr.Bytes())
	}
	if err := cmd.Process.Signal(syscall.SIGSEGV); err != nil {
		t.Fatal(err)
	}
	ws := waitStatus(t, cmd, 30*time.Second)
	if !ws.Signaled() || ws.Signal() != syscall.SIGSEGV {
		t.Fatalf("wait status %#x, want a death by SIGSEGV; stderr:\n%s", ws, stderr.Bytes())
	}
	want := `level=NOTICE msg="signal 11 (SIGSEGV) received, core dumping" signal=SIGSEGV`
	if !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr.Bytes())
	}
	if wantCore && !ws.CoreDump() {
		t.Errorf("no core dumped with RLIMIT_CORE %d", lim.Cur)
	}
	if !wantCore {
		t.Log("core_pattern or the hard RLIMIT_CORE keeps the core out of the test's directory: the core dump is not checked")
	}
}

// coreInWorkingDir reports whether the kernel writes core files into the
// crashing process's working directory.
func coreInWorkingDir(t *testing.T) bool {
	b, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Logf("core_pattern: %v", err)
		return false
	}
	p := strings.TrimSpace(string(b))
	return p != "" && !strings.ContainsAny(p, "/|")
}

// TestFaultKeepsGoCrashReport: with Handle installed, a nil dereference is
// still Go's panic with its crash report and exit status 2, not a death by
// the signal.
func TestFaultKeepsGoCrashReport(t *testing.T) {
	bin := testutil.BuildPackage(t, prog)
	cmd := exec.Command(bin, "nilderef")
	cmd.Dir = t.TempDir()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ws := waitStatus(t, cmd, 30*time.Second)
	if !ws.Exited() || ws.ExitStatus() != 2 {
		t.Errorf("wait status %#x, want exit status 2", ws)
	}
	for _, want := range []string{
		"panic: runtime error: invalid memory address or nil pointer dereference",
		"[signal SIGSEGV: segmentation violation",
		"main.main()",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.Bytes())
		}
	}
	if strings.Contains(out.String(), "core dumping") {
		t.Errorf("the fault went to Handle:\n%s", out.Bytes())
	}
}

// waitStatus waits, up to within, for cmd to end and returns its status.
func waitStatus(t *testing.T, cmd *exec.Cmd, within time.Duration) syscall.WaitStatus {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.Sys().(syscall.WaitStatus)
	case <-time.After(within):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("pid %d still running after %v", cmd.Process.Pid, within)
		return 0
	}
}
