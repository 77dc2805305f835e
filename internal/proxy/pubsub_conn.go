package proxy

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/resp"
)

// A Redis pool's subscriptions are shared: one subscriber connection per
// server (subConn) carries every client's channels and patterns, each
// subscribed on the server once however many clients listen, and
// unsubscribed when the last one leaves. Messages the server pushes are
// fanned out by the proxy to the clients of the channel or pattern, as the
// server sent them (Redis's RESP2 shapes, byte for byte). See
// redis_pubsub.go for the commands and docs/redis.md "Pub/sub".
//
// Lock order: hub.mu, then a session's mu. Nothing holds a session's mu
// and takes hub.mu; no lock is held across a read or write of a socket.

// subKind is what a subscription names.
type subKind uint8

const (
	subChannel subKind = iota // SUBSCRIBE: a channel
	subPattern                // PSUBSCRIBE: a glob-style pattern
	subShard                  // SSUBSCRIBE: a shard channel
)

// subVerbs are each kind's commands and its message type, as Redis names
// them in replies.
var subVerbs = [3]struct{ sub, unsub, msg string }{
	subChannel: {"subscribe", "unsubscribe", "message"},
	subPattern: {"psubscribe", "punsubscribe", "pmessage"},
	subShard:   {"ssubscribe", "sunsubscribe", "smessage"},
}

// subKey names one subscription of the pool.
type subKey struct {
	kind subKind
	name string
}

// subEntry is one subscription of the pool: who listens, and the servers
// it is subscribed on (fixed when the first client subscribed, so that
// the last one's unsubscribe reaches the same servers).
type subEntry struct {
	clients map[*session]struct{}
	srvs    []*server
}

// subWait is a client's (P|S)SUBSCRIBE request waiting for the server's
// confirmations: its reply is made, it is done once pending is 0.
type subWait struct {
	s       *session
	r       *request
	pending int // guarded by hub.mu
}

// pubsubHub is a pool's subscription layer.
type pubsubHub struct {
	pool *Pool

	mu      sync.RWMutex
	entries map[subKey]*subEntry // guarded by mu
	conns   map[*server]*subConn // guarded by mu; made on first use
	closed  bool                 // guarded by mu: the pool is shutting down
	ready   []*session           // guarded by mu: sessions with requests made done, to write to (unlock)
}

func newPubsubHub(p *Pool) *pubsubHub {
	return &pubsubHub{pool: p, entries: make(map[subKey]*subEntry), conns: make(map[*server]*subConn)}
}

// upstream is a subscription's state on one server connection.
type upstream struct {
	on        bool   // clients listen: SUBSCRIBE was the last command sent
	sent      uint64 // SUBSCRIBE commands sent on the current connection
	confirmed uint64 // and confirmed by the server
	waiters   []*subWait
}

// subConn is the subscriber connection to one server. Its goroutine (run)
// dials, re-dials with back-off after a failure, re-subscribes everything
// live, follows a Sentinel switch, and writes the commands the sessions
// queue; a reader goroutine per connection fans out what the server pushes.
type subConn struct {
	hub  *pubsubHub
	srv  *server
	wake chan struct{} // capacity 1: commands queued, the address switched

	// Guarded by hub.mu.
	subs map[subKey]*upstream
	out  []byte   // commands for the current connection, not yet written
	conn net.Conn // the current connection, nil while down
	up   bool     // conn is set and its subscriptions were issued
	gen  uint64   // counts connections: a stale reader's pushes are dropped
	addr config.Address

	lastRead atomic.Int64 // monoNow of the reader's latest burst (see run's PING)
}

// subBackoff bounds the pause between attempts to reach a server.
const (
	subBackoffMin = 50 * time.Millisecond
	subBackoffMax = time.Second
)

// subBatch bounds the names in one re-issued SUBSCRIBE.
const subBatch = 512

// subDeadMin is the least time without a byte from a pinged server before
// its subscriber connection is given up (see run).
const subDeadMin = time.Second

// subReadBuf is a subscriber connection's read buffer (grown for a larger
// message, up to max_reply_bytes): one per server, and a large read burst
// means one write to each subscriber for many messages.
const subReadBuf = 64 << 10

// subWriteTimeout bounds one write to a subscriber connection.
const subWriteTimeout = 10 * time.Second

