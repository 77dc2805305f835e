package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/internal/rediscmd"
	"github.com/shardproxy/shardproxy/internal/stats"

	"github.com/shardproxy/shardproxy/internal/config"
)

// server is one configured backend server of a pool.
type server struct {
	// pl is the pool the server serves now: a reload that keeps the
	// server (same identity, see serverKey) moves it to the new pool.
	pl atomic.Pointer[Pool]

	// Immutable after newServer.
	cfg   config.Server
	name  string // ring name: what stats and logs call it
	conns []*backendConn

	// addr is where the server is reached: cfg.Address, or for a Sentinel
	// group the master's address, which a failover switches.
	addr atomic.Pointer[config.Address]

	failures atomic.Int32 // consecutive connection failures (auto_eject_hosts)
	stats    serverCounters

	// dbConns holds the connections for the databases clients SELECTed
	// other than redis_db's (conns): copied on write under mu, read
	// without a lock.
	dbConns atomic.Pointer[map[int][]*backendConn]

	mu      sync.Mutex // guards ejected, the writing of dbConns, and the dedicated connections
	ejected bool
	// Dedicated connections (WATCH, redis_watch.go): every one open, and
	// the idle ones kept for reuse.
	dedicated map[*backendConn]struct{}
	idleDed   []*backendConn

	// blk holds the connections of blocked clients (redis_block.go).
	blk blockPool
}

// serverCounters are a server's counters that are not per connection.
type serverCounters struct {
	eof       atomic.Uint64 // connections closed by the server
	err       atomic.Uint64 // connections failed with an error (refused, reset, …)
	timedOut  atomic.Uint64 // connections closed for a request timeout
	ejectedAt atomic.Int64  // µs since the epoch of the last ejection
	failovers atomic.Uint64 // Sentinel master switches
	connects  atomic.Uint64 // connections established (total_connections)
}

func newServer(p *Pool, cfg config.Server) *server {
	s := &server{cfg: cfg, name: cfg.RingName()}
	s.pl.Store(p)
	addr := cfg.Address
	s.addr.Store(&addr)
	s.conns = s.newConns(p.cfg.RedisDB)
	return s
}

// newConns makes the pool's server_connections connections to the server
// for database db (Redis pools; 0 for Memcached).
func (s *server) newConns(db int) []*backendConn {
	p := s.pool()
	conns := make([]*backendConn, max(1, p.cfg.ServerConnections))
	for i := range conns {
		b := &backendConn{server: s, index: i, db: db}
		if p.cfg.Redis {
			b.famLatency = new([rediscmd.NumFamilies]stats.Histogram)
		}
		conns[i] = b
	}
	return conns
}

// pool returns the pool the server serves now.
func (s *server) pool() *Pool { return s.pl.Load() }

// eachConn calls fn for every connection of the server: redis_db's and
// those of other databases.
func (s *server) eachConn(fn func(*backendConn)) {
	for _, b := range s.conns {
		fn(b)
	}
	if m := s.dbConns.Load(); m != nil {
		for _, conns := range *m {
			for _, b := range conns {
				fn(b)
			}
		}
	}
	s.mu.Lock()
	ded := make([]*backendConn, 0, len(s.dedicated))
	for b := range s.dedicated {
		ded = append(ded, b)
	}
	s.mu.Unlock()
	for _, b := range ded {
		fn(b)
	}
}

// address returns where the server is reached now.
func (s *server) address() config.Address { return *s.addr.Load() }

// connFor returns the connection a session uses for this server. A session
// always uses the same one, so its requests to a server stay in order.
func (s *server) connFor(sess *session) *backendConn {
	if p := sess.pinned; p != nil && p.server == s {
		return p // WATCH: the client's own connection to this server
	}
	conns := s.conns
	if sess.db != s.pool().cfg.RedisDB {
		conns = s.connsOf(sess.db)
	}
	return conns[sess.id%uint64(len(conns))]
}

