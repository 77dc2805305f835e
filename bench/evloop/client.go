//go:build linux

package main

import (
	"github.com/shardproxy/shardproxy/internal/resp"
	"golang.org/x/sys/unix"
)

// client is one client connection. An idle client holds no buffer: its
// reads land in the loop's shared buffer, and only a partial request is
// copied into in; out exists only while replies wait to be written.
type client struct {
	// Owned by the loop goroutine, like everything in a loop.
	fd     int32
	events uint32 // what epoll reports for it now
	nq     int32  // slots in the queue
	need   int32  // the parser's Need for the partial request in in
	dirty  bool   // in the loop's dirtyClients
	paused bool   // over a limit: not read until under it
	eof    bool   // not read any more; closed once everything owed is written
	wait   bool   // the socket was full: EPOLLOUT asked for
	closed bool

	head, tail *slot  // replies owed, in request order
	in         []byte // a partial request (or, when paused, unparsed ones)
	out        []byte // replies not written yet, from off
	off        int
}

func (l *loop) clientEvent(c *client, ev uint32) {
	if ev&unix.EPOLLOUT != 0 {
		l.writeClient(c)
		if c.closed {
			return
		}
		l.markClient(c)
	}
	if ev&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !c.eof && !c.paused {
		l.readClient(c)
	}
}

// readClient reads once (level-triggered: more data wakes the loop again)
// and serves every complete request read.
func (l *loop) readClient(c *client) {
	buf := l.rbuf
	if c.in != nil {
		if cap(c.in)-len(c.in) < outBufSize {
			size := min(max(2*cap(c.in), len(c.in)+int(c.need), len(c.in)+readBufSize), maxRequest+readBufSize)
			grown := make([]byte, len(c.in), size)
			copy(grown, c.in)
			l.putBuf(c.in)
			c.in = grown
		}
		buf = c.in[len(c.in):cap(c.in)]
	}
	n, err := unix.Read(int(c.fd), buf)
	switch {
	case err == unix.EAGAIN || err == unix.EINTR:
		return
	case err != nil:
		l.closeClient(c)
		return
	case n == 0:
		l.clientEOF(c)
		return
	}
	if c.in != nil {
		c.in = c.in[:len(c.in)+n]
		l.consume(c, c.in)
	} else {
		l.consume(c, l.rbuf[:n])
	}
}

// consume serves the complete requests at the start of data and keeps the
// rest in c.in.
func (l *loop) consume(c *client, data []byte) {
	used := l.serve(c, data)
	rest := data[used:]
	switch {
	case len(rest) == 0:
		l.putBuf(c.in)
		c.in = nil
	case c.in != nil: // data is c.in
		c.in = c.in[:copy(c.in, rest)]
	default:
		c.in = append(l.getBuf(len(rest)+l.need), rest...)
	}
	c.need = int32(l.need)
	if !c.paused && len(c.in)+l.need > maxRequest {
		l.answer(c, resp.AppendError(l.scratch[:0], "ERR request larger than the prototype's limit"))
		l.stopReading(c)
	}
	if c.paused {
		l.modify(int(c.fd), &c.events, c.wantEvents())
	}
}

// serve parses and dispatches requests from data until it ends, or the
// client reaches a limit; it returns the bytes used.
func (l *loop) serve(c *client, data []byte) int {
	used := 0
	l.need = 0
	for used < len(data) && !c.eof {
		if c.over() {
			c.paused = true
			break
		}
		n, err := resp.ParseRequest(data[used:], &l.req)
		if err == resp.ErrIncomplete {
			used += n
			l.need = l.req.Need()
			// The parser's progress is the client's: start afresh with
			// the next client (this one's partial request is parsed again
			// from its start, which costs only its header).
			l.req.Reset()
			break
		}
		if err != nil {
			// As Redis: the error, then the connection is closed.
			l.answer(c, resp.AppendError(l.scratch[:0], "ERR "+err.Error()))
			l.stopReading(c)
			return len(data)
		}
		l.dispatch(c, data[used:used+n])
		used += n
	}
	return used
}

// dispatch routes one parsed request (l.req, whose bytes are raw) or
// answers it.
func (l *loop) dispatch(c *client, raw []byte) {
	args := l.req.Args
	cmd := lookup(args[0])
	switch {
	case cmd == nil:
		l.answer(c, resp.AppendError(l.scratch[:0], "ERR unknown command '"+string(args[0])+"' (the prototype serves GET, SET and PING)"))
	case !cmd.arityOK(len(args)):
		l.answer(c, resp.AppendError(l.scratch[:0], "ERR wrong number of arguments for '"+cmd.name+"' command"))
	case cmd.key == 0:
		l.scratch = cmd.answer(l.scratch[:0], args)
		l.answer(c, l.scratch)
	default:
		l.forward(c, args[cmd.key], raw)
	}
}

