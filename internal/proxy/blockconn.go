package proxy

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/internal/resp"
)

// A blocking command (redis_block.go) never waits on a shared connection:
// it would stall every client whose requests are pipelined behind it. It
// runs on a blockConn, a plain request-reply connection that one blocked
// client holds for the length of its command, taken from its server's
// blockPool: at most blocking_connections per server, a few kept idle for
// reuse, each dialled with the pool's AUTH and the client's database and
// knowing its CLIENT ID on the server. A block is cancelled (the client
// left, another server answered first, CLIENT UNBLOCK) with CLIENT UNBLOCK
// <id> sent on the server's control connection, never by closing the
// blocked connection: Redis may already have popped an element for a
// connection it has not seen closed yet, and that element would be lost.
// After CLIENT UNBLOCK the blocked connection answers (null, or the
// element it was served just before), so nothing is ever in doubt.

// maxIdleBlockConns bounds the idle blocking connections kept per server.
const maxIdleBlockConns = 8

// errBlockingFull: the server has blocking_connections in use already.
var errBlockingFull = errors.New("too many blocked clients")

// blockConn is one connection to a server for one blocked client at a
// time. Only the goroutine running that client's command uses it.
type blockConn struct {
	conn net.Conn
	db   int
	id   []byte // its CLIENT ID on the server, as decimal digits
	buf  []byte // bytes read and not yet returned as a reply: buf[:n]
	n    int
	sc   resp.ReplyScanner
	max  int // max_reply_bytes
	// closedBy is why the proxy closed the connection under its user
	// (a Sentinel switch), for the error the blocked client gets.
	closedBy atomic.Pointer[error]
}

// failure returns the error to report for err, a failed read or write.
func (c *blockConn) failure(err error) error {
	if cause := c.closedBy.Load(); cause != nil {
		return *cause
	}
	return err
}

