package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/internal/memcache"
	"github.com/shardproxy/shardproxy/internal/resp"
)

// maxQueued bounds the requests a client may have in flight; past it the
// session stops reading until replies drain, so a client that pipelines
// without reading cannot make the proxy buffer without limit.
const maxQueued = 1 << 14

// session serves one client connection. One goroutine reads and dispatches
// requests; replies are written by whoever completes the request at the
// head of the queue (usually a backend reader), with a write that never
// blocks, and a short-lived goroutine finishes a write the socket would not
// take at once. An idle session therefore holds one goroutine and no buffer.
type session struct {
	// Immutable after newSession.
	pool *Pool
	conn net.Conn
	raw  *rawConn
	id   uint64

	// Owned by the reader goroutine.
	rbuf    []byte  // unparsed bytes: rbuf[:rlen]; nil while idle
	rbufp   *[]byte // the pooled buffer rbuf is, or nil once grown past it
	lent    *[]byte // a pooled buffer handed to a read not yet returned
	rlen    int
	dirty   []*backendConn // backends given requests in this read batch
	stop    bool           // QUIT or an unrecoverable protocol error: read no more
	discard int            // bytes still to drop (a data block memcached would swallow)
	authed  bool
	inTx    bool              // between MULTI and EXEC/DISCARD (Redis pools)
	tx      *txState          // the transaction being queued; kept for reuse
	parsed  *resp.Request     // the request being parsed (Redis pools)
	mc      *memcache.Request // the request being parsed (Memcached pools)
	cur     []byte            // the current request's bytes, as sent to a server
	scratch []byte            // building fragments and re-encoded requests
	idxs    []int             // key indexes of the current request
	keySrv  []*server         // the server of each key of the current request
	// What the stats know of the current request: when its read burst
	// arrived (monotonic ns, 0 when latency is not measured), its Redis
	// command family, its command name and first key (for the slow log).
	now     int64
	family  uint8
	cmdName string
	key     []byte

	// What CLIENT, CLIENT REPLY and RESET keep of a Redis client; its
	// fields have owners of their own (redis_client.go).
	client clientState

	mu      sync.Mutex // guards everything below
	cond    sync.Cond  // signalled when the queue shrinks or the session closes
	queue   reqQueue   // requests in client order, awaiting their replies
	free    []*request
	out     []byte // replies ready to write
	spare   []byte // the other output buffer, while out is being written
	writing bool   // someone is writing to the client
	broken  bool   // the client connection failed; replies are dropped
	closing bool   // no more requests will be read

	// outIsReply says out is a large reply's own buffer, taken over
	// rather than copied (see collect): nothing is appended to it.
	outIsReply bool

	draining atomic.Bool // the pool is shutting down: stop at a request boundary
}

func newSession(p *Pool, conn net.Conn, id uint64) (*session, error) {
	raw, err := newRawConn(conn)
	if err != nil {
		return nil, err
	}
	raw.earlyPeeks = sessionEarlyPeeks
	s := &session{pool: p, conn: conn, raw: raw, id: id}
	s.cond.L = &s.mu
	return s, nil
}

// serve runs the reader loop until the client leaves, the stream breaks or
// the pool shuts down, then waits for every queued request to be answered
// (the backends hold pointers to them) and closes the connection.
func (s *session) serve() error {
	err := s.readLoop()
	if errors.Is(err, os.ErrDeadlineExceeded) && s.draining.Load() {
		err = nil
	}
	if s.client.killed.Load() {
		err = errKilled
	}
	s.mu.Lock()
	s.closing = true
	if err != nil && !errors.Is(err, io.EOF) {
		// The client is gone or broken: nothing more can be written.
		s.broken = true
	}
	for s.queue.len() > 0 || s.writing {
		s.cond.Wait()
	}
	s.mu.Unlock()
	s.conn.Close()
	s.releaseReadBuffer()
	return err
}

func (s *session) readLoop() error {
	if err := s.waitForRoom(); err != nil {
		return err
	}
	var stopErr error
	err := s.raw.readLoop(s.readBuffer, s.putReadBuffer, func(buf []byte, n int) bool {
		if s.rbuf == nil {
			s.rbuf, s.rbufp, s.lent = buf, s.lent, nil
		}
		s.rlen += n
		if s.pool.timing {
			s.now = monoNow()
		}
		used := s.pool.proto.handle(s, s.rbuf[:s.rlen])
		s.flushBackends()
		s.deliver()
		if s.stop {
			return false
		}
		s.consume(used)
		if s.draining.Load() && s.rlen == 0 {
			return false
		}
		if err := s.waitForRoom(); err != nil {
			stopErr = err
			return false
		}
		return true
	})
	if stopErr != nil {
		return stopErr
	}
	return err
}

