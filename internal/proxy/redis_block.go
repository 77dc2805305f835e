package proxy

import (
	"bytes"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/internal/rediscmd"
	"github.com/shardproxy/shardproxy/internal/resp"
)

// Blocking commands: BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP, BZPOPMIN,
// BZPOPMAX, BZMPOP, and XREAD/XREADGROUP with BLOCK.
//
// A blocking request runs on blocking connections of its own (blockconn.go),
// in a goroutine of its own, while the client's session waits: as in Redis,
// a blocked client's next requests are read but not run until the block
// ends (the session reader stops dispatching; see session.blocked). The
// command's deadline is its own timeout plus a margin (the pool's timeout,
// at least a second): the pool's timeout never cuts a block short, and a
// timeout of 0 blocks until data comes or the client leaves.
//
// Keys on one server: the request is sent there as it is. Keys on several
// servers (BLPOP, BRPOP, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP; with
// cross_server_blocking, the default): first a non-blocking pop of each key
// in the client's order, as Redis serves the first non-empty key; if every
// key was empty, the blocking command with each server's keys is sent to
// every server at once. The first element to come wins; the other servers
// are unblocked (CLIENT UNBLOCK), and an element one of them popped in the
// meantime is pushed back to the end it was taken from. What is not atomic:
// between that pop and its push-back the element is out of its list, so a
// client reading the list then does not see it, and an element pushed to
// another key meanwhile may be popped by another client first; no element
// is ever lost or delivered twice.
//
// A client that leaves while blocked, or is killed, has its blocks
// cancelled, and an element popped for it is pushed back. CLIENT UNBLOCK
// of a proxy client ID cancels its block as Redis does (TIMEOUT: a null
// reply; ERROR: -UNBLOCKED). A server that fails while a client is blocked
// on it answers that client with an error, and its connection is closed.

// How a block was cancelled (blockOp.why).
const (
	notCancelled   int32 = iota
	cancelGone           // the client left or was killed: push back what was popped
	cancelShutdown       // the proxy is shutting down
	cancelTimeout        // CLIENT UNBLOCK id [TIMEOUT]: a null reply
	cancelError          // CLIENT UNBLOCK id ERROR: -UNBLOCKED
)

var (
	replyUnblocked = []byte("-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n")
	replyNullArray = []byte("*-1\r\n")
	replyNullBulk  = []byte("$-1\r\n")
)

// unblockRetry is how often CLIENT UNBLOCK is sent again to a server that
// answered 0 (it had not read the blocking command yet) and has not replied
// since; unblockGiveUp is when the proxy stops waiting for such a server
// and closes the connection.
const (
	unblockRetry  = 20 * time.Millisecond
	unblockGiveUp = 5 * time.Second
)

// blockOp is one blocking request being run.
type blockOp struct {
	s       *session
	r       *request
	cmd     *rediscmd.Command
	args    [][]byte  // the request's arguments, copied
	keys    [][]byte  // its keys in the client's order (into args)
	keySrv  []int     // the index in srvs of each key's server
	srvs    []*server // the servers, in the order of their first key
	db      int
	timeout time.Duration // the command's own; 0: for ever
	margin  time.Duration

	cancel   chan struct{} // closed when the block is cancelled
	why      atomic.Int32
	stopOnce sync.Once
}

// stop cancels the block for why, unless it was cancelled already; it
// reports whether this call cancelled it.
func (op *blockOp) stop(why int32) bool {
	if !op.why.CompareAndSwap(notCancelled, why) {
		return false
	}
	op.stopOnce.Do(func() { close(op.cancel) })
	return true
}