// answer queues a reply the proxy makes itself, in its place among the
// replies the client is owed.
func (l *loop) answer(c *client, reply []byte) {
	if c.head == nil {
		l.appendOut(c, reply)
		return
	}
	s := l.newSlot(c)
	s.reply = append(s.reply, reply...)
	s.done = true
	l.enqueue(c, s)
}

func (l *loop) enqueue(c *client, s *slot) {
	if c.tail == nil {
		c.head = s
	} else {
		c.tail.next = s
	}
	c.tail = s
	c.nq++
}

// complete gives slot s its reply. If it is the oldest the client is owed,
// the reply and every finished one after it go to the client's output;
// otherwise it waits in the slot.
func (l *loop) complete(s *slot, reply []byte) {
	c := s.c
	if c.closed {
		l.freeSlot(s)
		return
	}
	if c.head != s {
		s.reply = append(s.reply[:0], reply...)
		s.done = true
		return
	}
	l.appendOut(c, reply)
	l.popHead(c)
	for h := c.head; h != nil && h.done; h = c.head {
		l.appendOut(c, h.reply)
		l.popHead(c)
	}
}

func (l *loop) popHead(c *client) {
	s := c.head
	c.head = s.next
	if c.head == nil {
		c.tail = nil
	}
	c.nq--
	l.freeSlot(s)
}

// appendOut adds reply bytes to the client's output; they are written
// when the round ends.
func (l *loop) appendOut(c *client, b []byte) {
	if c.out == nil {
		c.out = l.getBuf(len(b))
	}
	c.out = append(c.out, b...)
	l.markClient(c)
}

func (l *loop) markClient(c *client) {
	if !c.dirty {
		c.dirty = true
		l.dirtyClients = append(l.dirtyClients, c)
	}
}

// over reports whether the client holds as much as it may: it is read no
// more until its replies are written and its requests answered.
func (c *client) over() bool {
	return c.nq >= maxInflight || len(c.out)-c.off >= maxOutput
}

func (c *client) wantEvents() uint32 {
	var ev uint32
	if !c.paused && !c.eof {
		ev |= unix.EPOLLIN
	}
	if c.wait {
		ev |= unix.EPOLLOUT
	}
	return ev
}

// settle is the end of a round for a dirty client: write its output, let
// it go on if it was paused, close it once it has nothing more coming.
func (l *loop) settle(c *client) {
	if c.closed {
		return
	}
	if !c.wait && c.off < len(c.out) {
		l.writeClient(c)
		if c.closed {
			return
		}
	}
	switch {
	case c.eof && c.head == nil && c.out == nil:
		l.closeClient(c)
	case c.paused && !c.over():
		l.resume = append(l.resume, c)
	}
}

// unpause serves what a paused client had sent and reads it again.
func (l *loop) unpause(c *client) {
	if c.closed || !c.paused || c.over() {
		return
	}
	c.paused = false
	if c.in != nil {
		l.consume(c, c.in)
	}
	l.modify(int(c.fd), &c.events, c.wantEvents())
}

func (l *loop) writeClient(c *client) {
	n, err := unix.Write(int(c.fd), c.out[c.off:])
	if n > 0 {
		c.off += n
	}
	if c.off == len(c.out) {
		l.putBuf(c.out)
		c.out, c.off = nil, 0
		if c.wait {
			c.wait = false
			l.modify(int(c.fd), &c.events, c.wantEvents())
		}
		return
	}
	if err != nil && err != unix.EAGAIN && err != unix.EINTR {
		l.closeClient(c)
		return
	}
	if !c.wait {
		c.wait = true
		l.modify(int(c.fd), &c.events, c.wantEvents())
	}
}

// clientEOF: the client sent everything it will send. It gets what it is
// owed, then the connection is closed.
func (l *loop) clientEOF(c *client) {
	l.stopReading(c)
	if c.head == nil && c.out == nil {
		l.closeClient(c)
	}
}

func (l *loop) stopReading(c *client) {
	c.eof = true
	l.modify(int(c.fd), &c.events, c.wantEvents())
	l.markClient(c)
}

// closeClient closes the connection. Slots still waiting for a server's
// reply stay in that server's FIFO, marked by c.closed, and are recycled
// when their replies arrive.
func (l *loop) closeClient(c *client) {
	c.closed = true
	l.forget(int(c.fd))
	for s := c.head; s != nil; {
		next := s.next
		if s.done {
			l.freeSlot(s)
		}
		s = next
	}
	c.head, c.tail, c.nq = nil, nil, 0
	l.putBuf(c.in)
	l.putBuf(c.out)
	c.in, c.out, c.off = nil, nil, 0
}
