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
// session stops reading until replies drain. client_output_limit bounds
// their bytes (see session.full).
const maxQueued = 1 << 14

// session serves one client connection. One goroutine reads and dispatches
// requests; replies are written by whoever completes the request at the
// head of the queue (usually a backend reader), with a write that never
// blocks, and a short-lived goroutine finishes a write the socket would not
// take at once. An idle session therefore holds one goroutine and no buffer.
type session struct {
	// pl is the pool the session serves under: written by the reader
	// goroutine only, when a reload moves the session to its listener's
	// new pool (reload.go), read by every goroutine through pool().
	pl atomic.Pointer[Pool]

	// Immutable after newSession.
	conn net.Conn
	raw  *rawConn
	id   uint64

	// Owned by the reader goroutine.
	rbuf    []byte  // unparsed bytes: rbuf[:rlen]; nil while idle
	rbufp   *[]byte // the pooled buffer rbuf is, or nil once grown past it
	lent    *[]byte // a pooled buffer handed to a read not yet returned
	rlen    int
	need    int            // bytes the parser still needs to complete the partial request in rbuf (a hint; 0 or 1 when unknown)
	given   bool           // part of rbuf was lent to a backend (see send): never write to it again
	dirty   []*backendConn // backends given requests in this read batch
	stop    bool           // QUIT or an unrecoverable protocol error: read no more
	discard int            // bytes still to drop (a data block memcached would swallow)
	authed  bool
	db      int  // the database the client selected (Redis pools): redis_db until SELECT
	inTx    bool // between MULTI and EXEC/DISCARD (Redis pools)
	// WATCH (redis_watch.go): the client's dedicated connection, whether
	// a watch is on, and whether the connection will be clean (no watch
	// left on the server) once it has answered.
	pinned   *backendConn
	watching bool
	pinClean bool
	sub      *subState // the client's subscriptions (redis_pubsub.go); nil until its first

	tx       *txState          // the transaction being queued; kept for reuse
	parsed   *resp.Request     // the request being parsed (Redis pools)
	mc       *memcache.Request // the request being parsed (Memcached pools)
	cur      []byte            // the current request's bytes, as sent to a server
	curRead  bool              // cur is in rbuf (else in scratch)
	scratch  []byte            // building fragments and re-encoded requests
	idxs     []int             // key indexes of the current request
	keySrv   []*server         // the server of each key of the current request
	items    []int32           // the items of one fragment (fanOut)
	fragKeys [][]byte          // the keys of one fragment of a memcached multi-get
	// What the stats know of the current request: when its read burst
	// arrived (monotonic ns, 0 when latency is not measured), its Redis
	// command family, its command name and first key (for the slow log).
	now     int64
	family  uint8
	cmdName string
	key     []byte
	// sent is the bytes of this client's requests queued to servers so
	// far; minus answered, those not answered yet (see full).
	sent int

	// What CLIENT, CLIENT REPLY and RESET keep of a Redis client; its
	// fields have owners of their own (redis_client.go).
	client clientState

	mu      sync.Mutex // guards everything below
	cond    sync.Cond  // signalled when the queue shrinks or the session closes
	queue   reqQueue   // requests in client order, awaiting their replies
	free    []*request
	spare   []byte // an output buffer to gather replies in, when none is being written
	writing bool   // someone is writing to the client
	broken  bool   // the client connection failed; replies are dropped
	closing bool   // no more requests will be read

	// What the client costs in memory, bounded by client_output_limit
	// (see full): reply bytes held for it (finished requests not yet
	// written to it, the output being written included), requests whose
	// reply has not come yet and the size a reply is expected to have,
	// and the bytes of its requests answered so far.
	held     int
	waiting  int
	expected int
	answered int

	draining   atomic.Bool // the pool is shutting down: stop at a request boundary
	followWake atomic.Bool // a reload woke the reader to follow it (wakeToFollow)

	// A blocking command being run (redis_block.go), guarded by mu; while
	// blocked is true, the reader dispatches nothing more.
	block   *blockOp
	blocked atomic.Bool
	slow    atomic.Bool // disconnected at client_pubsub_limit (redis_pubsub.go)
}

