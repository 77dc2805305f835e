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

// readLoop reads the connection until onData returns false or a read
// fails, calling onData with each buffer read (from get; a buffer the read
// did not use goes back through put). It returns io.EOF when the peer has
// closed, and the poller's error (net.ErrClosed, a deadline) otherwise.
//
// The whole loop runs inside one syscall.RawConn.Read, and that is the
// point: Go's poller forgets readiness reported before a RawConn.Read
// begins, so a fresh RawConn.Read (or net.Conn.Read) per request must try a
// read first and usually pays an EAGAIN read for nothing. Staying inside
// one call, readiness that arrives while onData runs is kept, so after a
// read that drained the socket (fewer bytes than the buffer holds) the
// loop waits for the poller before reading again: one read per burst of
// data, no EAGAIN in the steady state. An idle connection holds no buffer.
func (r *rawConn) readLoop(get func() []byte, put func([]byte), onData func(buf []byte, n int) bool) error {
	var rerr error
	cerr := r.rc.Read(func(fd uintptr) bool {
		for {
			buf := get()
			n, err := syscall.Read(int(fd), buf)
			for err == syscall.EINTR {
				n, err = syscall.Read(int(fd), buf)
			}
			switch {
			case err == syscall.EAGAIN:
				put(buf)
				return false // wait for readiness
			case err != nil:
				put(buf)
				rerr = err
				return true
			case n == 0:
				put(buf)
				rerr = io.EOF
				return true
			}
			if !onData(buf, n) {
				return true
			}
			if n < len(buf) {
				return false // drained: the poller tells us when more comes
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return rerr
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