// drain asks the session to stop reading at the next request boundary;
// requests already read are still answered.
func (s *session) drain() {
	s.draining.Store(true)
	_ = s.conn.SetReadDeadline(time.Now())
}

// readBuffer returns where the next read goes: the free part of the partial
// request's buffer, grown when full, or a pooled buffer.
func (s *session) readBuffer() []byte {
	if s.rbuf == nil {
		s.lent = s.pool.getBuf()
		return *s.lent
	}
	if s.rlen == len(s.rbuf) {
		nb := make([]byte, 2*len(s.rbuf))
		copy(nb, s.rbuf[:s.rlen])
		if s.rbufp != nil {
			s.pool.putBuf(s.rbufp)
			s.rbufp = nil
		}
		s.rbuf = nb
	}
	return s.rbuf[s.rlen:]
}

// putReadBuffer takes back a buffer the read did not use.
func (s *session) putReadBuffer([]byte) {
	if s.lent != nil {
		s.pool.putBuf(s.lent)
		s.lent = nil
	}
}

// consume drops the parsed bytes; an idle session gives its buffer back.
func (s *session) consume(n int) {
	if n == s.rlen {
		s.releaseReadBuffer()
		return
	}
	copy(s.rbuf, s.rbuf[n:s.rlen])
	s.rlen -= n
}

func (s *session) releaseReadBuffer() {
	if s.rbufp != nil {
		s.pool.putBuf(s.rbufp)
	}
	s.rbuf, s.rbufp, s.rlen = nil, nil, 0
}

// waitForRoom blocks while the client has too many requests in flight.
func (s *session) waitForRoom() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.queue.len() >= maxQueued && !s.broken {
		s.cond.Wait()
	}
	if s.broken {
		return net.ErrClosed
	}
	return nil
}

// newRequest takes a request from the free list and queues it in client
// order. Only the reader calls it.
func (s *session) newRequest() *request {
	s.mu.Lock()
	r := s.alloc()
	s.queue.push(r)
	s.mu.Unlock()
	return r
}

// newFragment returns an unqueued request that answers to parent.
func (s *session) newFragment(parent *request) *request {
	s.mu.Lock()
	f := s.alloc()
	f.parent = parent
	parent.frags = append(parent.frags, f)
	parent.pending++
	s.mu.Unlock()
	s.pool.stats.fragments.Add(1)
	return f
}

// alloc must be called with s.mu held.
func (s *session) alloc() *request {
	if n := len(s.free); n > 0 {
		r := s.free[n-1]
		s.free = s.free[:n-1]
		return r
	}
	return &request{sess: s}
}

// recycle must be called with s.mu held.
func (s *session) recycle(r *request) {
	for _, f := range r.frags {
		f.reset()
		s.free = append(s.free, f)
	}
	r.reset()
	s.free = append(s.free, r)
}

// reply completes r with a reply made by the proxy (a local command or an
// error). Only the reader calls it; the reply is written at the end of the
// read batch.
func (s *session) reply(r *request, b []byte) {
	r.reply = append(r.reply[:0], b...)
	s.mu.Lock()
	r.done = true
	s.mu.Unlock()
}

// noServer answers a request whose key has no live server (every server
// ejected), as twemproxy does, and counts it as a forwarding error.
func (s *session) noServer(r *request) {
	s.pool.stats.forwardErrors.Add(1)
	s.replyError(r, "Connection refused")
}

// replyError completes r with a proxy-made error in the pool's protocol.
func (s *session) replyError(r *request, msg string) {
	r.reply = s.pool.proto.appendError(r.reply[:0], msg)
	s.mu.Lock()
	r.done = true
	s.mu.Unlock()
}

