package proxy

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fdReserve is the process's one spare file descriptor (an open
// /dev/null), kept for the moment the process runs out: accept(2) then
// fails with EMFILE and leaves the client in the kernel's queue, where it
// would wait until descriptors come back. Closing the spare frees a slot
// to accept that client with, tell it why and close it at once; then the
// spare is reopened. This is the long-standing trick of event-loop
// servers (libev's documentation describes it for EMFILE).
//
// One spare serves every pool: the descriptor limit is the process's, and
// a spare per pool would hold descriptors that clients could use. mu
// makes one accept loop at a time use it.
type fdReserve struct {
	mu   sync.Mutex // guards fd; held from closing the spare to reopening it
	fd   int        // the spare, or -1 when it is not held
	lost atomic.Bool
}

func newFDReserve() *fdReserve { return &fdReserve{fd: -1} }

// fill opens the spare if it is not held, and reports whether it is.
func (r *fdReserve) fill() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fillLocked()
}

func (r *fdReserve) fillLocked() bool {
	if r.fd < 0 {
		fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == nil {
			r.fd = fd
		}
	}
	r.lost.Store(r.fd < 0)
	return r.fd >= 0
}

// missing reports whether the spare is not held: a refusal could not
// reopen it, because another goroutine took the slot first.
func (r *fdReserve) missing() bool { return r.lost.Load() }

// release closes the spare for good, at shutdown.
func (r *fdReserve) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fd >= 0 {
		syscall.Close(r.fd)
		r.fd = -1
	}
	r.lost.Store(false)
}

// refuseResult says what refuse did.
type refuseResult int

const (
	refusedOne refuseResult = iota // a client was accepted, told and closed
	queueEmpty                     // nothing to accept: wait for a client
	noSpare                        // no spare to close, or its slot was taken: retry soon
)

// refuse accepts one client waiting on the listener rc with the spare's
// slot, writes reply to it (best effort: never blocks), and closes it; then
// it reopens the spare. Its error is that of accept(2) when it failed for
// another reason than an empty queue or a lack of descriptors.
func (r *fdReserve) refuse(rc syscall.RawConn, reply []byte) (refuseResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.fillLocked() {
		return noSpare, nil
	}
	syscall.Close(r.fd)
	r.fd = -1
	var (
		nfd       int
		acceptErr error
	)
	// The listener is non-blocking: accept4 returns EAGAIN at once when no
	// client waits.
	err := rc.Control(func(lfd uintptr) {
		for {
			nfd, _, acceptErr = syscall.Accept4(int(lfd), syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
			if acceptErr != syscall.EINTR && acceptErr != syscall.ECONNABORTED {
				return
			}
		}
	})
	if err == nil && acceptErr == nil {
		closeRefused(nfd, reply)
	}
	r.fillLocked()
	switch {
	case err != nil:
		return noSpare, err // the listener is closed
	case acceptErr == nil:
		return refusedOne, nil
	case acceptErr == syscall.EAGAIN:
		return queueEmpty, nil
	case outOfDescriptors(acceptErr):
		return noSpare, nil
	default:
		return noSpare, os.NewSyscallError("accept4", acceptErr)
	}
}

// closeRefused writes reply to a refused client and closes it. What the
// client already sent is read and dropped first: closing a socket with
// unread data sends a reset, which can make the client lose the reply.
func closeRefused(fd int, reply []byte) {
	_, _ = syscall.Write(fd, reply) // a new socket's empty buffer takes it whole
	var sink [512]byte
	_, _ = syscall.Read(fd, sink[:])
	syscall.Close(fd)
}

// acceptWait bounds one wait in waitAcceptable, so that a closed
// listener is noticed (its Close waits for the wait to end).
const acceptWait = 50 * time.Millisecond

// waitAcceptable returns when a client waits in the queue of the listener
// rc, or after acceptWait. A listener's RawConn cannot wait through Go's
// poller (its Read fails with EINVAL), so this is poll(2), which blocks
// the goroutine's thread: only while the process is out of descriptors and
// no client waits.
func waitAcceptable(rc syscall.RawConn) {
	_ = rc.Control(func(fd uintptr) {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		_, _ = unix.Poll(fds, int(acceptWait/time.Millisecond))
	})
}

// outOfDescriptors reports whether err is the process (EMFILE) or the
// system (ENFILE) running out of file descriptors.
func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}