func newSession(p *Pool, conn net.Conn, id uint64) (*session, error) {
	raw, err := newRawConn(conn)
	if err != nil {
		return nil, err
	}
	raw.earlyPeeks = sessionEarlyPeeks
	s := &session{conn: conn, raw: raw, id: id, db: p.cfg.RedisDB}
	s.pl.Store(p)
	s.client.db.Store(int32(s.db))
	s.cond.L = &s.mu
	// Until replies have been seen, each request in flight is taken to
	// need a sixteenth of the limit: a client starts with 16 in flight,
	// and opens up as small replies come (see expect).
	s.expected = p.cfg.ClientOutputLimit / 16
	return s, nil
}

// pool returns the pool the session serves under now.
func (s *session) pool() *Pool { return s.pl.Load() }

// serve runs the reader loop until the client leaves, the stream breaks or
// the pool shuts down, then waits for every queued request to be answered
// (the backends hold pointers to them) and closes the connection.
func (s *session) serve() error {
	err := s.readLoop()
	if errors.Is(err, os.ErrDeadlineExceeded) && s.draining.Load() {
		err = nil
	}
	// A client still blocked when the reader stops has left (or the pool
	// is stopping, and drain cancelled it first): nothing it pops may be
	// kept for it.
	s.cancelBlock(cancelGone)
	if s.sub != nil {
		s.leavePubSub() // no more messages for it; its confirmations still come
	}
	if s.client.killed.Load() {
		err = errKilled
	}
	if s.slow.Load() {
		err = errPubSubLimit
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
	s.unpinAtEnd()
	s.conn.Close()
	s.releaseReadBuffer()
	return err
}

func (s *session) readLoop() error {
	if err := s.waitForRoom(); err != nil {
		return err
	}
	var stopErr error
	for {
		err := s.readBatches(&stopErr)
		if stopErr != nil {
			return stopErr
		}
		if errors.Is(err, os.ErrDeadlineExceeded) && !s.draining.Load() && s.followWake.Swap(false) {
			// A reload woke the idle reader to move it to the new pool.
			_ = s.conn.SetReadDeadline(time.Time{})
			if s.wokenToStop() {
				return err // the deadline cleared may have been set to stop it
			}
			s.follow()
			continue
		}
		return err
	}
}

// readBatches reads and handles requests until the stream ends, a read
// deadline passes or the reader must stop (then *stopErr says why).
func (s *session) readBatches(stopErr *error) error {
	return s.raw.readLoop(s.readBuffer, s.putReadBuffer, func(buf []byte, n int) bool {
		if s.rbuf == nil {
			s.rbuf, s.rbufp, s.lent = buf, s.lent, nil
		}
		s.rlen += n
		if s.pool().next.Load() != nil {
			s.follow() // a reload replaced the pool
		}
		if s.pool().timing {
			s.now = monoNow()
		}
		s.need = 0
		used := s.pool().proto.handle(s, s.rbuf[:s.rlen])
		s.flushBackends()
		s.deliver()
		if s.stop {
			return false
		}
		s.consume(used)
		for s.blocked.Load() && s.rlen > 0 {
			// Requests came after a blocking command: as in Redis, they
			// run once it has been answered. Until then the socket is not
			// read (the block's goroutine watches for the client leaving).
			if !s.waitUnblocked() {
				return false
			}
			used = s.pool().proto.handle(s, s.rbuf[:s.rlen])
			s.flushBackends()
			s.deliver()
			if s.stop {
				return false
			}
			if used == 0 {
				break // the rest is a partial request: read on
			}
			s.consume(used)
		}
		if s.draining.Load() && s.rlen == 0 {
			return false
		}
		if err := s.waitForRoom(); err != nil {
			*stopErr = err
			return false
		}
		return true
	})
}

// wokenToStop reports whether something that wakes the reader with a
// read deadline to stop it (drain, CLIENT KILL, a failed write, abort, a
// slow subscriber) has happened: each sets its flag before the deadline.
func (s *session) wokenToStop() bool {
	if s.draining.Load() || s.client.killed.Load() || s.slow.Load() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.broken
}

// wakeToFollow makes an idle reader move to the pool a reload put in its
// pool's place now rather than when the client next sends.
func (s *session) wakeToFollow() {
	s.followWake.Store(true)
	_ = s.conn.SetReadDeadline(time.Now())
}

// drain asks the session to stop reading at the next request boundary;
// requests already read are still answered.
func (s *session) drain() {
	s.draining.Store(true)
	s.cancelBlock(cancelShutdown)
	_ = s.conn.SetReadDeadline(time.Now())
	s.mu.Lock()
	s.cond.Broadcast() // a reader waiting for room stops waiting
	s.mu.Unlock()
}

// readBuffer returns where the next read goes: the free part of the partial
// request's buffer, grown when full, or a pooled buffer.
func (s *session) readBuffer() []byte {
	if s.rbuf == nil {
		s.lent = s.pool().getBuf()
		return *s.lent
	}
	if s.rlen == len(s.rbuf) {
		s.growReadBuffer()
	}
	return s.rbuf[s.rlen:]
}

// growReadBuffer makes room for the rest of the partial request. When the
// parser knows how much is missing (the rest of a Redis bulk argument or
// of a memcached data block) the buffer grows to exactly that, plus one
// pooled buffer's worth for what may follow it (more arguments, the next
// request), so that a 64 MiB value costs one 64 MiB buffer and one copy of
// what was read before its length was known — as Redis sizes its query
// buffer for a big argument. Never by less than half again its size, so a
// request with many large arguments is not copied once per argument, and
// never by more than maxReadAhead at once.
func (s *session) growReadBuffer() {
	size := s.rlen + min(max(s.need, 1), maxReadAhead) + s.pool().opts.BufSize
	size = max(size, len(s.rbuf)+len(s.rbuf)/2)
	nb := make([]byte, size)
	copy(nb, s.rbuf[:s.rlen])
	if s.rbufp != nil {
		s.pool().putBuf(s.rbufp)
		s.rbufp = nil
	}
	s.rbuf = nb
}

// maxReadAhead bounds the room a request's announced length buys before
// its bytes arrive: Redis's largest argument (proto-max-bulk-len). A
// memcached data block announced larger (up to 2 GiB) grows in steps.
const maxReadAhead = resp.MaxBulkLen + 2

// putReadBuffer takes back a buffer the read did not use.
func (s *session) putReadBuffer([]byte) {
	if s.lent != nil {
		s.pool().putBuf(s.lent)
		s.lent = nil
	}
}

// maxKeptRead is the largest grown read buffer a session keeps for the
// partial request after the ones it has parsed: pipelined values of a few
// tens of KiB reuse one buffer instead of allocating one each.
const maxKeptRead = 2 * lendMin

// consume drops the parsed bytes; an idle session gives its buffer back. A
// buffer grown for a large request is not kept for the partial request
// after it: once what is left fits a pooled buffer, it moves there and the
// large one goes back to the allocator. A buffer lent to a backend is left
// to it whatever is left.
func (s *session) consume(n int) {
	if n == s.rlen {
		s.releaseReadBuffer()
		return
	}
	rest := s.rlen - n
	if s.rbufp == nil && (s.given || len(s.rbuf) > maxKeptRead && rest <= s.pool().opts.BufSize) {
		var nb []byte
		var bp *[]byte
		if rest <= s.pool().opts.BufSize {
			bp = s.pool().getBuf()
			nb = *bp
		} else {
			nb = make([]byte, rest+s.pool().opts.BufSize)
		}
		copy(nb, s.rbuf[n:s.rlen])
		s.forgetReadBuffer()
		s.rbuf, s.rbufp, s.rlen = nb, bp, rest
		return
	}
	copy(s.rbuf, s.rbuf[n:s.rlen])
	s.rlen = rest
}

func (s *session) releaseReadBuffer() {
	if s.rbufp != nil {
		s.pool().putBuf(s.rbufp)
	} else if s.rbuf != nil {
		s.forgetReadBuffer()
	}
	s.rbuf, s.rbufp, s.rlen = nil, nil, 0
}

// forgetReadBuffer drops every reference the reader keeps into a grown
// read buffer (the last request's arguments, key and bytes), so that the
// garbage collector can take it back now rather than after the next
// request. The parser's partial request, if any, is kept: it holds
// offsets, not slices.
func (s *session) forgetReadBuffer() {
	s.given = false
	s.cur, s.key = nil, nil
	if s.parsed != nil {
		s.parsed.Forget()
	}
	if s.mc != nil {
		s.mc.Forget()
	}
}

// full reports whether the reader must wait before it takes another
// request: the client has maxQueued requests in flight, or, with
// client_output_limit, holding a reply of the expected size for each of
// its requests in flight on top of the replies it has not read yet would
// pass the limit, or so would the bytes of its requests not answered yet.
// A client with nothing in flight and nothing unread always gets one more
// request, whatever its size. Only the reader calls it, with s.mu held.
//
// This is backpressure, not a disconnect: the reader stops reading, the
// client's socket buffers fill, and its writes block until it reads its
// replies. Replies to requests already sent still come, so what a client
// can make the proxy hold is the limit plus what those replies exceed
// their expected size by; the expectation follows the largest replies
// seen (see expect), which keeps that small for a client whose replies do
// not suddenly grow a thousandfold.
func (s *session) full() bool {
	if s.queue.len() >= maxQueued {
		return true
	}
	limit := s.pool().cfg.ClientOutputLimit
	if limit <= 0 || s.waiting == 0 && s.held == 0 {
		return false
	}
	return s.sent-s.answered >= limit || s.held+s.waiting*s.expected >= limit
}

// expect updates the size a reply is expected to have with one that came:
// a larger reply raises it at once, smaller ones lower it by 1/64 of the
// difference each, so a few small replies among large ones hardly open
// the window, while a client of small replies gets its full pipeline
// after a few hundred. s.mu must be held.
func (s *session) expect(n int) {
	if n >= s.expected {
		s.expected = n
	} else {
		s.expected -= (s.expected - n) >> 6
	}
}

// waitForRoom sends what this read batch queued, writes what is ready, and
// blocks while the client is over its limits (full), unless the pool is
// shutting down. It returns an error once the client connection is broken.
func (s *session) waitForRoom() error {
	s.mu.Lock()
	if !s.full() || s.broken {
		broken := s.broken
		s.mu.Unlock()
		if broken {
			return net.ErrClosed
		}
		return nil
	}
	s.mu.Unlock()
	// The replies waited for may be behind requests not sent yet.
	s.flushBackends()
	s.deliver()
	s.mu.Lock()
	for s.full() && !s.broken && !s.draining.Load() {
		s.cond.Wait()
	}
	broken := s.broken
	s.mu.Unlock()
	if s.pool().timing {
		s.now = monoNow() // the wait is not the requests' latency
	}
	if broken {
		return net.ErrClosed
	}
	return nil
}

// newRequest takes a request from the free list and queues it in client
// order, once there is room for it (see full). Only the reader calls it.
func (s *session) newRequest() *request {
	s.mu.Lock()
	if s.full() {
		s.mu.Unlock()
		// A broken client gets its requests anyway (their replies are
		// dropped): the reader stops at the end of the batch.
		_ = s.waitForRoom()
		s.mu.Lock()
	}
	r := s.alloc()
	s.queue.push(r)
	s.waiting++
	s.mu.Unlock()
	return r
}

// finish marks r, a request of the client (not a fragment), done with its
// reply in r.reply. s.mu must be held.
func (s *session) finish(r *request) {
	if r.hold != nil {
		// A transaction under WATCH split over servers is answered: the
		// reader may dispatch again (see execWatchedSplit).
		s.blocked.Store(false)
		s.cond.Broadcast()
	}
	r.done = true
	s.waiting--
	s.held += len(r.reply)
}

// newFragment returns an unqueued request that answers to parent.
func (s *session) newFragment(parent *request) *request {
	s.mu.Lock()
	f := s.alloc()
	f.parent = parent
	parent.frags = append(parent.frags, f)
	parent.pending++
	s.mu.Unlock()
	s.pool().stats.fragments.Add(1)
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
	s.finish(r)
	s.mu.Unlock()
}

// noServer answers a request whose key has no live server (every server
// ejected), as twemproxy does, and counts it as a forwarding error.
func (s *session) noServer(r *request) {
	s.pool().stats.forwardErrors.Add(1)
	s.replyError(r, "Connection refused")
}

// replyError completes r with a proxy-made error in the pool's protocol.
func (s *session) replyError(r *request, msg string) {
	r.reply = s.pool().proto.appendError(r.reply[:0], msg)
	s.mu.Lock()
	s.finish(r)
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
	if h := r.hold; h != nil && r.parent != nil {
		h.release(r) // the watched server answered: the rest of the transaction goes, or is void
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answered += r.size
	p := r.parent
	if p == nil {
		s.expect(len(r.reply))
		s.finish(r)
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
	s.expect(len(p.reply))
	s.finish(p)
	return true
}

// deliver writes the finished replies at the head of the queue to the
// client, unless a write is already under way (its writer takes them when
// it is done). It never blocks on the client: what the socket does not take
// at once is written by a goroutine of its own (finishWrite).
func (s *session) deliver() {
	s.mu.Lock()
	for !s.writing {
		out := s.take()
		if out == nil {
			break
		}
		s.mu.Unlock()
		n, err := s.raw.tryWrite(out)
		if err == nil && n < len(out) {
			go s.finishWrite(out, n)
			return
		}
		s.mu.Lock()
		s.wrote(out, err)
		if err != nil {
			s.mu.Unlock()
			s.wakeReader()
			return
		}
	}
	s.mu.Unlock()
}

// finishWrite completes a write the socket would not take at once, then
// keeps writing the replies that became ready meanwhile.
func (s *session) finishWrite(out []byte, done int) {
	_, err := s.conn.Write(out[done:])
	s.mu.Lock()
	for {
		s.wrote(out, err)
		if err != nil {
			s.mu.Unlock()
			s.wakeReader()
			return
		}
		if out = s.take(); out == nil {
			break
		}
		s.mu.Unlock()
		_, err = s.conn.Write(out)
		s.mu.Lock()
	}
	s.mu.Unlock()
}

// take gathers the finished replies at the head of the queue into one
// buffer to write and marks the session writing, or returns nil when none
// is ready (or the client is gone: they are dropped). It stops at
// maxKeptReply bytes: the rest wait in their own buffers until the client
// has taken these, so a client that reads slowly costs no copy of what it
// has not read yet, only the replies themselves (see full). A reply larger
// than that is written from its own buffer, not copied. s.mu must be held.
func (s *session) take() []byte {
	// The spare is taken for good: leaving it there would let wrote()
	// hand back memory still being written to the client.
	buf := s.spare[:0]
	s.spare = nil
	for r := s.queue.peek(); r != nil && r.done; r = s.queue.peek() {
		switch {
		case s.broken || r.silent:
			s.held -= len(r.reply)
		case len(buf) == 0 && cap(r.reply) > maxKeptReply:
			buf, r.reply = r.reply, buf
		case len(buf) > 0 && len(buf)+len(r.reply) > maxKeptReply:
			s.writing = true
			return buf
		default:
			buf = append(buf, r.reply...)
		}
		s.queue.pop()
		s.recycle(r)
		s.cond.Broadcast()
	}
	if len(buf) == 0 {
		s.spare = buf
		return nil
	}
	s.writing = true
	return buf
}

// wrote ends the write of out: its bytes are no longer held for the
// client, and the buffer becomes the spare. After an error the client
// cannot be answered any more: the finished replies are dropped, and so
// are those still to come (take). s.mu must be held.
func (s *session) wrote(out []byte, err error) {
	s.writing = false
	s.held -= len(out)
	if cap(out) <= maxKeptReply && s.spare == nil {
		s.spare = out[:0]
	}
	if err != nil {
		s.broken = true
		s.take()
	}
	s.cond.Broadcast()
}

// wakeReader wakes the reader after a failed write, so that it closes the
// connection (serve). Not Close here: this may run inside the reader's own
// RawConn.Read callback, and Close waits for that read to end.
func (s *session) wakeReader() {
	_ = s.conn.SetReadDeadline(time.Now())
}

// abort cuts the client off when shutdown's deadline has passed: the
// reader stops at once, also when it waits for room, replies are dropped
// (take), and serve closes the connection once the servers have answered
// or failed what is queued. Not Close: Close waits until the reader's read
// callback returns, and that callback may be waiting for the very servers
// that shutdown fails next.
func (s *session) abort() {
	s.cancelBlock(cancelShutdown)
	s.mu.Lock()
	s.broken = true
	s.cond.Broadcast()
	s.mu.Unlock()
	_ = s.conn.SetDeadline(time.Now())
}

// lendMin is the size from which a request's bytes are lent to the backend
// rather than copied into its write buffer. Below it a copy costs less than
// giving the read buffer away (the next request then needs a new one).
const lendMin = 64 << 10

// send queues r on b with the request's bytes, head then body, which are
// elsewhere than in rbuf or s.scratch (a constant): they are copied.
func (s *session) send(b *backendConn, r *request, head, body []byte) {
	b.enqueue(r, head, body, false)
	s.sent += len(head) + len(body)
	s.addDirty(b)
}

// sendRead queues r on b with head (copied) then body, which is in the read
// buffer. A large body in a buffer grown for it is lent rather than copied:
// the buffer then belongs to the backend until it has written it, and the
// session reads on into a new one (consume). So a 64 MiB value goes from
// the client's socket to the server's with no copy in between.
func (s *session) sendRead(b *backendConn, r *request, head, body []byte) {
	lend := len(body) >= lendMin && s.rbufp == nil
	if lend {
		s.given = true
	}
	b.enqueue(r, head, body, lend)
	s.sent += len(head) + len(body)
	s.addDirty(b)
}

// sendScratch queues r on b with the bytes built in s.scratch.
func (s *session) sendScratch(b *backendConn, r *request) { s.sendBuf(b, r, &s.scratch) }

// sendBuf queues r on b with the bytes built in *buf, a buffer the reader
// reuses (s.scratch, a transaction's block); a large build is lent, and
// *buf starts again from nil.
func (s *session) sendBuf(b *backendConn, r *request, buf *[]byte) {
	lend := len(*buf) >= lendMin
	b.enqueue(r, nil, *buf, lend)
	s.sent += len(*buf)
	if lend {
		*buf = nil
	}
	s.addDirty(b)
}

// sendCur queues r on b with the current request's bytes.
func (s *session) sendCur(b *backendConn, r *request) {
	if s.curRead {
		s.sendRead(b, r, nil, s.cur)
	} else {
		s.sendScratch(b, r)
	}
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
