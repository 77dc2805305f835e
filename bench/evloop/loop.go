//go:build linux

package main

import (
	"fmt"
	"log/slog"

	"github.com/shardproxy/shardproxy/internal/hashkit"
	"github.com/shardproxy/shardproxy/internal/resp"
	"golang.org/x/sys/unix"
)

// Bounds. The prototype serves benchmarks, so they are constants.
const (
	readBufSize    = 64 << 10 // the loop's shared read buffer for clients
	backendBufSize = 64 << 10 // a server connection's read buffer
	outBufSize     = 4 << 10  // a client's output buffer when it first needs one
	keepBufMax     = 64 << 10 // larger buffers are not kept for reuse
	keepBufs       = 1024     // how many spare buffers a loop keeps

	maxInflight     = 4096     // requests one client may have in flight
	maxOutput       = 1 << 20  // unwritten reply bytes before a client is read no more
	maxRequest      = 64 << 20 // the largest request (a SET's value) accepted
	maxReply        = 64 << 20 // the largest reply a server connection buffers
	maxBackendQueue = 16 << 20 // unsent bytes to one server before requests are refused
	maxEvents       = 256      // events taken from epoll_wait at once
	acceptBurst     = 64       // accepts per readiness of the listener
)

// listener and waker mark the loop's own descriptors in its table.
type (
	listener struct{}
	waker    struct{}
)

// loop is one event loop: an epoll set holding its listening socket, its
// clients and its connections to the servers. Everything in it is owned
// by the loop's goroutine, except wake, which Close writes to.
type loop struct {
	// Immutable after newLoop.
	id       int
	ep       int // the epoll set
	lfd      int // this loop's SO_REUSEPORT listening socket
	wake     int // eventfd: readable when the proxy closes
	ring     *hashkit.Ring
	backends []*backend // by ring index
	logger   *slog.Logger

	// Owned by the loop's goroutine.
	fds     []any // by descriptor: *client, *backend, *listener or *waker
	events  []unix.EpollEvent
	rbuf    []byte       // clients' reads land here; leftovers are copied out
	req     resp.Request // the parser's state, reset between clients
	need    int          // the parser's Need after the last incomplete request
	scratch []byte       // the proxy's own replies are built here
	free    *slot        // recycled slots
	bufs    [][]byte     // recycled client buffers
	closing bool

	dirtyClients  []*client  // clients with replies to write, or to look at
	dirtyBackends []*backend // server connections with requests to write
	resume        []*client  // paused clients now under their limits
}

func newLoop(id int, p *pool, logger *slog.Logger) (*loop, error) {
	l := &loop{id: id, ep: -1, lfd: -1, wake: -1, ring: p.ring, logger: logger.With("loop", id),
		events: make([]unix.EpollEvent, maxEvents), rbuf: make([]byte, readBufSize)}
	var err error
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if l.wake, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.shutdown()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	fail := func(err error) (*loop, error) {
		l.shutdown()
		unix.Close(l.wake)
		return nil, err
	}
	if l.lfd, err = listenReusePort(p.listen); err != nil {
		return fail(err)
	}
	for i, s := range p.servers {
		family, sa, err := sockaddr(s.addr)
		if err != nil {
			return fail(err)
		}
		l.backends = append(l.backends, &backend{idx: i, name: s.name, family: family, addr: sa, fd: -1})
	}
	if err := l.add(l.wake, &waker{}, unix.EPOLLIN); err != nil {
		return fail(err)
	}
	if err := l.add(l.lfd, &listener{}, unix.EPOLLIN); err != nil {
		return fail(err)
	}
	return l, nil
}

// add puts fd in the epoll set (level-triggered) and in the table.
func (l *loop) add(fd int, h any, events uint32) error {
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("epoll_ctl add: %w", err)
	}
	for fd >= len(l.fds) {
		l.fds = append(l.fds, nil)
	}
	l.fds[fd] = h
	return nil
}

// modify changes what epoll reports for fd, if it differs from *cur.
// Level-triggered: a socket is read once per readiness, and one that is
// not to be read (a paused client) is taken out of EPOLLIN rather than
// left to wake the loop again and again.
func (l *loop) modify(fd int, cur *uint32, want uint32) {
	if *cur == want {
		return
	}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: want, Fd: int32(fd)}); err != nil {
		l.logger.Warn("epoll_ctl mod", "fd", fd, "err", err)
		return
	}
	*cur = want
}

