//go:build linux

package main

import (
	"errors"
	"io"

	"github.com/shardproxy/shardproxy/internal/resp"
	"golang.org/x/sys/unix"
)

// errStrayReply: the server answered more than it was asked.
var errStrayReply = errors.New("reply without a request")

// backend is a loop's one connection to one server. Every client of the
// loop whose key the ring gives this server appends its request to out;
// the round's requests go in one write, and replies come back in the same
// order, matched to their slots through q.
type backend struct {
	// Immutable after newLoop.
	idx    int
	name   string // ring name, for errors
	family int
	addr   unix.Sockaddr

	// Owned by the loop goroutine.
	fd         int // -1 when not connected
	connecting bool
	wait       bool // the socket was full: EPOLLOUT asked for
	dirty      bool
	events     uint32
	out        []byte // requests not yet written, from off
	off        int
	in         []byte // replies read, not yet complete
	scan       resp.ReplyScanner
	q          fifo // slots in the order their requests were written
}

// forward sends a request to the server its key belongs to.
func (l *loop) forward(c *client, key, raw []byte) {
	b := l.backends[l.ring.Pick(key)]
	if b.fd < 0 {
		if err := l.connect(b); err != nil {
			l.answer(c, resp.AppendError(l.scratch[:0], "ERR server "+b.name+": "+err.Error()))
			return
		}
	}
	if len(b.out)-b.off > maxBackendQueue {
		l.answer(c, resp.AppendError(l.scratch[:0], "ERR server "+b.name+": too many bytes queued"))
		return
	}
	s := l.newSlot(c)
	l.enqueue(c, s)
	b.out = append(b.out, raw...)
	b.q.push(s)
	if !b.dirty {
		b.dirty = true
		l.dirtyBackends = append(l.dirtyBackends, b)
	}
}

// connect starts a non-blocking connection; requests queue in out
// meanwhile and are written once it is up.
func (l *loop) connect(b *backend) error {
	fd, err := unix.Socket(b.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	err = unix.Connect(fd, b.addr)
	switch err {
	case nil:
		b.connecting = false
		b.events = unix.EPOLLIN
	case unix.EINPROGRESS:
		b.connecting = true
		b.events = unix.EPOLLIN | unix.EPOLLOUT
	default:
		unix.Close(fd)
		return err
	}
	if err := l.add(fd, b, b.events); err != nil {
		unix.Close(fd)
		return err
	}
	b.fd = fd
	if b.in == nil {
		b.in = make([]byte, 0, backendBufSize)
	}
	return nil
}

func (l *loop) backendEvent(b *backend, ev uint32) {
	if b.connecting {
		if ev&(unix.EPOLLOUT|unix.EPOLLERR|unix.EPOLLHUP) == 0 {
			return
		}
		if soerr, err := unix.GetsockoptInt(b.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || soerr != 0 {
			if err == nil {
				err = unix.Errno(soerr)
			}
			l.failBackend(b, err)
			return
		}
		b.connecting = false
		l.modify(b.fd, &b.events, unix.EPOLLIN)
		l.writeBackend(b)
		return
	}
	if ev&unix.EPOLLOUT != 0 {
		b.wait = false
		l.writeBackend(b)
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 && b.fd >= 0 {
		l.readBackend(b)
	}
}

// writeBackend writes the queued requests, keeping what the socket did
// not take for EPOLLOUT.
func (l *loop) writeBackend(b *backend) {
	if b.fd < 0 || b.connecting || b.wait || b.off == len(b.out) {
		return
	}
	n, err := unix.Write(b.fd, b.out[b.off:])
	if n > 0 {
		b.off += n
	}
	if b.off == len(b.out) {
		b.out, b.off = b.out[:0], 0
		if cap(b.out) > maxBackendQueue/4 {
			b.out = nil
		}
		l.modify(b.fd, &b.events, unix.EPOLLIN)
		return
	}
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		l.failBackend(b, err)
		return
	}
	b.wait = true
	l.modify(b.fd, &b.events, unix.EPOLLIN|unix.EPOLLOUT)
}

// readBackend reads once and completes a slot per whole reply.
func (l *loop) readBackend(b *backend) {
	n, err := unix.Read(b.fd, b.in[len(b.in):cap(b.in)])
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil:
		l.failBackend(b, err)
		return
	case n == 0:
		l.failBackend(b, io.EOF)
		return
	}
	b.in = b.in[:len(b.in)+n]
	off := 0
	for off < len(b.in) {
		m, err := b.scan.Scan(b.in[off:])
		if err == resp.ErrIncomplete {
			break
		}
		if err != nil {
			l.failBackend(b, err)
			return
		}
		s := b.q.pop()
		if s == nil {
			l.failBackend(b, errStrayReply)
			return
		}
		l.complete(s, b.in[off:off+m])
		off += m
	}
	rest := copy(b.in, b.in[off:])
	b.in = b.in[:rest]
	// The scanner keeps its place relative to the reply's start, which
	// is now b.in[0]. Make room for what it still needs, within bounds.
	if rest > 0 {
		if want := rest + b.scan.Need(); want > cap(b.in) {
			if want > maxReply {
				l.failBackend(b, errors.New("reply larger than the prototype's limit"))
				return
			}
			grown := make([]byte, rest, max(want, 2*cap(b.in)))
			copy(grown, b.in)
			b.in = grown
		}
	} else if cap(b.in) > backendBufSize {
		b.in = make([]byte, 0, backendBufSize)
	}
}

// failBackend closes the connection and answers every request waiting on
// it with an error; the next request dials again.
func (l *loop) failBackend(b *backend, cause error) {
	l.forget(b.fd)
	b.fd, b.connecting, b.wait = -1, false, false
	b.out, b.off = b.out[:0], 0
	b.in = b.in[:0]
	b.scan.Reset()
	reply := resp.AppendError(nil, "ERR server "+b.name+": "+cause.Error())
	for s := b.q.pop(); s != nil; s = b.q.pop() {
		l.complete(s, reply)
	}
	l.logger.Warn("server connection failed", "server", b.name, "err", cause)
}
