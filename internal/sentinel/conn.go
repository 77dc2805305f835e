package sentinel

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/shardproxy/shardproxy/internal/resp"
)

// maxReply bounds one reply. The largest this package reads is ROLE from a
// master with many replicas, a few dozen bytes per replica.
const maxReply = 1 << 20

// errReplyTooLong reports a reply larger than maxReply.
var errReplyTooLong = errors.New("reply longer than 1 MiB")

// conn is a minimal RESP2 client connection: commands go out as arrays of
// bulk strings, replies are framed by resp.ReplyScanner and returned as raw
// bytes for the parsers in reply.go.
//
// A conn is used by one goroutine. Every read and write has a deadline, and
// the connection is closed as soon as the context it was dialled with is
// done, so that a call blocked on a stopped server returns at once when the
// Watcher closes.
type conn struct {
	nc      net.Conn
	timeout time.Duration // for each write, and for each reply of do
	stop    func() bool   // unregisters the context hook that closes nc

	out      []byte // commands not yet written
	in       []byte // bytes read: a reply being framed, then what follows
	consumed int    // length of the reply last returned, dropped at the next read
	scan     resp.ReplyScanner
}

// dial connects to addr within timeout, or fails when ctx is done.
func dial(ctx context.Context, addr string, timeout time.Duration) (*conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &conn{nc: nc, timeout: timeout}
	c.stop = context.AfterFunc(ctx, func() { nc.Close() })
	return c, nil
}

// close closes the connection. It is safe to call more than once.
func (c *conn) close() {
	c.stop()
	c.nc.Close()
}

// send queues a command; flush writes it.
func (c *conn) send(args ...string) {
	c.out = resp.AppendArrayHeader(c.out, len(args))
	for _, a := range args {
		c.out = resp.AppendBulkString(c.out, a)
	}
}

// flush writes every queued command in one write.
func (c *conn) flush() error {
	if len(c.out) == 0 {
		return nil
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(c.out)
	c.out = c.out[:0]
	return err
}

// do sends one command and returns its reply, all within the timeout. The
// reply is valid until the next call that reads.
func (c *conn) do(args ...string) ([]byte, error) {
	c.send(args...)
	if err := c.flush(); err != nil {
		return nil, err
	}
	return c.read(time.Now().Add(c.timeout))
}

// read returns the next reply, or an error if it has not fully arrived by
// deadline. After a timeout (os.ErrDeadlineExceeded) the bytes of a partly
// received reply are kept, and the next read carries on with them. The
// reply is valid until the next read.
func (c *conn) read(deadline time.Time) ([]byte, error) {
	if c.consumed > 0 {
		c.in = c.in[:copy(c.in, c.in[c.consumed:])]
		c.consumed = 0
	}
	if err := c.nc.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	for {
		if len(c.in) > 0 {
			n, err := c.scan.Scan(c.in)
			if err == nil {
				c.consumed = n
				return c.in[:n:n], nil
			}
			if !errors.Is(err, resp.ErrIncomplete) {
				return nil, err
			}
		}
		if len(c.in) >= maxReply {
			return nil, errReplyTooLong
		}
		if cap(c.in)-len(c.in) < 512 {
			grown := make([]byte, len(c.in), max(4096, 2*cap(c.in)))
			copy(grown, c.in)
			c.in = grown
		}
		n, err := c.nc.Read(c.in[len(c.in):cap(c.in)])
		c.in = c.in[:len(c.in)+n]
		if err != nil {
			return nil, err
		}
	}
}