// block starts the blocking request args of cmd, whose timeout is timeout.
// The session reader calls it; the request is answered by the goroutine.
func (rp *redisProtocol) block(s *session, r *request, cmd *rediscmd.Command, args [][]byte, timeout time.Duration) {
	keys, err := cmd.KeyIndexes(args, s.idxs[:0])
	s.idxs = keys
	if err != nil {
		rp.refuse(s, r, args, err)
		return
	}
	op := &blockOp{s: s, r: r, cmd: cmd, db: s.db, timeout: timeout, cancel: make(chan struct{})}
	op.margin = max(rp.pool.cfg.Timeout, time.Second)
	// The arguments point into the read buffer, which the reader reuses:
	// one copy of them all for the goroutine.
	size := 0
	for _, a := range args {
		size += len(a)
	}
	buf := make([]byte, 0, size)
	op.args = make([][]byte, len(args))
	for i, a := range args {
		buf = append(buf, a...)
		op.args[i] = buf[len(buf)-len(a) : len(buf) : len(buf)]
	}
	for _, k := range keys {
		srv := rp.pool.pick(args[k])
		if srv == nil {
			s.noServer(r)
			return
		}
		if rp.pool.random && len(op.srvs) > 0 {
			srv = op.srvs[0] // each key would go to a random server: the first key's
		}
		at := -1
		for i, o := range op.srvs {
			if o == srv {
				at = i
			}
		}
		if at < 0 {
			at = len(op.srvs)
			op.srvs = append(op.srvs, srv)
		}
		op.keys = append(op.keys, op.args[k])
		op.keySrv = append(op.keySrv, at)
	}
	if len(op.srvs) > 1 {
		switch {
		case !cmd.CrossServer():
			s.replyError(r, "keys of '"+cmd.Name+"' are on different servers; put them together with a hash tag")
			return
		case !rp.pool.cfg.CrossServerBlocking:
			s.replyError(r, "keys of '"+cmd.Name+"' are on different servers and cross_server_blocking is off; put them together with a hash tag")
			return
		}
	}
	s.mu.Lock()
	s.block = op
	s.mu.Unlock()
	s.blocked.Store(true)
	s.pool.stats.blocked.Add(1)
	go op.run()
}

// run executes the block, answers the client, and lets the session read on.
func (op *blockOp) run() {
	s, r := op.s, op.r
	reply := op.execute()
	r.reply = append(r.reply[:0], reply...)
	s.complete(r)
	s.mu.Lock()
	s.block = nil
	s.blocked.Store(false)
	s.cond.Broadcast()
	s.mu.Unlock()
	s.pool.stats.blocked.Add(-1)
	s.deliver()
}

// errorReply words an error for the client.
func (op *blockOp) errorReply(msg string) []byte {
	return resp.AppendError(nil, "ERR "+msg)
}

// execute runs the command and returns the client's reply.
func (op *blockOp) execute() []byte {
	p := op.s.pool
	conns := make([]*blockConn, len(op.srvs))
	clean := make([]bool, len(op.srvs))
	defer func() {
		for i, c := range conns {
			if c != nil {
				op.srvs[i].blk.put(c, clean[i])
			}
		}
	}()
	for i, srv := range op.srvs {
		c, err := srv.blk.take(srv, op.db, p.cfg.BlockingConnections, op.margin)
		switch {
		case errors.Is(err, errBlockingFull):
			return op.errorReply("server " + srv.name + " has blocking_connections (" +
				strconv.Itoa(p.cfg.BlockingConnections) + ") clients blocked already; raise blocking_connections")
		case err != nil:
			p.stats.forwardErrors.Add(1)
			return op.errorReply(errorText(err))
		}
		conns[i], clean[i] = c, true
	}
	if len(op.srvs) > 1 {
		for i, key := range op.keys {
			if op.why.Load() != notCancelled {
				return op.cancelledReply(nil)
			}
			c := conns[op.keySrv[i]]
			cmd, _ := op.cmd.NonBlockingPop(nil, op.args, key)
			reply, err := c.roundTrip(cmd, time.Now().Add(op.margin))
			if err != nil {
				clean[op.keySrv[i]] = false
				p.stats.forwardErrors.Add(1)
				return op.errorReply(errorText(err))
			}
			if out, ok := op.cmd.BlockingReply(nil, key, reply); ok {
				if op.why.Load() == cancelGone && !resp.IsError(out) {
					op.pushBack(op.keySrv[i], c, &clean[op.keySrv[i]], out)
				}
				return out
			}
		}
	}
	return op.await(conns, clean)
}

