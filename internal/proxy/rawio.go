package proxy

import (
	"errors"
	"io"
	"net"
	"syscall"
)

// rawConn gives a session or a backend the two I/O operations the hot path
// needs that net.Conn does not offer:
//
//   - read without holding a buffer while the connection is idle: the buffer
//     is taken from a pool only once the socket has data, so an idle client
//     costs no read buffer (the design's memory-per-idle-connection rule);
//   - a write that never blocks, so a backend reader goroutine can hand
//     replies straight to a client without being stalled by a slow one.
type rawConn struct {
	conn net.Conn
	rc   syscall.RawConn
}

func newRawConn(c net.Conn) (*rawConn, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil, errors.New("connection has no file descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	return &rawConn{conn: c, rc: rc}, nil
}

// read waits until the socket is readable, then reads into a buffer from
// get. If the socket turns out to have nothing (a spurious wake-up), the
// buffer goes back through put and the wait goes on. It returns io.EOF when
// the peer has closed, and net.ErrClosed once the connection is closed.
//
// The read is attempted before waiting rather than after: Go's poller
// forgets readiness that arrived before the wait began, so waiting first
// could sleep forever on data already in the socket.
func (r *rawConn) read(get func() []byte, put func([]byte)) (buf []byte, n int, err error) {
	var rerr error
	cerr := r.rc.Read(func(fd uintptr) bool {
		if buf == nil {
			buf = get()
		}
		for {
			n, rerr = syscall.Read(int(fd), buf)
			if rerr != syscall.EINTR {
				break
			}
		}
		if rerr == syscall.EAGAIN {
			put(buf)
			buf = nil
			return false
		}
		return true
	})
	switch {
	case cerr != nil:
		return buf, 0, cerr
	case rerr != nil:
		return buf, 0, rerr
	case n <= 0:
		return buf, 0, io.EOF
	}
	return buf, n, nil
}

// tryWrite writes as much of p as the socket takes without blocking and
// returns how much that was. A full socket buffer is not an error (n < len(p),
// err == nil); the caller finishes the write in a goroutine of its own.
func (r *rawConn) tryWrite(p []byte) (n int, err error) {
	var werr error
	cerr := r.rc.Write(func(fd uintptr) bool {
		for n < len(p) {
			m, e := syscall.Write(int(fd), p[n:])
			if e == syscall.EINTR {
				continue
			}
			if e == syscall.EAGAIN {
				break
			}
			if e != nil {
				werr = e
				break
			}
			n += m
		}
		return true
	})
	if cerr != nil {
		return n, cerr
	}
	return n, werr
}
