//go:build unix

package testutil

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// portLockFile is one file shared by every test process of the machine; a
// process owns a port while it holds a write lock on the file's byte at the
// port's offset. POSIX record locks belong to the process and vanish when it
// exits, however it exits, so a crashed test leaves nothing to clean up.
// They are also dropped when the process closes any descriptor of the file,
// which is why it is opened once and never closed.
var portLockFile = sync.OnceValue(func() *os.File {
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "shardproxy-test-ports.lock"), os.O_RDWR|os.O_CREATE, 0o666)
	if err != nil {
		return nil
	}
	return f
})

// lockPort reserves port for this process against other test processes. It
// reports false if another process holds it. Without a lock file (an
// unwritable temp dir) it reserves nothing and reports true.
func lockPort(port int) bool {
	f := portLockFile()
	if f == nil {
		return true
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: int64(port), Len: 1}
	return syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk) == nil
}