// blockResult is one server's answer to its blocking command.
type blockResult struct {
	i     int
	reply []byte
	err   error
}

// await sends the blocking command to every server and waits for the
// first element (or error), the end of the timeout on every server, or a
// cancellation.
func (op *blockOp) await(conns []*blockConn, clean []bool) []byte {
	p := op.s.pool
	n := len(conns)
	var deadline time.Time
	if op.timeout > 0 {
		deadline = time.Now().Add(op.timeout + op.margin)
	}
	results := make(chan blockResult, n)
	answered := make([]bool, n)
	for i, c := range conns {
		var cmd []byte
		if n == 1 {
			cmd = resp.AppendCommand(nil, op.args...)
		} else {
			var keys [][]byte
			for k, key := range op.keys {
				if op.keySrv[k] == i {
					keys = append(keys, key)
				}
			}
			cmd, _ = op.cmd.AppendBlockingWith(nil, op.args, keys)
		}
		go func() {
			var reply []byte
			err := c.write(cmd, deadline)
			if err == nil {
				reply, err = c.read(deadline)
			}
			results <- blockResult{i: i, reply: reply, err: err}
		}()
	}
	var winner, null []byte
	winnerAt := -1
	var unblockedAt time.Time
	pending := n
	peerCheck := time.NewTicker(time.Second)
	defer peerCheck.Stop()
	var retry <-chan time.Time
	var retryTimer *time.Timer
	defer func() {
		if retryTimer != nil {
			retryTimer.Stop()
		}
	}()
	cancel := op.cancel
	// unblockRest asks every server that has not answered to unblock, and
	// arms the retry for those that had not blocked yet.
	unblockRest := func() {
		mode := "TIMEOUT"
		if op.why.Load() == cancelError {
			mode = "ERROR"
		}
		if unblockedAt.IsZero() {
			unblockedAt = time.Now()
		}
		again := false
		for i, c := range conns {
			if answered[i] {
				continue
			}
			ok, err := op.srvs[i].blk.unblock(op.srvs[i], c.id, mode, op.margin)
			if err != nil || !ok && time.Since(unblockedAt) > unblockGiveUp {
				// The server cannot be reached or never blocked: give up
				// on it; its reader fails as the connection closes.
				clean[i] = false
				c.conn.Close()
				continue
			}
			again = again || !ok
		}
		if again {
			if retryTimer == nil {
				retryTimer = time.NewTimer(unblockRetry)
			} else {
				retryTimer.Reset(unblockRetry)
			}
			retry = retryTimer.C
		} else {
			retry = nil
		}
	}
	for pending > 0 {
		select {
		case res := <-results:
			pending--
			answered[res.i] = true
			switch {
			case res.err != nil:
				clean[res.i] = false
				if winner == nil && op.why.Load() == notCancelled {
					err := conns[res.i].failure(res.err)
					p.stats.forwardErrors.Add(1)
					if !errors.Is(err, errSwitched) {
						op.srvs[res.i].countFailure(err)
					}
					winner, winnerAt = op.errorReply(errorText(err)), -1
					unblockRest()
				}
			case isNullReply(res.reply) || bytes.Equal(res.reply, replyUnblocked):
				null = res.reply
			case winner == nil:
				winner, winnerAt = res.reply, res.i
				if resp.IsError(res.reply) {
					winnerAt = -1
				}
				if pending > 0 {
					unblockRest()
				}
			default:
				// Popped by a server that lost the race: put it back.
				op.pushBack(res.i, conns[res.i], &clean[res.i], res.reply)
			}
		case <-cancel:
			cancel = nil
			unblockRest()
		case <-retry:
			unblockRest()
		case <-peerCheck.C:
			if op.s.peerGone() {
				op.stop(cancelGone)
			}
		}
	}
	if winner != nil && winnerAt >= 0 && op.why.Load() == cancelGone {
		// Nobody to give it to.
		op.pushBack(winnerAt, conns[winnerAt], &clean[winnerAt], winner)
		winner = nil
	}
	if winner != nil {
		return winner
	}
	return op.cancelledReply(null)
}

