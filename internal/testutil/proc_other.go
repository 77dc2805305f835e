//go:build unix && !linux

package testutil

import "syscall"

// sysProcAttr puts the child in a process group of its own, so that Ctrl-C
// in the terminal signals `go test` but not the servers. Only Linux can
// also have the child killed when the test binary dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// waitZombie would wait for pid to exit without reaping it; this platform
// lacks waitid(WNOWAIT) in package syscall, so it reports false and leftover
// group members are not killed.
func waitZombie(pid int) bool { return false }

// waitStopped does not confirm the stop on this platform.
func waitStopped(pid int) {}

// procState is not available on this platform.
func procState(pid int) byte { return 0 }

// listenerOf cannot find a listening socket's process on this platform.
func listenerOf(addr string) string { return "" }