// complete records that r's reply (already in r.reply) has arrived; for a
// fragment, the parent is done and merged when its last fragment is.
// It reports whether a request became ready for the client. An EVALSHA
// answered -NOSCRIPT may instead be sent again (see redis_script.go).
func (s *session) complete(r *request) bool {
	if r.retry != nil && r.retry.conn != nil && r.retryNoScript() {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := r.parent
	if p == nil {
		r.done = true
		return true
	}
	return s.settle(p)
}

// startFragments holds parent open while the reader builds its fragments:
// a fragment answered before the last one is even sent must not let the
// parent be merged and recycled under the reader's feet.
func (s *session) startFragments(parent *request) {
	s.mu.Lock()
	parent.pending = 1
	s.mu.Unlock()
}

// endFragments drops the hold of startFragments.
func (s *session) endFragments(parent *request) {
	s.mu.Lock()
	s.settle(parent)
	s.mu.Unlock()
}

// settle counts one answer (or the builder's hold) off parent, and merges
// the fragments' replies once none is outstanding. s.mu must be held.
func (s *session) settle(p *request) bool {
	p.pending--
	if p.pending > 0 {
		return false
	}
	p.reply = p.merge(p, p.reply[:0])
	p.done = true
	return true
}

// deliver moves the finished replies at the head of the queue to the
// output and writes them, unless a write is already under way (its writer
// picks them up). It never blocks on the client.
func (s *session) deliver() {
	for {
		s.mu.Lock()
		s.collect()
		if s.broken {
			s.out = s.out[:0]
			s.outIsReply = false
			s.mu.Unlock()
			return
		}
		if s.writing || len(s.out) == 0 {
			s.mu.Unlock()
			return
		}
		s.writing = true
		out := s.out
		// The spare becomes the new output buffer and is no longer spare:
		// leaving it there would let wrote() hand back memory still being
		// written to the client.
		s.out, s.spare, s.outIsReply = s.spare[:0], nil, false
		s.mu.Unlock()

		n, err := s.raw.tryWrite(out)
		if err == nil && n < len(out) {
			go s.finishWrite(out, n)
			return
		}
		if !s.wrote(out, err) {
			return
		}
	}
}

// collect moves the finished replies at the head of the queue to the
// output. A reply larger than maxKeptReply is not copied: its buffer
// becomes the output by itself (after what is already there has been
// written), so a large value is held once while it passes through the
// proxy, not once per copy. s.mu must be held.
func (s *session) collect() {
	for r := s.queue.peek(); r != nil && r.done; r = s.queue.peek() {
		switch {
		case s.broken || r.silent:
			// Nobody reads it.
		case s.outIsReply:
			return // nothing is appended to a large reply's own buffer
		case len(r.reply) > maxKeptReply:
			if len(s.out) > 0 {
				return // the write of out comes back for it (wrote)
			}
			s.out, r.reply, s.outIsReply = r.reply, nil, true
		default:
			s.out = append(s.out, r.reply...)
		}
		s.queue.pop()
		s.recycle(r)
		s.cond.Broadcast()
	}
}

// finishWrite completes a write the socket would not take at once, then
// keeps writing whatever replies arrived meanwhile.
func (s *session) finishWrite(out []byte, done int) {
	_, err := s.conn.Write(out[done:])
	for err == nil {
		s.mu.Lock()
		s.collect()
		if len(s.out) == 0 || s.broken {
			s.mu.Unlock()
			break
		}
		next := s.out
		s.out, s.outIsReply = out[:0], false
		if cap(out) > maxKeptReply {
			s.out = nil // a large reply's buffer, or grown by one: let it go
		}
		s.mu.Unlock()
		out = next
		_, err = s.conn.Write(out)
	}
	if s.wrote(out, err) {
		s.deliver()
	}
}

// wrote ends a write: the buffer becomes the spare, and it reports whether
// replies that arrived during the write are to be written next.
func (s *session) wrote(out []byte, err error) (more bool) {
	s.mu.Lock()
	if cap(out) <= maxKeptReply && s.spare == nil {
		s.spare = out[:0]
	}
	if err != nil {
		s.broken = true
		s.out = s.out[:0]
		s.outIsReply = false
	}
	s.writing = false
	if !s.broken {
		head := s.queue.peek()
		more = len(s.out) > 0 || head != nil && head.done
	}
	s.cond.Broadcast()
	s.mu.Unlock()
	if err != nil {
		// Wake the reader, which closes the connection (serve): the
		// client cannot be answered any more. Not Close here: this may
		// run inside the reader's own RawConn.Read callback, and Close
		// waits for that read to end.
		_ = s.conn.SetReadDeadline(time.Now())
	}
	return more
}

// abort cuts the client off when shutdown's deadline has passed: the
// reader stops at once, also when it waits for room in the queue, replies
// are dropped, and serve closes the connection once the servers have
// answered or failed what is queued. Not Close: Close waits until the
// reader's read callback returns, and that callback may be waiting for
// the very servers that shutdown fails next.
func (s *session) abort() {
	s.mu.Lock()
	s.broken = true
	s.out = s.out[:0]
	s.outIsReply = false
	s.cond.Broadcast()
	s.mu.Unlock()
	_ = s.conn.SetDeadline(time.Now())
}

// addDirty notes a backend that was given requests in this read batch.
func (s *session) addDirty(b *backendConn) {
	for _, d := range s.dirty {
		if d == b {
			return
		}
	}
	s.dirty = append(s.dirty, b)
}

// flushBackends sends this batch's requests: one write per backend for the
// whole batch, shared with other clients' requests queued meanwhile.
func (s *session) flushBackends() {
	for i, b := range s.dirty {
		b.flush()
		s.dirty[i] = nil
	}
	s.dirty = s.dirty[:0]
}