// dialBlockConn connects to srv for database db, sends the pool's prelude
// (AUTH, SELECT) and asks for the connection's CLIENT ID.
func dialBlockConn(srv *server, db int, timeout time.Duration) (*blockConn, error) {
	p := srv.pool()
	addr := srv.address()
	d := net.Dialer{Timeout: timeout}
	conn, err := d.Dial(addr.Network, addr.String())
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	limit := p.cfg.MaxReplyBytes
	if limit <= 0 {
		limit = 1 << 20
	}
	c := &blockConn{conn: conn, db: db, buf: make([]byte, 512), sc: resp.ReplyScanner{MaxLine: maxReplyLine}, max: limit}
	var out []byte
	pre := p.proto.prelude(db)
	for _, cmd := range pre {
		out = append(out, cmd...)
	}
	out = append(out, "*2\r\n$6\r\nCLIENT\r\n$2\r\nID\r\n"...)
	deadline := time.Now().Add(timeout)
	if err := c.write(out, deadline); err != nil {
		conn.Close()
		return nil, err
	}
	for range pre {
		reply, err := c.read(deadline)
		if err == nil && resp.IsError(reply) {
			err = fmt.Errorf("server rejected connection setup: %s", trimReply(reply))
		}
		if err != nil {
			conn.Close()
			return nil, err
		}
	}
	reply, err := c.read(deadline)
	if err == nil && (len(reply) < 4 || reply[0] != ':') {
		err = fmt.Errorf("CLIENT ID answered %q", trimReply(reply))
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	c.id = append([]byte(nil), reply[1:len(reply)-2]...)
	return c, nil
}

// trimReply cuts a reply for a log line or an error.
func trimReply(reply []byte) string {
	if len(reply) > 128 {
		reply = reply[:128]
	}
	for len(reply) > 0 && (reply[len(reply)-1] == '\n' || reply[len(reply)-1] == '\r') {
		reply = reply[:len(reply)-1]
	}
	return string(reply)
}

// write sends b; a zero deadline waits for ever.
func (c *blockConn) write(b []byte, deadline time.Time) error {
	_ = c.conn.SetWriteDeadline(deadline)
	_, err := c.conn.Write(b)
	return err
}

// read returns the next reply, a copy the caller may keep; a zero
// deadline waits for ever. A reply that cannot be framed or is over
// max_reply_bytes is an error (the connection is then unusable).
func (c *blockConn) read(deadline time.Time) ([]byte, error) {
	_ = c.conn.SetReadDeadline(deadline)
	for {
		if c.n > 0 {
			m, err := c.sc.Scan(c.buf[:c.n])
			if err == nil {
				reply := append([]byte(nil), c.buf[:m]...)
				copy(c.buf, c.buf[m:c.n])
				c.n -= m
				c.sc.Reset()
				return reply, nil
			}
			if err != resp.ErrIncomplete {
				return nil, err
			}
			if want := c.n + c.sc.Need(); want > c.max {
				return nil, replyTooLarge(c.max)
			}
		}
		if c.n == len(c.buf) {
			nb := make([]byte, min(max(2*len(c.buf), c.n+c.sc.Need()), c.max+1))
			copy(nb, c.buf[:c.n])
			c.buf = nb
		}
		m, err := c.conn.Read(c.buf[c.n:])
		c.n += m
		if err != nil {
			return nil, err
		}
	}
}

// roundTrip sends one command and returns its reply.
func (c *blockConn) roundTrip(cmd []byte, deadline time.Time) ([]byte, error) {
	if err := c.write(cmd, deadline); err != nil {
		return nil, err
	}
	return c.read(deadline)
}

// blockPool is a server's blocking connections. Its zero value is ready.
type blockPool struct {
	mu     sync.Mutex
	open   map[*blockConn]struct{} // every connection dialled and not closed
	idle   []*blockConn
	dials  int // dials under way, counted against the limit
	closed bool

	ctlMu sync.Mutex // serialises the control connection's round trips
	ctl   *blockConn // for CLIENT UNBLOCK; dialled on first use
}

// take returns a connection to srv for database db: an idle one, or a new
// one if the server has fewer than limit. It fails at once with
// errBlockingFull at the limit.
func (bp *blockPool) take(srv *server, db, limit int, timeout time.Duration) (*blockConn, error) {
	bp.mu.Lock()
	if bp.closed {
		bp.mu.Unlock()
		return nil, net.ErrClosed
	}
	for i := len(bp.idle) - 1; i >= 0; i-- {
		if c := bp.idle[i]; c.db == db {
			bp.idle = append(bp.idle[:i], bp.idle[i+1:]...)
			bp.mu.Unlock()
			return c, nil
		}
	}
	if len(bp.open)+bp.dials >= limit {
		if len(bp.idle) == 0 {
			bp.mu.Unlock()
			return nil, errBlockingFull
		}
		// Make room: an idle connection of another database goes.
		old := bp.idle[0]
		bp.idle = bp.idle[1:]
		delete(bp.open, old)
		old.conn.Close()
	}
	bp.dials++
	bp.mu.Unlock()
	c, err := dialBlockConn(srv, db, timeout)
	bp.mu.Lock()
	defer bp.mu.Unlock()
	bp.dials--
	if err != nil {
		return nil, err
	}
	if bp.closed {
		c.conn.Close()
		return nil, net.ErrClosed
	}
	if bp.open == nil {
		bp.open = make(map[*blockConn]struct{})
	}
	bp.open[c] = struct{}{}
	return c, nil
}

// put gives a connection back: kept idle when clean (its last command
// answered, nothing unread) and there is room, else closed.
func (bp *blockPool) put(c *blockConn, clean bool) {
	bp.mu.Lock()
	_, open := bp.open[c] // not open any more: closed by reset
	if clean && open && c.n == 0 && !bp.closed && len(bp.idle) < maxIdleBlockConns {
		_ = c.conn.SetDeadline(time.Time{})
		bp.idle = append(bp.idle, c)
		bp.mu.Unlock()
		return
	}
	delete(bp.open, c)
	bp.mu.Unlock()
	c.conn.Close()
}

// unblock sends CLIENT UNBLOCK id mode on the control connection and
// reports whether the server unblocked that connection (false: it was not
// blocked — not yet, or no longer).
func (bp *blockPool) unblock(srv *server, id []byte, mode string, timeout time.Duration) (bool, error) {
	bp.ctlMu.Lock()
	defer bp.ctlMu.Unlock()
	cmd := resp.AppendCommand(nil, []byte("CLIENT"), []byte("UNBLOCK"), id, []byte(mode))
	for attempt := 0; ; attempt++ {
		if bp.ctl == nil {
			bp.mu.Lock()
			closed := bp.closed
			bp.mu.Unlock()
			if closed {
				return false, net.ErrClosed
			}
			c, err := dialBlockConn(srv, srv.pool().cfg.RedisDB, timeout)
			if err != nil {
				return false, err
			}
			bp.ctl = c
		}
		reply, err := bp.ctl.roundTrip(cmd, time.Now().Add(timeout))
		if err != nil {
			bp.ctl.conn.Close()
			bp.ctl = nil
			if attempt == 0 {
				continue // a control connection the server had closed: once more on a new one
			}
			return false, err
		}
		if resp.IsError(reply) {
			return false, errors.New(trimReply(reply))
		}
		n, _ := resp.ParseInteger(reply)
		return n == 1, nil
	}
}

// reset closes every connection, idle or in use, for cause (a Sentinel
// switch: they lead to the old master); new ones go to the new address.
func (bp *blockPool) reset(cause error) {
	bp.mu.Lock()
	for c := range bp.open {
		c.closedBy.Store(&cause)
		c.conn.Close()
	}
	clear(bp.open)
	bp.idle = nil
	bp.mu.Unlock()
	bp.ctlMu.Lock()
	if bp.ctl != nil {
		bp.ctl.conn.Close()
		bp.ctl = nil
	}
	bp.ctlMu.Unlock()
}

// close closes every connection, idle or in use (a command blocked on one
// then fails), and refuses new ones: the pool is shutting down.
func (bp *blockPool) close() {
	bp.mu.Lock()
	bp.closed = true
	for c := range bp.open {
		c.conn.Close()
	}
	bp.open, bp.idle = nil, nil
	bp.mu.Unlock()
	bp.ctlMu.Lock()
	if bp.ctl != nil {
		bp.ctl.conn.Close()
		bp.ctl = nil
	}
	bp.ctlMu.Unlock()
}
