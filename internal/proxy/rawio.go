package proxy

import (
	"errors"
	"io"
	"net"
	"syscall"
	"unsafe"
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

	// earlyPeeks is how many more short reads are followed by a peek for
	// an end of stream (see readLoop). Owned by the reader.
	earlyPeeks int
	// partial: the reader holds the start of a frame whose rest has not
	// come; a short read is then followed by a peek, so that a peer that
	// sent part of a frame and closed is seen at once (its end of stream
	// came with the data and raises no event of its own). Owned by the
	// reader.
	partial bool

	// tryWrite's state, so that its callback is a method value made once
	// (a closure per call would allocate). Owned by the current writer.
	wbuf    []byte
	wn      int
	werr    error
	writeFn func(fd uintptr) bool
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
	r := &rawConn{conn: c, rc: rc}
	r.writeFn = r.writeNonBlocking
	return r, nil
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
// loop waits for the poller at once: one read per burst of data, no EAGAIN
// read.
//
// The price: an end of stream that arrived with the last data raises no
// event of its own (the poller is edge-triggered), so a client that
// half-closes right after its requests (`echo PING | nc -N`) would wait
// for ever. A peek after every short read finds it but costs a system call
// per request (measured: 12 % of throughput at 50 clients, 21 % at one).
// So the first earlyPeeks short reads are followed by a peek — scripted
// clients send their requests and the FIN in their first bursts — and the
// pool's idle sweep (sweepHalfClosed) finds the rest within a second.

// the data, then waits for the poller: one read and one peek per burst of
// data, no EAGAIN read. An idle connection holds no buffer.
func (r *rawConn) readLoop(get func() []byte, put func([]byte), onData func(buf []byte, n int) bool) error {
	var rerr error
	first := true
	cerr := r.rc.Read(func(fd uintptr) bool {
		if first {
			// Before taking a buffer, look whether anything is there: a
			// connection that never sends stays parked without ever
			// touching the buffer pool, whose slow path would grow the
			// goroutine's stack past its initial 2 KiB for good.
			first = false
			if !readable(fd) {
				return false
			}
		}
		for {
			buf := get()
			n, err := rawRead(fd, buf)
			for err == syscall.EINTR {
				n, err = rawRead(fd, buf)
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
				switch {
				case r.partial:
				case r.earlyPeeks > 0:
					r.earlyPeeks--
				default:
					return false // drained: the poller tells us when more comes
				}
				if !readable(fd) {
					return false
				}
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return rerr
}

// rawRead and rawWrite are read(2) and write(2) without the runtime's
// entersyscall/exitsyscall: the sockets are non-blocking, so the call
// returns at once, and telling the scheduler about it costs more than the
// call (and, with idle Ps, wakes the sysmon thread on every system call).
func rawRead(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

func rawWrite(fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// readable reports whether fd has data (or an EOF or error) to read, by
// peeking at one byte without consuming it.
// peerClosed reports whether the socket's next read would return end of
// stream: nothing buffered, and the peer has shut down its side.
func peerClosed(fd uintptr) bool {
	var b [1]byte
	for {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		return err == nil && n == 0
	}
}

// wakeIfHalfClosed shuts the read side of a connection whose peer has
// half-closed it while its reader waits for an event that will not come:
// the shutdown raises one, and the reader sees its end of stream. Nothing
// is lost: peerClosed saw no unread byte.
func (r *rawConn) wakeIfHalfClosed() bool {
	woke := false
	_ = r.rc.Control(func(fd uintptr) {
		if peerClosed(fd) {
			woke = syscall.Shutdown(int(fd), syscall.SHUT_RD) == nil
		}
	})
	return woke
}

func readable(fd uintptr) bool {
	var b [1]byte
	for {
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err == syscall.EINTR {
			continue
		}
		return err != syscall.EAGAIN
	}
}

// tryWrite writes as much of p as the socket takes without blocking and
// returns how much that was. A full socket buffer is not an error (n < len(p),
// err == nil); the caller finishes the write in a goroutine of its own.
func (r *rawConn) tryWrite(p []byte) (n int, err error) {
	r.wbuf, r.wn, r.werr = p, 0, nil
	cerr := r.rc.Write(r.writeFn)
	n, err = r.wn, r.werr
	r.wbuf, r.werr = nil, nil
	if cerr != nil {
		return n, cerr
	}
	return n, err
}

func (r *rawConn) writeNonBlocking(fd uintptr) bool {
	for r.wn < len(r.wbuf) {
		m, e := rawWrite(fd, r.wbuf[r.wn:])
		if e == syscall.EINTR {
			continue
		}
		if e == syscall.EAGAIN {
			break
		}
		if e != nil {
			r.werr = e
			break
		}
		r.wn += m
	}
	return true
}