// connsOf returns the connections for database db, made on first use
// (dialled on first request, like every connection). The pool bounds how
// many databases are in use (useDB).
func (s *server) connsOf(db int) []*backendConn {
	if m := s.dbConns.Load(); m != nil {
		if conns, ok := (*m)[db]; ok {
			return conns
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.dbConns.Load()
	if old != nil {
		if conns, ok := (*old)[db]; ok {
			return conns
		}
	}
	m := make(map[int][]*backendConn, 1)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	conns := s.newConns(db)
	m[db] = conns
	s.dbConns.Store(&m)
	return conns
}

// backendConn is one persistent connection to a server, shared by every
// client of the pool: requests from all of them are appended to one buffer
// and written together, and replies come back in the same order (FIFO).
// The connection is dialled on first use and again after a failure.
type backendConn struct {
	// Immutable.
	server *server
	index  int
	db     int // the database it SELECTs after connecting (Redis pools)
	// dedicated: one client's for a while (WATCH), never redialled.
	dedicated bool

	mu       sync.Mutex // guards everything below; never held across I/O
	state    connState
	gen      uint64 // bumped at every new connection, to ignore stale events
	conn     net.Conn
	raw      *rawConn    // conn's descriptor, for writes that skip the runtime's syscall bookkeeping
	wbuf     []byte      // requests not yet written
	lent     []lentBody  // large request bodies to write among wbuf's bytes, in order
	spare    []byte      // the other write buffer, while wbuf is being written
	vec      net.Buffers // the pieces of a write with lent bodies; owned by the flusher
	flushing bool        // a goroutine is writing wbuf
	inflight reqQueue    // requests written or waiting to be, oldest first
	replies  uint64      // replies received on this connection: progress for the timeout sweeper
	stalled  int         // sweeps in a row with requests in flight and no reply
	dead     bool        // a dedicated connection that failed: it is not dialled again
	lastSeen uint64      // replies at the previous sweep
	counts   connCounts

	// Latency, written by this connection's reader only (so no two
	// cores fight over a cache line) and merged by the stats reader: per
	// Redis command family, or in latency for requests without one.
	latency    stats.Histogram
	famLatency *[rediscmd.NumFamilies]stats.Histogram // Redis pools
}

// connCounts are one connection's share of its server's stats, kept under
// the connection's mutex, which the request path holds anyway: counting
// adds no atomic operation and no lock. The stats reader sums them.
type connCounts struct {
	requests, requestBytes   uint64 // client requests queued (fragments count one each)
	responses, responseBytes uint64 // replies received for them
	// The queues: in holds requests not yet written, out those written
	// and waiting for their reply (twemproxy's in_queue and out_queue).
	inQueue, inQueueBytes   int64
	outQueue, outQueueBytes int64
}

type connState uint8

const (
	stateIdle       connState = iota // no connection; the next request dials
	stateConnecting                  // dialling; requests queue in wbuf
	stateConnected
)

// maxFlushYields bounds how many times a flusher yields to let other
// clients' requests join its write.
const maxFlushYields = 8

// maxKeptWriteBuf bounds the write buffer kept between writes.
const maxKeptWriteBuf = 1 << 20

// lentBody is a large request body queued without a copy: r.body is
// written after wbuf[:at]. The session that lent it never writes to those
// bytes again, and they are dropped once written, so a 64 MiB value is
// never held twice (see session.sendRead).
type lentBody struct {
	at int
	r  *request
}

// enqueue queues r for its reply with the request's bytes, head then body,
// appended to the write buffer; with lend, body is not copied but written
// from where it is, and the caller must not modify it any more. The caller
// calls flush (through the session's dirty list) once its batch is queued.
func (b *backendConn) enqueue(r *request, head, body []byte, lend bool) {
	sess := r.sess
	r.start, r.family = sess.now, sess.family
	if b.server.pool().slowlog {
		r.cmdName = sess.cmdName
		r.slowKey = append(r.slowKey[:0], sess.key...)
	}
	b.mu.Lock()
	if b.dead {
		b.mu.Unlock()
		r.reply = b.server.pool().proto.appendError(r.reply[:0], errWatchLost.Error())
		sess.complete(r) // delivered at the end of the reader's batch
		return
	}
	b.pushLocked(r, head, body, lend)
	b.mu.Unlock()
}

// pushLocked queues r with its bytes, head and then body (lent: written
// from the caller's buffer; else copied), counts it, and dials when the
// connection is idle. Every request reaches a connection through here.
// b.mu must be held.
func (b *backendConn) pushLocked(r *request, head, body []byte, lend bool) {
	size := len(head) + len(body)
	if b.state == stateIdle && len(b.lent) > 0 {
		// Left by a failed connection, whose requests have all been
		// answered (fail): nothing of them is to be written.
		clear(b.lent)
		b.lent = b.lent[:0]
	}
	b.wbuf = append(b.wbuf, head...)
	if lend {
		r.body = body
		b.lent = append(b.lent, lentBody{at: len(b.wbuf), r: r})
	} else {
		b.wbuf = append(b.wbuf, body...)
	}
	r.size = size
	b.inflight.push(r)
	c := &b.counts
	c.requests++
	c.requestBytes += uint64(size)
	c.inQueue++
	c.inQueueBytes += int64(size)
	if b.state == stateIdle {
		b.state = stateConnecting
		b.gen++
		go b.connect(b.gen)
	}
}

// flush writes everything queued, unless another goroutine is already doing
// so (it will write ours too). The flusher yields once before taking the
// buffer so that other clients' requests that are ready join the same write:
// cross-client batching is what makes the server cheaper per request behind
// the proxy than direct.
func (b *backendConn) flush() {
	b.mu.Lock()
	if b.flushing || b.state != stateConnected || len(b.wbuf) == 0 && len(b.lent) == 0 {
		b.mu.Unlock()
		return
	}
	b.flushing = true
	queued := b.inflight.len()
	b.mu.Unlock()
	// Yield while other clients keep adding requests (a few rounds at
	// most): each round lets the goroutines the poller just woke queue
	// theirs, so one write carries them all.
	for range maxFlushYields {
		runtime.Gosched()
		b.mu.Lock()
		now := b.inflight.len()
		b.mu.Unlock()
		if now == queued {
			break
		}
		queued = now
	}
	b.writeLoop()
}

func (b *backendConn) writeLoop() {
	for {
		b.mu.Lock()
		if len(b.wbuf) == 0 && len(b.lent) == 0 || b.state != stateConnected {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		out, conn, raw, gen := b.wbuf, b.conn, b.raw, b.gen
		b.wbuf = b.spare[:0]
		b.spare = nil
		lent := len(b.lent) > 0
		if lent {
			b.vec = b.lentPieces(out)
		}
		c := &b.counts
		c.outQueue += c.inQueue
		c.outQueueBytes += c.inQueueBytes
		c.inQueue, c.inQueueBytes = 0, 0
		b.mu.Unlock()

		var err error
		if lent {
			// Large bodies go from the client's buffer to the socket in
			// one writev with the bytes around them.
			v := b.vec
			_, err = v.WriteTo(conn)
			clear(b.vec)
			b.vec = b.vec[:0]
		} else {
			// Most batches fit the socket buffer: one non-blocking write.
			// The rest of a large batch goes through the poller.
			var n int
			n, err = raw.tryWrite(out)
			if err == nil && n < len(out) {
				_, err = conn.Write(out[n:])
			}
		}

		b.mu.Lock()
		if cap(out) <= maxKeptWriteBuf && b.spare == nil {
			b.spare = out[:0]
		}
		b.mu.Unlock()
		if err != nil {
			b.mu.Lock()
			b.flushing = false
			b.mu.Unlock()
			b.fail(gen, err)
			// A new connection may have come up while this write failed and
			// found us flushing: its requests must not wait for the next one.
			b.flush()
			return
		}
	}
}

// lentPieces returns out, the batch being written, cut where the lent
// bodies go, with the bodies in between, and empties the lent list.
// b.mu must be held: the bodies are read from their requests, which a
// failing connection may hand back to their sessions once it is released.
func (b *backendConn) lentPieces(out []byte) net.Buffers {
	v := b.vec[:0]
	prev := 0
	for _, l := range b.lent {
		v = append(v, out[prev:l.at], l.r.body)
		prev = l.at
	}
	v = append(v, out[prev:])
	clear(b.lent)
	b.lent = b.lent[:0]
	return v
}

// connect dials the server, sends the protocol's prelude (AUTH, SELECT)
// ahead of everything queued, and starts the reader.
func (b *backendConn) connect(gen uint64) {
	p := b.server.pool()
	a := b.server.addr.Load()
	if a == nil {
		b.fail(gen, fmt.Errorf("%w for Sentinel group '%s' yet", errNoMaster, b.server.name))
		return
	}
	addr := *a
	d := net.Dialer{Timeout: p.cfg.Timeout}
	if p.cfg.TCPKeepalive {
		d.KeepAlive = 0 // Go's default keep-alive period
	} else {
		d.KeepAlive = -1
	}
	conn, err := d.Dial(addr.Network, addr.String())
	if err != nil {
		p.logger.Info("server connect failed", "server", b.server.name, "err", err)
		b.fail(gen, err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	raw, err := newRawConn(conn)
	if err != nil {
		conn.Close()
		b.fail(gen, err)
		return
	}
	b.mu.Lock()
	if b.gen != gen {
		b.mu.Unlock()
		conn.Close()
		return
	}
	pre := p.prelude
	if b.db != p.cfg.RedisDB {
		pre = p.proto.prelude(b.db)
	}
	if len(pre) > 0 {
		var head []byte
		for i := len(pre) - 1; i >= 0; i-- {
			b.inflight.pushFront(&request{size: len(pre[i])}) // sess == nil: swallowed
		}
		for _, cmd := range pre {
			head = append(head, cmd...)
		}
		b.wbuf = append(head, b.wbuf...)
		for i := range b.lent {
			b.lent[i].at += len(head)
		}
		b.counts.inQueue += int64(len(pre))
		b.counts.inQueueBytes += int64(len(head))
	}
	b.server.stats.connects.Add(1)
	b.conn, b.raw = conn, raw
	b.state = stateConnected
	b.stalled = 0
	b.mu.Unlock()
	p.logger.Info("server connected", "server", b.server.name, "conn", b.index, "local", conn.LocalAddr().String())
	go b.readLoop(conn, raw, gen)
	b.flush()
}

// maxReplyLine bounds one line of a Redis reply (a status, an error, an
// integer, a bulk or array header), CRLF included: 64 KiB, the bound Redis
// itself puts on a line it reads without a length prefix (an inline
// request, PROTO_INLINE_MAX_SIZE). Replies carry data in bulks, whose size
// is announced; only a Lua script or a module building a status or error
// reply on purpose makes a longer line. Without a bound, a server sending
// bytes without CRLF (another protocol, a broken stream) would be buffered
// up to max_reply_bytes before the framing error showed. Memcached replies
// have the same bound (package memcache), their lines being shorter still.
const maxReplyLine = 64 << 10

// errUnexpectedReply: bytes from a server while no request waits for a
// reply, such as a second reply to one request. Nothing after them can be
// trusted to answer the right request.
var errUnexpectedReply = errors.New("unexpected reply with no request waiting")

// badReplyError closes a server connection whose reply the proxy cannot
// frame, did not ask for, or will not hold (max_reply_bytes). Clients see
// it as twemproxy's "Invalid argument", followed by the reason.
type badReplyError struct {
	server string
	err    error // what was wrong, in words a client may see
}

func (e *badReplyError) Error() string {
	return "bad reply from server " + e.server + ": " + e.err.Error()
}

func (e *badReplyError) Unwrap() error { return e.err }

// replyTooLarge is the reason for a reply over max_reply_bytes.
func replyTooLarge(limit int) error {
	return fmt.Errorf("reply larger than max_reply_bytes (%d bytes)", limit)
}

// readLoop reads replies and completes the oldest request in flight with
// each; after every read burst, each client that got replies is written to
// once.
//
// The reader owns conn: it closes it when it stops, and nothing else does
// (see fail). It stops when fail has taken the connection from it, when
// the server closes it or the read fails, or on a reply that cannot be
// framed, that no request waits for, or that is larger than
// max_reply_bytes. In the last cases it returns from its read callback
// first and only then fails the connection, so that the failure, which
// answers every request queued on the connection, never runs inside the
// RawConn.Read that the socket's close would wait for.
func (b *backendConn) readLoop(conn net.Conn, raw *rawConn, gen uint64) {
	defer conn.Close()
	p := b.server.pool()
	parser := p.proto.newReplyParser()
	small := p.opts.BufSize
	limit := p.cfg.MaxReplyBytes
	if limit <= 0 {
		limit = config.DefaultMaxReplyBytes
	}
	buf := make([]byte, small)
	n := 0    // buf[:n] holds the bytes not framed yet (between bursts)
	want := 0 // how many bytes the reply at buf[0] needs at least, once known
	// bad is why the reader stopped on its own, and sample how the bytes
	// it stopped at began (for the log).
	var bad error
	var sample string
	// framed holds the requests whose replies this burst framed: they
	// are completed (made visible to their sessions) at the end of the
	// burst, after the connection is failed if the burst ends in bad
	// bytes, so that no client can have its reply and send its next
	// request to this connection before it is out of service.
	var framed []*request
	var touched []*session
	timing := p.timing
	get := func() []byte {
		if want > len(buf) || n == len(buf) {
			buf = growReadBuf(buf, n, want, limit)
		}
		return buf[n:]
	}
	put := func([]byte) {}
	err := raw.readLoop(get, put, func(_ []byte, m int) bool {
		n += m
		off := 0
		want = 0
		var now int64
		if timing {
			now = monoNow()
		}
		live := true
		for off < n {
			// The generation check, the framing and the pop are one
			// critical section: once fail() has taken the queue, its
			// requests go back to their sessions for reuse, and a stale
			// reader must not frame with (or mark) one of them.
			b.mu.Lock()
			if b.gen != gen {
				b.mu.Unlock()
				live = false
				break
			}
			r := b.inflight.peek()
			if r == nil {
				b.mu.Unlock()
				bad = errUnexpectedReply
				break
			}
			rl, perr := parser.scan(buf[off:n], r)
			if perr == nil && r.skip > 0 {
				// A reply before the request's own (a transaction's
				// +OK and +QUEUED): dropped.
				r.skip--
				b.replies++
				b.mu.Unlock()
				off += rl
				continue
			}
			if perr == nil {
				b.inflight.pop()
				b.replies++
				c := &b.counts
				c.outQueue--
				c.outQueueBytes -= int64(r.size)
				if r.sess != nil {
					c.responses++
					c.responseBytes += uint64(rl)
				}
			}
			b.mu.Unlock()
			if perr == errIncomplete {
				// What the reply needs in all, as far as the parser
				// knows: exactly its size when it is one bulk or value.
				want = n - off + parser.need()
				if want > limit {
					bad = replyTooLarge(limit)
				}
				break
			}
			if perr != nil {
				bad = perr
				break
			}
			b.server.succeeded()
			reply := buf[off : off+rl : off+rl]
			off += rl
			if r.sess == nil {
				b.checkPrelude(reply)
				continue
			}
			if timing {
				b.observe(r, time.Duration(now-r.start))
			}
			if rl > maxKeptReply && 2*rl >= len(buf) {
				// A large reply that fills most of the buffer: hand the
				// buffer over instead of copying it (a request drops a
				// reply buffer this large when it is recycled anyway),
				// and go on in a new one with what follows.
				r.reply = reply
				rest := n - off
				nb := make([]byte, max(small, rest))
				copy(nb, buf[off:n])
				buf, n, off = nb, rest, 0
			} else {
				r.reply = append(r.reply[:0], reply...)
			}
			framed = append(framed, r)
		}
		if bad != nil {
			// The replies framed before the bad bytes are completed
			// after the connection is failed (below).
			sample = string(buf[off:min(n, off+64)])
			return false
		}
		if live {
			copy(buf, buf[off:n])
			n -= off
			raw.partial = n > 0
			if len(buf) > 4*small && n <= small && want <= small {
				// A huge reply grew the buffer: do not keep it for the
				// life of the connection.
				nb := make([]byte, small)
				copy(nb, buf[:n])
				buf = nb
			}
		}
		// Every other way out completes and delivers what this burst
		// framed. A fail() that ran between a pop above and here found
		// those requests gone from the queue and left them, and nobody
		// else would answer them: their clients would wait for ever, and
		// their sessions never end.
		framed, touched = completeAll(framed, touched)
		return live
	})
	switch {
	case bad != nil:
		p.logger.Warn("bad reply from server", "server", b.server.name, "conn", b.index, "err", bad,
			"bytes", fmt.Sprintf("%q", sample))
		err = &badReplyError{server: b.server.name, err: bad}
	case err == nil:
		err = net.ErrClosed // stopped by fail or a newer connection
	}
	b.fail(gen, err)
	// The replies framed before a bad one: their clients have them at
	// once, not when a next request pushes them out.
	completeAll(framed, touched)
}

// completeAll completes each request of framed (its reply is in place)
// and writes to each session that got one, once. It returns both lists
// emptied, for reuse.
func completeAll(framed []*request, touched []*session) ([]*request, []*session) {
	for i, r := range framed {
		r.holdRetry(framed[i+1:])
		if r.sess.complete(r) {
			touched = addSession(touched, r.sess)
		}
		framed[i] = nil
	}
	for i, s := range touched {
		s.deliver()
		touched[i] = nil
	}
	return framed[:0], touched[:0]
}

// growReadBuf returns a larger buffer holding buf[:n]. When the parser
// knows how large the reply being read is (want: exactly its size for a
// bulk or a memcached value), the buffer grows to that at once, with one
// allocation and no doubling past it: a 64 MB value costs 64 MB. Otherwise
// (an array of many elements, a line) it doubles, by a quarter once past
// 1 MiB, so that a large reply of unknown size is copied a few times at
// most and never held in a buffer much larger than itself. It never grows
// past limit (max_reply_bytes) on a guess.
func growReadBuf(buf []byte, n, want, limit int) []byte {
	size := 2 * len(buf)
	if len(buf) >= 1<<20 {
		size = len(buf) + len(buf)/4
	}
	size = max(min(size, limit), want, n+1)
	nb := make([]byte, size)
	copy(nb, buf[:n])
	return nb
}

func addSession(list []*session, s *session) []*session {
	for _, t := range list {
		if t == s {
			return list
		}
	}
	return append(list, s)
}

// checkPrelude logs a failed AUTH or SELECT: requests will then fail with
// the server's own error (e.g. NOAUTH), which the client sees.
func (b *backendConn) checkPrelude(reply []byte) {
	if len(reply) > 0 && reply[0] == '-' {
		b.server.pool().logger.Warn("server rejected connection setup", "server", b.server.name,
			"reply", strings.TrimSpace(string(reply)))
	}
}

// fail takes connection generation gen out of service and answers every
// request queued on it with an error: each request gets exactly one reply.
// It never blocks on I/O and never closes the socket itself: it wakes the
// connection's reader, which closes it (readLoop). So it is safe to call
// from anywhere, a read callback included.
func (b *backendConn) fail(gen uint64, cause error) {
	b.mu.Lock()
	if b.gen != gen || b.state == stateIdle {
		b.mu.Unlock()
		return
	}
	conn := b.conn
	b.conn, b.raw = nil, nil
	b.state = stateIdle
	b.gen++
	b.dead = b.dedicated
	failed := b.inflight
	b.inflight = reqQueue{}
	b.wbuf = b.wbuf[:0]
	c := &b.counts
	c.inQueue, c.inQueueBytes, c.outQueue, c.outQueueBytes = 0, 0, 0, 0
	b.mu.Unlock()
	if conn != nil {
		// Wake the reader, which closes the socket as it returns, and a
		// writer blocked on a full socket. Not Close here: Close waits
		// until every read on the socket has returned, and fail may run
		// on a goroutine that a read callback is waiting for.
		_ = conn.SetDeadline(time.Now())
	}
	p := b.server.pool()
	msg := errorText(cause)
	if !errors.Is(cause, net.ErrClosed) && !errors.Is(cause, errSwitched) && !errors.Is(cause, errNoMaster) {
		b.server.countFailure(cause)
		b.server.failure(cause)
	}
	quiet := errors.Is(cause, io.EOF) || errors.Is(cause, net.ErrClosed) // an idle server going away, or our own close
	if failed.len() > 0 || !quiet {
		p.logger.Info("server connection closed", "server", b.server.name, "conn", b.index,
			"err", msg, "failed_requests", failed.len())
	}
	var touched []*session
	for r := failed.pop(); r != nil; r = failed.pop() {
		if r.sess == nil {
			continue
		}
		r.reply = p.proto.appendError(r.reply[:0], msg)
		p.stats.forwardErrors.Add(1)
		if r.silent {
			p.stats.noreplyErrors.Add(1)
		}
		if r.sess.complete(r) {
			touched = addSession(touched, r.sess)
		}
	}
	for _, s := range touched {
		s.deliver()
	}
}

// errSwitched closes a connection to a master that Sentinel replaced: not
// a failure of the server, so it does not count towards ejection.
var errSwitched = errors.New("master switched by Sentinel")

// errNoMaster fails requests to a Sentinel group whose master is not known
// yet; not a failure of any server either.
var errNoMaster = errors.New("no master known")

// countFailure counts a failed connection in the server's stats as
// twemproxy does: server_eof, server_timedout or server_err.
func (s *server) countFailure(cause error) {
	switch {
	case errors.Is(cause, io.EOF):
		s.stats.eof.Add(1)
	case errors.Is(cause, errTimedOut), isTimeout(cause):
		s.stats.timedOut.Add(1)
	default:
		s.stats.err.Add(1)
	}
}

// errTimedOut is the error of a request unanswered after the pool's timeout.
var errTimedOut = syscall.ETIMEDOUT

// errorText words an I/O error as twemproxy does: strerror(errno), e.g.
// "Connection refused", "Connection timed out".
func errorText(err error) string {
	var errno syscall.Errno
	var bad *badReplyError
	switch {
	case errors.As(err, &bad):
		// twemproxy answers a reply it cannot parse with EINVAL's text;
		// the reason follows it.
		return "Invalid argument: " + bad.Error()
	case errors.As(err, &errno):
		return capitalize(errno.Error())
	case errors.Is(err, io.EOF):
		return "Connection closed by server"
	case errors.Is(err, errTimedOut), isTimeout(err):
		return "Connection timed out"
	}
	return capitalize(err.Error())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func capitalize(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

// sweep is called periodically by the pool's timeout sweeper. A connection
// whose oldest request has seen no reply for a whole timeout is closed,
// failing everything queued on it with "Connection timed out", as
// twemproxy does. The coarse sweep replaces a timer per request: no clock
// read on the request path. ticks is how many sweeps make a timeout.
func (b *backendConn) sweep(ticks int) {
	b.mu.Lock()
	if b.inflight.len() == 0 || b.state != stateConnected {
		b.stalled, b.lastSeen = 0, b.replies
		b.mu.Unlock()
		return
	}
	if b.replies != b.lastSeen {
		b.stalled, b.lastSeen = 0, b.replies
		b.mu.Unlock()
		return
	}
	b.stalled++
	timedOut := b.stalled > ticks
	gen := b.gen
	b.mu.Unlock()
	if timedOut {
		b.server.pool().logger.Info("server timed out", "server", b.server.name, "conn", b.index)
		b.fail(gen, errTimedOut)
	}
}

// close shuts the connection (at pool shutdown), failing what is queued.
func (b *backendConn) close() { b.closeWith(net.ErrClosed) }

// closeWith shuts the connection, failing what is queued with cause.
func (b *backendConn) closeWith(cause error) {
	b.mu.Lock()
	gen := b.gen
	b.mu.Unlock()
	b.fail(gen, cause)
}

// preconnect dials now instead of on first use (the pool's preconnect key).
func (b *backendConn) preconnect() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != stateIdle {
		return
	}
	b.state = stateConnecting
	b.gen++
	go b.connect(b.gen)
}

// wakeIfClosed wakes the reader of a connection with requests in flight
// whose server has closed it without an event the reader could see (the
// end of stream came with the last complete reply). The pool's idle sweep
// calls it every second.
func (b *backendConn) wakeIfClosed() {
	b.mu.Lock()
	raw := b.raw
	waiting := b.inflight.len() > 0 && b.state == stateConnected
	b.mu.Unlock()
	if waiting && raw != nil && raw.wakeIfHalfClosed() {
		b.server.pool().logger.Debug("server closed the connection", "server", b.server.name, "conn", b.index)
	}
}