// cancelledReply is the reply when no element came: the servers' null,
// or what the cancellation calls for.
func (op *blockOp) cancelledReply(null []byte) []byte {
	switch op.why.Load() {
	case cancelError:
		return replyUnblocked
	case cancelShutdown:
		return op.errorReply("the proxy is shutting down: blocking command cancelled")
	}
	if null != nil && !bytes.Equal(null, replyUnblocked) {
		return null
	}
	return replyNullArray // every blocking command's timeout, BLMOVE's too
}

// pushBack puts back on server i, through c, the elements that reply
// popped; clean is cleared if c fails.
func (op *blockOp) pushBack(i int, c *blockConn, clean *bool, reply []byte) {
	cmd, ok, err := op.cmd.AppendPushBack(nil, op.args, reply)
	if err != nil || !ok {
		if err != nil {
			op.s.pool.logger.Warn("cannot push back a popped element", "server", op.srvs[i].name, "err", err, "reply", trimReply(reply))
		}
		return
	}
	out, err := c.roundTrip(cmd, time.Now().Add(op.margin))
	if err == nil && resp.IsError(out) {
		err = errors.New(trimReply(out))
	}
	if err != nil {
		*clean = false
		op.s.pool.logger.Warn("push-back of a popped element failed: it is lost", "server", op.srvs[i].name, "err", err, "reply", trimReply(reply))
		return
	}
	op.s.pool.stats.pushedBack.Add(1)
}

// isNullReply reports whether reply is a null (a blocking command that
// timed out or was unblocked with TIMEOUT).
func isNullReply(reply []byte) bool {
	return bytes.Equal(reply, replyNullArray) || bytes.Equal(reply, replyNullBulk)
}

// peerGone reports whether the client has closed its connection (seen
// without reading: the session reader may be waiting for the block).
func (s *session) peerGone() bool {
	gone := false
	if err := s.raw.rc.Control(func(fd uintptr) { gone = peerClosed(fd) }); err != nil {
		return true
	}
	return gone
}

// cancelBlock cancels the session's blocking command, if one is running,
// for why; it reports whether there was one to cancel.
func (s *session) cancelBlock(why int32) bool {
	s.mu.Lock()
	op := s.block
	s.mu.Unlock()
	return op != nil && op.stop(why)
}

// waitUnblocked waits until the session's blocking command has been
// answered, or the session must stop (the client connection broke, the
// pool is shutting down). It reports whether the reader may go on.
func (s *session) waitUnblocked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.block != nil && !s.broken && !s.draining.Load() {
		s.cond.Wait()
	}
	return s.block == nil && !s.broken
}

// clientUnblock answers CLIENT UNBLOCK <id> [TIMEOUT|ERROR]: 1 if that
// client of the pool was blocked (its block is then cancelled), else 0.
func (rp *redisProtocol) clientUnblock(s *session, r *request, args [][]byte) {
	id, ok := resp.ParseInt(args[2])
	if !ok {
		s.replyError(r, "value is not an integer or out of range")
		return
	}
	why := cancelTimeout
	if len(args) == 4 {
		switch {
		case rediscmd.EqualFold(args[3], "timeout"):
		case rediscmd.EqualFold(args[3], "error"):
			why = cancelError
		default:
			s.replyError(r, "CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
			return
		}
	} else if len(args) > 4 {
		s.replyError(r, "syntax error")
		return
	}
	n := int64(0)
	for _, t := range rp.pool.sessionsByID() {
		if int64(t.id) == id && t.cancelBlock(why) {
			n = 1
		}
	}
	s.reply(r, resp.AppendInteger(r.reply[:0], n))
}