// connLocked returns srv's subscriber connection, starting it on first use.
// h.mu must be held.
func (h *pubsubHub) connLocked(srv *server) *subConn {
	c := h.conns[srv]
	if c == nil {
		c = &subConn{hub: h, srv: srv, wake: make(chan struct{}, 1), subs: make(map[subKey]*upstream)}
		h.conns[srv] = c
		if !h.pool.goBackground(c.run) {
			h.closed = true
		}
	}
	return c
}

// signal wakes the connection's goroutine without blocking.
func (c *subConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// want subscribes key on the server (the first client listens): SUBSCRIBE
// is sent unless it is already on. w, if not nil, waits for the server's
// confirmation when one is outstanding (or the connection is not up yet).
// h.mu must be held.
func (c *subConn) want(key subKey, w *subWait) {
	u := c.subs[key]
	if u == nil {
		u = new(upstream)
		c.subs[key] = u
	}
	if !u.on {
		u.on = true
		if c.up {
			u.sent++
			c.out = appendSubCmd(c.out, subVerbs[key.kind].sub, key.name)
			c.signal()
		}
	}
	c.attach(u, w)
}

// attach makes w wait for u's pending confirmation, if there is one. h.mu
// must be held.
func (c *subConn) attach(u *upstream, w *subWait) {
	if w == nil || c.hub.closed {
		return
	}
	if !c.up || u.sent > u.confirmed {
		u.waiters = append(u.waiters, w)
		w.pending++
		if !c.up {
			c.signal() // a connection that was never wanted is dialled now
		}
	}
}

// unwant unsubscribes key on the server (the last client left). h.mu must
// be held.
func (c *subConn) unwant(key subKey) {
	u := c.subs[key]
	if u == nil || !u.on {
		return
	}
	u.on = false
	if c.up {
		c.out = appendSubCmd(c.out, subVerbs[key.kind].unsub, key.name)
		c.signal()
	}
	c.forget(key, u)
}

// forget drops an upstream that nobody wants and nobody waits on. h.mu
// must be held.
func (c *subConn) forget(key subKey, u *upstream) {
	if !u.on && u.sent == u.confirmed && len(u.waiters) == 0 {
		delete(c.subs, key)
	}
}

func appendSubCmd(dst []byte, verb, name string) []byte {
	dst = resp.AppendArrayHeader(dst, 2)
	dst = resp.AppendBulkString(dst, verb)
	return resp.AppendBulkString(dst, name)
}

// wanted reports whether anything is subscribed on the server. h.mu must
// be held.
func (c *subConn) wanted() bool {
	for _, u := range c.subs {
		if u.on || len(u.waiters) > 0 {
			return true
		}
	}
	return false
}

// run keeps the connection to the server while anything is subscribed
// there, until the pool shuts down.
func (c *subConn) run() {
	h := c.hub
	p := h.pool
	backoff := time.Duration(0)
	var cur net.Conn
	var readerDone chan error
	stop := func() {
		if cur != nil {
			cur.Close()
			<-readerDone
			cur, readerDone = nil, nil
		}
	}
	// With the pool's timeout, the connection is pinged every half of it
	// (a subscribed connection answers PING too), and one from which
	// nothing has been read for a timeout (at least subDeadMin) since a
	// PING is taken for dead: a hung server or a lost network would
	// otherwise leave the subscriptions silently deaf. The floor keeps a
	// burst of messages the reader is still fanning out from passing for
	// a dead server: a reconnection loses messages.
	var tick <-chan time.Time
	timeout := p.cfg.Timeout
	if timeout > 0 {
		t := time.NewTicker(max(timeout/2, 10*time.Millisecond))
		defer t.Stop()
		tick = t.C
		timeout = max(timeout, subDeadMin)
	}
	var pinged int64 // monoNow of the PING not answered yet, or 0
	defer func() {
		stop()
		h.mu.Lock()
		c.down(0, true)
		h.unlock()
	}()
	for {
		if cur == nil {
			// Nothing to do until a subscription wants the server.
			h.mu.Lock()
			for !c.wanted() {
				h.mu.Unlock()
				select {
				case <-p.done:
					return
				case <-c.wake:
				}
				h.mu.Lock()
			}
			h.mu.Unlock()
			if backoff > 0 {
				select {
				case <-p.done:
					return
				case <-time.After(backoff):
				}
			}
			conn, done, err := c.establish()
			if err != nil {
				p.logger.Info("subscriber connect failed", "server", c.srv.name, "err", err)
				backoff = min(max(2*backoff, subBackoffMin), subBackoffMax)
				continue
			}
			cur, readerDone, backoff, pinged = conn, done, 0, 0
		}
		if err := c.write(cur); err != nil {
			p.logger.Info("subscriber write failed", "server", c.srv.name, "err", err)
			stop()
			continue
		}
		select {
		case <-p.done:
			return
		case err := <-readerDone:
			// The reader has stopped and reported: the connection is down.
			if !p.isClosing() {
				p.logger.Info("subscriber connection lost; subscribing again", "server", c.srv.name, "err", err)
			}
			cur.Close()
			cur, readerDone = nil, nil
			backoff = subBackoffMin // a server that closes at once is not hammered
		case <-c.wake:
			if a := c.srv.addr.Load(); a != nil && *a != c.addr {
				// A Sentinel switch: subscribe at the new master first,
				// then drop the old connection, so that a message published
				// there in between is not lost.
				conn, done, err := c.establish()
				if err != nil {
					p.logger.Info("subscriber connect to the new master failed", "server", c.srv.name, "err", err)
					continue
				}
				old, oldDone := cur, readerDone
				cur, readerDone, pinged = conn, done, 0
				old.Close()
				<-oldDone
			}
		case <-tick:
			now := monoNow()
			switch {
			case pinged != 0 && c.lastRead.Load() >= pinged:
				pinged = 0 // answered
			case pinged != 0 && time.Duration(now-pinged) >= timeout:
				p.logger.Info("subscriber connection timed out; subscribing again", "server", c.srv.name, "timeout", timeout)
				stop()
				h.mu.Lock()
				c.releaseWaiters() // no confirmation will come from that server for now
				h.unlock()
				backoff = subBackoffMin
				continue
			}
			if pinged == 0 {
				pinged = now
				h.mu.Lock()
				c.out = append(c.out, cmdPing...)
				h.mu.Unlock()
			}
		}
	}
}

var cmdPing = []byte("*1\r\n$4\r\nPING\r\n")

// establish dials the server, sends the pool's AUTH and every live
// subscription, and starts the reader. Waiters are released (confirmed
// without the server) when the server cannot be reached: their
// subscriptions stay, and are made when the server is back.
func (c *subConn) establish() (net.Conn, chan error, error) {
	h := c.hub
	p := h.pool
	a := c.srv.addr.Load()
	if a == nil {
		h.mu.Lock()
		c.releaseWaiters()
		h.unlock()
		return nil, nil, fmt.Errorf("%w for Sentinel group '%s' yet", errNoMaster, c.srv.name)
	}
	addr := *a
	d := net.Dialer{Timeout: p.cfg.Timeout}
	if d.Timeout <= 0 {
		d.Timeout = subWriteTimeout
	}
	conn, err := d.Dial(addr.Network, addr.String())
	if err != nil {
		h.mu.Lock()
		c.releaseWaiters()
		h.unlock()
		return nil, nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	h.mu.Lock()
	c.down(c.gen, false) // the previous connection's pending commands are void
	c.gen++
	gen := c.gen
	c.conn, c.up, c.addr = conn, true, addr
	// AUTH only: pub/sub does not depend on the database.
	skip := 0
	c.out = c.out[:0]
	if auth := h.pool.cfg.RedisAuth; auth != "" {
		c.out = resp.AppendCommand(c.out, []byte("AUTH"), []byte(auth))
		skip = 1
	}
	var names [3][]string
	for key, u := range c.subs {
		if u.on {
			u.sent++
			names[key.kind] = append(names[key.kind], key.name)
		}
	}
	for kind := range names {
		for len(names[kind]) > 0 {
			batch := names[kind][:min(len(names[kind]), subBatch)]
			names[kind] = names[kind][len(batch):]
			c.out = resp.AppendArrayHeader(c.out, 1+len(batch))
			c.out = resp.AppendBulkString(c.out, subVerbs[kind].sub)
			for _, n := range batch {
				c.out = resp.AppendBulkString(c.out, n)
			}
		}
	}
	h.unlock()
	p.logger.Info("subscriber connected", "server", c.srv.name, "local", conn.LocalAddr().String())
	done := make(chan error, 1)
	go c.read(conn, gen, skip, done)
	return conn, done, nil
}

// write sends the queued commands.
func (c *subConn) write(conn net.Conn) error {
	h := c.hub
	h.mu.Lock()
	out := c.out
	c.out = nil
	h.mu.Unlock()
	if len(out) == 0 {
		return nil
	}
	_ = conn.SetWriteDeadline(time.Now().Add(subWriteTimeout))
	_, err := conn.Write(out)
	return err
}

// down marks the connection of generation gen gone (any, when gen is 0):
// the confirmations it owed will not come. Subscriptions nobody wants are
// forgotten; with final, every waiter is released. h.mu must be held.
func (c *subConn) down(gen uint64, final bool) {
	if gen != 0 && gen != c.gen {
		return
	}
	c.conn, c.up = nil, false
	c.out = c.out[:0]
	for key, u := range c.subs {
		u.confirmed = u.sent
		if !u.on || final {
			c.release(u)
		}
		c.forget(key, u)
	}
}

// releaseWaiters confirms every waiting request (the server could not be
// reached). h.mu must be held.
func (c *subConn) releaseWaiters() {
	for key, u := range c.subs {
		c.release(u)
		c.forget(key, u)
	}
}

// release completes u's waiters, those for whom it was the last
// confirmation outstanding. h.mu must be held.
func (c *subConn) release(u *upstream) {
	for i, w := range u.waiters {
		w.pending--
		if w.pending == 0 {
			w.s.mu.Lock()
			w.s.finish(w.r)
			w.s.mu.Unlock()
			c.hub.ready = addSession(c.hub.ready, w.s)
		}
		u.waiters[i] = nil
	}
	u.waiters = u.waiters[:0]
}

// unlock releases h.mu, then writes to the clients whose requests were
// made done under it (no socket is written with the lock held).
func (h *pubsubHub) unlock() {
	ready := h.ready
	h.ready = nil
	h.mu.Unlock()
	for _, s := range ready {
		s.deliver()
	}
}

// errPubSubLimit ends the session of a subscriber disconnected at
// client_pubsub_limit.
var errPubSubLimit = errors.New("client_pubsub_limit reached: messages left unread")

// errSubReply: a reply the subscriber connection did not expect.
var errSubReply = errors.New("unexpected reply on a subscriber connection")

// read frames what the server sends and fans messages out, until the
// connection fails; it reports why on done.
func (c *subConn) read(conn net.Conn, gen uint64, skip int, done chan<- error) {
	p := c.hub.pool
	limit := p.cfg.MaxReplyBytes
	if limit <= 0 {
		limit = config.DefaultMaxReplyBytes
	}
	sc := resp.ReplyScanner{MaxLine: maxReplyLine}
	buf := make([]byte, subReadBuf)
	n := 0
	var elems [][]byte
	var touched []*session
	var err error
	for err == nil {
		if n == len(buf) {
			if len(buf) >= limit {
				err = &badReplyError{server: c.srv.name, err: replyTooLarge(limit)}
				break
			}
			buf = append(buf, make([]byte, min(len(buf), limit-len(buf)))...)
		}
		var m int
		m, err = conn.Read(buf[n:])
		n += m
		c.lastRead.Store(monoNow())
		off := 0
		for off < n {
			l, serr := sc.Scan(buf[off:n])
			if serr == resp.ErrIncomplete {
				break
			}
			if serr != nil {
				err = &badReplyError{server: c.srv.name, err: serr}
				break
			}
			reply := buf[off : off+l]
			off += l
			c.lastRead.Store(monoNow()) // alive: progress through a long burst counts
			if skip > 0 {
				skip--
				if resp.IsError(reply) {
					err = fmt.Errorf("AUTH refused: %s", bytes.TrimSpace(reply[1:]))
					break
				}
				continue
			}
			elems, _ = resp.ArrayElements(reply, elems[:0])
			touched, err = c.handle(gen, reply, elems, touched)
			if err != nil {
				break
			}
		}
		copy(buf, buf[off:n])
		n -= off
		if len(buf) > subReadBuf && n <= subReadBuf {
			buf = append([]byte(nil), buf[:subReadBuf]...)
		}
		for i, s := range touched {
			s.deliver()
			touched[i] = nil
		}
		touched = touched[:0]
	}
	h := c.hub
	h.mu.Lock()
	c.down(gen, false)
	h.unlock()
	done <- err
}

// handle acts on one thing the server sent: a message is fanned out, a
// confirmation releases the requests that waited for it.
func (c *subConn) handle(gen uint64, reply []byte, elems [][]byte, touched []*session) ([]*session, error) {
	if len(elems) < 2 {
		return touched, fmt.Errorf("%w: %.40q", errSubReply, reply)
	}
	verb, _, ok := resp.ParseBulk(elems[0])
	if !ok {
		return touched, fmt.Errorf("%w: %.40q", errSubReply, reply)
	}
	name, _, _ := resp.ParseBulk(elems[1])
	h := c.hub
	kind, confirm, ok := pushKind(verb)
	switch {
	case !ok:
		return touched, fmt.Errorf("%w: %.40q", errSubReply, reply)
	case !confirm:
		return h.fanOut(c, gen, subKey{kind, string(name)}, reply, touched), nil
	case kind == subNone:
		return touched, nil // an unsubscribe's confirmation or a PING's pong: nothing waits for it
	}
	key := subKey{kind, string(name)}
	h.mu.Lock()
	if c.gen == gen {
		if u := c.subs[key]; u != nil && u.confirmed < u.sent {
			u.confirmed++
			if u.confirmed == u.sent {
				c.release(u)
			}
			c.forget(key, u)
		}
	}
	h.unlock()
	return touched, nil
}

// subNone marks an unsubscribe's confirmation (pushKind).
const subNone subKind = 255

// pushKind reads the first element of what a subscriber connection
// receives: a message (confirm false) or a confirmation of its kind
// (subNone for the unsubscribes), ok false for anything else.
func pushKind(verb []byte) (kind subKind, confirm, ok bool) {
	switch string(verb) {
	case "message":
		return subChannel, false, true
	case "pmessage":
		return subPattern, false, true
	case "smessage":
		return subShard, false, true
	case "subscribe":
		return subChannel, true, true
	case "psubscribe":
		return subPattern, true, true
	case "ssubscribe":
		return subShard, true, true
	case "unsubscribe", "punsubscribe", "sunsubscribe", "pong":
		return subNone, true, true
	}
	return 0, false, false
}

// fanOut gives a message to every client of key. A client that has left
// more than client_pubsub_limit bytes unread is disconnected instead.
func (h *pubsubHub) fanOut(c *subConn, gen uint64, key subKey, msg []byte, touched []*session) []*session {
	limit := h.pool.cfg.ClientPubSubLimit
	var slow []*session
	h.mu.RLock()
	if c.gen != gen {
		h.mu.RUnlock()
		return touched
	}
	if e := h.entries[key]; e != nil {
		for s := range e.clients {
			if !s.push(msg, limit) {
				slow = append(slow, s)
				continue
			}
			touched = addSession(touched, s)
		}
	}
	h.mu.RUnlock()
	for _, s := range slow {
		if s.dropSlow() {
			h.pool.stats.pubsubDropped.Add(1)
			h.pool.logger.Info("subscriber disconnected: client_pubsub_limit reached",
				"client", s.conn.RemoteAddr().String(), "limit", limit)
		}
	}
	return touched
}

// push queues a published message for the client, after everything queued
// before it. It reports false when the message would take the client's
// unread bytes past limit (0: no limit). Messages queued one after the
// other share a request, up to maxKeptReply bytes, so a subscriber's
// backlog costs its bytes, not a request each.
func (s *session) push(msg []byte, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.broken || s.closing {
		return true // dropped: the client is gone
	}
	if limit > 0 && s.held+len(msg) > limit {
		return false
	}
	if last := s.queue.last(); last != nil && last.push && len(last.reply)+len(msg) <= maxKeptReply {
		last.reply = append(last.reply, msg...)
	} else {
		r := s.alloc()
		r.push, r.done = true, true
		r.reply = append(r.reply[:0], msg...)
		s.queue.push(r)
	}
	s.held += len(msg)
	return true
}

// dropSlow disconnects a subscriber that does not read: its replies are
// dropped and its reader and writer stop at once, as abort does. It
// reports whether this call did it.
func (s *session) dropSlow() bool {
	s.mu.Lock()
	if s.broken {
		s.mu.Unlock()
		return false
	}
	s.broken = true
	s.slow.Store(true)
	s.take() // drop what is queued
	s.cond.Broadcast()
	s.mu.Unlock()
	_ = s.conn.SetDeadline(time.Now())
	return true
}

// switched tells srv's subscriber connection that Sentinel moved the
// server: it subscribes at the new address, then drops the old one.
func (h *pubsubHub) switched(srv *server) {
	h.mu.Lock()
	c := h.conns[srv]
	h.mu.Unlock()
	if c != nil {
		c.signal()
	}
}

// releaseAll answers every (P|S)SUBSCRIBE still waiting for a server, and
// makes later ones answer at once: the pool is shutting down. The
// subscriber connections stop with the pool's background work.
func (h *pubsubHub) releaseAll() {
	h.mu.Lock()
	h.closed = true
	for _, c := range h.conns {
		c.releaseWaiters()
	}
	h.unlock()
}