// forget closes fd and drops it from the table (closing removes it from
// the epoll set).
func (l *loop) forget(fd int) {
	l.fds[fd] = nil
	unix.Close(fd)
}

// run waits for events and handles them until Close. Each round handles
// every ready descriptor first and writes afterwards (flush): the requests
// of all the clients that were readable go to each server in one write,
// and all the replies a client got in the round in one write.
func (l *loop) run() {
	defer l.shutdown()
	for {
		n, err := unix.EpollWait(l.ep, l.events, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			l.logger.Error("epoll_wait", "err", err)
			return
		}
		for i := range n {
			ev := l.events[i]
			fd := int(ev.Fd)
			if fd >= len(l.fds) {
				continue
			}
			switch h := l.fds[fd].(type) {
			case *client:
				l.clientEvent(h, ev.Events)
			case *backend:
				l.backendEvent(h, ev.Events)
			case *listener:
				l.accept()
			case *waker:
				l.closing = true
			}
		}
		if l.closing {
			return
		}
		l.flush()
	}
}

// flush writes what the round produced: first the paused clients that may
// go on, then every server connection with requests, then every client
// with replies. Writing clients can unpause others, hence the loop.
func (l *loop) flush() {
	for {
		for i, c := range l.resume {
			l.resume[i] = nil
			l.unpause(c)
		}
		l.resume = l.resume[:0]
		for i, b := range l.dirtyBackends {
			l.dirtyBackends[i] = nil
			b.dirty = false
			l.writeBackend(b)
		}
		l.dirtyBackends = l.dirtyBackends[:0]
		for i := 0; i < len(l.dirtyClients); i++ {
			c := l.dirtyClients[i]
			l.dirtyClients[i] = nil
			c.dirty = false
			l.settle(c)
		}
		l.dirtyClients = l.dirtyClients[:0]
		if len(l.resume) == 0 && len(l.dirtyBackends) == 0 {
			return
		}
	}
}

// accept takes the connections waiting on this loop's listener.
func (l *loop) accept() {
	for range acceptBurst {
		fd, _, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			switch err {
			case unix.EAGAIN, unix.ECONNABORTED, unix.EINTR:
			default:
				// EMFILE and friends: a prototype only says so (the
				// listener stays readable, so the loop keeps trying).
				l.logger.Warn("accept", "err", err)
			}
			return
		}
		// As nutcracker does for its clients: replies are written whole,
		// so Nagle would only delay them.
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
		c := &client{fd: int32(fd), events: unix.EPOLLIN}
		if err := l.add(fd, c, unix.EPOLLIN); err != nil {
			l.logger.Warn("accept", "err", err)
			unix.Close(fd)
		}
	}
}

// shutdown closes every descriptor the loop owns but wake, which Close
// writes to until every loop has stopped.
func (l *loop) shutdown() {
	if l.lfd >= 0 && (l.lfd >= len(l.fds) || l.fds[l.lfd] == nil) {
		unix.Close(l.lfd) // bound but never added to the set
	}
	for fd, h := range l.fds {
		if h != nil && fd != l.wake {
			unix.Close(fd)
		}
		l.fds[fd] = nil
	}
	if l.ep >= 0 {
		unix.Close(l.ep)
	}
}

// Slots and buffers are recycled within the loop.

func (l *loop) newSlot(c *client) *slot {
	s := l.free
	if s == nil {
		s = &slot{}
	} else {
		l.free = s.next
	}
	s.c, s.next, s.done = c, nil, false
	return s
}

func (l *loop) freeSlot(s *slot) {
	s.c, s.done = nil, false
	s.reply = s.reply[:0]
	if cap(s.reply) > outBufSize {
		s.reply = nil
	}
	s.next = l.free
	l.free = s
}

// getBuf returns an empty buffer of at least n bytes' capacity.
func (l *loop) getBuf(n int) []byte {
	if k := len(l.bufs); k > 0 && cap(l.bufs[k-1]) >= n {
		b := l.bufs[k-1]
		l.bufs[k-1] = nil
		l.bufs = l.bufs[:k-1]
		return b
	}
	return make([]byte, 0, max(n, outBufSize))
}

// putBuf keeps b for reuse, unless it is large or enough are kept.
func (l *loop) putBuf(b []byte) {
	if b == nil || cap(b) > keepBufMax || len(l.bufs) >= keepBufs {
		return
	}
	l.bufs = append(l.bufs, b[:0])
}
