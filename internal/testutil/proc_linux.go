package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// sysProcAttr puts the child in a process group of its own, so that Ctrl-C
// in the terminal signals `go test` but not the servers, and has the kernel
// SIGKILL it if the test binary dies without running its cleanups.
//
// PR_SET_PDEATHSIG fires when the OS thread that forked the child exits, not
// the process; the Go runtime only ends threads whose goroutine exited while
// locked with runtime.LockOSThread, which tests starting servers do not do.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// waitZombie blocks until process pid has exited, without reaping it, and
// reports whether it did. While the zombie is unreaped neither its PID nor
// its process group ID can be reused, so the group can still be signalled
// safely.
func waitZombie(pid int) bool {
	const pPID = 1     // idtype_t P_PID
	var info [128]byte // siginfo_t, which this caller ignores
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|syscall.WNOWAIT, 0, 0)
		switch errno {
		case 0:
			return true
		case syscall.EINTR:
			continue
		default:
			return false
		}
	}
}

// waitStopped waits, up to a second, until process pid is in the stopped
// state, so that Pause returns only once the server can no longer answer.
func waitStopped(pid int) {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		if procState(pid) == 'T' {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// procState returns the state letter from /proc/PID/stat ('R', 'S', 'T',
// 'Z', ...), or 0 if the process does not exist.
func procState(pid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may itself contain ") ".
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// listenerOf names the process listening on the TCP address addr
// ("pid 123: redis-server …"), from /proc/net/tcp and every process's
// descriptors, or returns "" if it cannot be found.
func listenerOf(addr string) string {
	_, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return ""
	}
	inode := ""
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			// local_address is hex IP:PORT; st 0A is LISTEN; f[9] the inode.
			if len(f) < 10 || f[3] != "0A" || !strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) {
				continue
			}
			inode = f[9]
		}
	}
	if inode == "" {
		return "no listening socket found in /proc/net/tcp"
	}
	want := "socket:[" + inode + "]"
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); target == want {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				return fmt.Sprintf("pid %d: %s", pid, strings.TrimSpace(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))))
			}
		}
	}
	return "socket inode " + inode + ", no process found holding it"
}
