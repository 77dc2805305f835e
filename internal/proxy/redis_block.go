package proxy

import (
	"bytes"
	"errors"
	"strconv"
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
	waitAll bool // WAIT: every live server (executeWait)

	cancel chan struct{} // closed by the one stop that cancels the block
	why    atomic.Int32
}

// stop cancels the block for why, unless it was cancelled already; it
// reports whether this call cancelled it.
func (op *blockOp) stop(why int32) bool {
	if !op.why.CompareAndSwap(notCancelled, why) {
		return false
	}
	close(op.cancel)
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
	op := rp.newBlockOp(s, r, cmd, args, timeout)
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
	s.startBlock(op)
}

// newBlockOp prepares the blocking request args of cmd: the goroutine that
// runs it gets a copy of the arguments, which point into the read buffer
// the reader reuses.
func (rp *redisProtocol) newBlockOp(s *session, r *request, cmd *rediscmd.Command, args [][]byte, timeout time.Duration) *blockOp {
	op := &blockOp{s: s, r: r, cmd: cmd, db: s.db, timeout: timeout, cancel: make(chan struct{})}
	op.margin = max(rp.pool.cfg.Timeout, time.Second)
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
	return op
}

// startBlock marks the session blocked (its reader dispatches nothing
// more until the reply) and runs op in a goroutine of its own.
func (s *session) startBlock(op *blockOp) {
	s.mu.Lock()
	s.block = op
	s.mu.Unlock()
	s.blocked.Store(true)
	s.pool().stats.blocked.Add(1)
	go op.run()
}

// run executes the block, answers the client, and lets the session read on.
func (op *blockOp) run() {
	s, r := op.s, op.r
	p := s.pool() // the session cannot follow a reload while blocked
	reply := op.execute()
	r.reply = append(r.reply[:0], reply...)
	s.complete(r)
	s.mu.Lock()
	s.block = nil
	s.blocked.Store(false)
	s.cond.Broadcast()
	s.mu.Unlock()
	p.stats.blocked.Add(-1)
	s.deliver()
}

// errorReply words an error for the client.
func (op *blockOp) errorReply(msg string) []byte {
	return resp.AppendError(nil, "ERR "+msg)
}

// execute runs the command and returns the client's reply.
func (op *blockOp) execute() []byte {
	p := op.s.pool()
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
	if op.waitAll {
		return op.executeWait(conns, clean)
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

// blockWaiter is the servers of one blocking request while their
// commands run: it sends them, collects their replies, and unblocks those
// that have not answered when asked to.
type blockWaiter struct {
	op       *blockOp
	conns    []*blockConn
	clean    []bool
	answered []bool
	pending  int
	results  chan blockResult

	unblockedAt time.Time
	retryTimer  *time.Timer
	retry       <-chan time.Time // fires while a server has yet to block
	peerCheck   *time.Ticker
	cancel      <-chan struct{} // the op's, until it fired
}

// startWaiter sends before[i] (one command, or nil) and cmds[i] to server
// i and reads the replies in a goroutine per server; cmds[i]'s reply is
// the server's result, through w.results (before[i]'s is dropped, unless
// it is an error, which is then the result).
func (op *blockOp) startWaiter(conns []*blockConn, clean []bool, cmds [][]byte, before [][]byte) *blockWaiter {
	n := len(conns)
	w := &blockWaiter{op: op, conns: conns, clean: clean, answered: make([]bool, n), pending: n,
		results: make(chan blockResult, n), peerCheck: time.NewTicker(time.Second), cancel: op.cancel}
	var deadline time.Time
	if op.timeout > 0 {
		deadline = time.Now().Add(op.timeout + op.margin)
	}
	for i, c := range conns {
		go func() {
			var reply []byte
			out := make([]byte, 0, len(before[i])+len(cmds[i]))
			out = append(append(out, before[i]...), cmds[i]...)
			err := c.write(out, deadline)
			if err == nil && before[i] != nil {
				reply, err = c.read(deadline)
				if err == nil && resp.IsError(reply) {
					err = errors.New(trimReply(reply))
				}
			}
			if err == nil {
				reply, err = c.read(deadline)
			}
			w.results <- blockResult{i: i, reply: reply, err: err}
		}()
	}
	return w
}

// next returns the next server's result, handling cancellation, the
// client leaving and unblock retries meanwhile; ok is false once every
// server has answered.
func (w *blockWaiter) next() (res blockResult, ok bool) {
	for w.pending > 0 {
		select {
		case res = <-w.results:
			w.pending--
			w.answered[res.i] = true
			if res.err != nil {
				w.clean[res.i] = false
			}
			return res, true
		case <-w.cancel:
			w.cancel = nil
			w.unblockRest()
		case <-w.retry:
			w.unblockRest()
		case <-w.peerCheck.C:
			if w.op.s.peerGone() {
				w.op.stop(cancelGone)
			}
		}
	}
	return res, false
}

// stop releases the waiter's timers.
func (w *blockWaiter) stop() {
	w.peerCheck.Stop()
	if w.retryTimer != nil {
		w.retryTimer.Stop()
	}
}

// unblockRest asks every server that has not answered to unblock, and
// arms the retry for those that had not blocked yet (CLIENT UNBLOCK
// answers 0 for a command the server has not read): each is asked again
// until it answers, or given up on (its connection closed) after
// unblockGiveUp.
func (w *blockWaiter) unblockRest() {
	op := w.op
	mode := "TIMEOUT"
	if op.why.Load() == cancelError {
		mode = "ERROR"
	}
	if w.unblockedAt.IsZero() {
		w.unblockedAt = time.Now()
	}
	again := false
	for i, c := range w.conns {
		if w.answered[i] {
			continue
		}
		ok, err := op.srvs[i].blk.unblock(op.srvs[i], c.id, mode, op.margin)
		if err != nil || !ok && time.Since(w.unblockedAt) > unblockGiveUp {
			// The server cannot be reached or never blocked: give up on
			// it; its reader fails as the connection closes.
			w.clean[i] = false
			c.conn.Close()
			continue
		}
		again = again || !ok
	}
	switch {
	case !again:
		w.retry = nil
	case w.retryTimer == nil:
		w.retryTimer = time.NewTimer(unblockRetry)
		w.retry = w.retryTimer.C
	default:
		w.retryTimer.Reset(unblockRetry)
		w.retry = w.retryTimer.C
	}
}

// failed counts a server's failed blocking connection and returns the
// client's error reply for it.
func (w *blockWaiter) failed(res blockResult) []byte {
	op := w.op
	err := w.conns[res.i].failure(res.err)
	op.s.pool().stats.forwardErrors.Add(1)
	if !errors.Is(err, errSwitched) {
		op.srvs[res.i].countFailure(err)
	}
	return op.errorReply(errorText(err))
}

// await sends the blocking command to every server and waits for the
// first element (or error), the end of the timeout on every server, or a
// cancellation.
func (op *blockOp) await(conns []*blockConn, clean []bool) []byte {
	n := len(conns)
	cmds := make([][]byte, n)
	for i := range conns {
		if n == 1 {
			cmds[i] = resp.AppendCommand(nil, op.args...)
			continue
		}
		var keys [][]byte
		for k, key := range op.keys {
			if op.keySrv[k] == i {
				keys = append(keys, key)
			}
		}
		cmds[i], _ = op.cmd.AppendBlockingWith(nil, op.args, keys)
	}
	w := op.startWaiter(conns, clean, cmds, make([][]byte, n))
	defer w.stop()
	var winner, null []byte
	winnerAt := -1
	for {
		res, ok := w.next()
		if !ok {
			break
		}
		switch {
		case res.err != nil:
			if winner == nil && op.why.Load() == notCancelled {
				winner, winnerAt = w.failed(res), -1
				w.unblockRest()
			}
		case isNullReply(res.reply) || bytes.Equal(res.reply, replyUnblocked):
			null = res.reply
		case winner == nil:
			winner, winnerAt = res.reply, res.i
			if resp.IsError(res.reply) {
				winnerAt = -1
			}
			if w.pending > 0 {
				w.unblockRest()
			}
		default:
			// Popped by a server that lost the race: put it back.
			op.pushBack(res.i, conns[res.i], &clean[res.i], res.reply)
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

// waitChannel is what WAIT publishes to on each server before its own
// WAIT: a PUBLISH is replicated, so it moves the blocking connection's
// replication offset to the server's current one, and the server's WAIT
// then waits for every write the server had run by then.
const waitChannel = "__shardproxy__:wait"

// waitReplicas answers WAIT numreplicas timeout. A client's writes went
// over connections the proxy shares, to any server, so a server's WAIT on
// the proxy's own connection would not wait for them: once every earlier
// request of the client has been answered, each live server gets, on a
// blocking connection, a PUBLISH (which is replicated, and so moves that
// connection's offset past every write the server has run) and then
// WAIT; the reply is the smallest count, the number of replicas that
// have every write of the client, whichever server it went to.
func (rp *redisProtocol) waitReplicas(s *session, r *request, cmd *rediscmd.Command, args [][]byte) {
	if _, ok := resp.ParseInt(args[1]); !ok {
		s.replyError(r, "value is not an integer or out of range")
		return
	}
	timeout, _, err := cmd.BlockTimeout(args)
	if err != nil {
		rp.refuse(s, r, args, err)
		return
	}
	op := rp.newBlockOp(s, r, cmd, args, timeout)
	op.srvs = rp.pool.liveServers(nil)
	if len(op.srvs) == 0 {
		s.noServer(r)
		return
	}
	op.waitAll = true
	s.startBlock(op)
}

// executeWait runs WAIT on every server (see waitReplicas).
func (op *blockOp) executeWait(conns []*blockConn, clean []bool) []byte {
	s := op.s
	s.mu.Lock()
	for s.queue.peek() != op.r && !s.broken && op.why.Load() == notCancelled {
		s.cond.Wait()
	}
	s.mu.Unlock()
	if op.why.Load() != notCancelled {
		return op.cancelledWait()
	}
	publish := resp.AppendCommand(nil, []byte("PUBLISH"), []byte(waitChannel), []byte("1"))
	wait := resp.AppendCommand(nil, op.args...)
	cmds, before := make([][]byte, len(conns)), make([][]byte, len(conns))
	for i := range conns {
		cmds[i], before[i] = wait, publish
	}
	w := op.startWaiter(conns, clean, cmds, before)
	defer w.stop()
	var reply []byte
	least := int64(-1)
	for {
		res, ok := w.next()
		if !ok {
			break
		}
		n, isInt := resp.ParseInteger(res.reply)
		switch {
		case res.err != nil:
			if reply == nil {
				reply = w.failed(res)
			}
		case !isInt:
			if reply == nil {
				reply = res.reply // the server's error
			}
		case least < 0 || n < least:
			least = n
		}
		if reply != nil && w.pending > 0 && w.cancel != nil {
			w.unblockRest()
		}
	}
	switch {
	case reply != nil:
		return reply
	case op.why.Load() == cancelShutdown:
		return op.cancelledWait()
	}
	return resp.AppendInteger(nil, least)
}

// cancelledWait is WAIT's reply when it was cancelled before it started.
func (op *blockOp) cancelledWait() []byte {
	if op.why.Load() == cancelShutdown {
		return op.errorReply("the proxy is shutting down: WAIT cancelled")
	}
	return resp.AppendInteger(nil, 0)
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
			op.s.pool().logger.Warn("cannot push back a popped element", "server", op.srvs[i].name, "err", err, "reply", trimReply(reply))
		}
		return
	}
	out, err := c.roundTrip(cmd, time.Now().Add(op.margin))
	if err == nil && resp.IsError(out) {
		err = errors.New(trimReply(out))
	}
	if err != nil {
		*clean = false
		op.s.pool().logger.Warn("push-back of a popped element failed: it is lost", "server", op.srvs[i].name, "err", err, "reply", trimReply(reply))
		return
	}
	op.s.pool().stats.pushedBack.Add(1)
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
	if op == nil || !op.stop(why) {
		return false
	}
	s.mu.Lock()
	s.cond.Broadcast() // a WAIT waiting for its turn (executeWait)
	s.mu.Unlock()
	return true
}

// waitUnblocked waits until the session is no longer blocked (its
// blocking command, or its transaction under WATCH split over servers,
// has been answered), or must stop (the client connection broke, the pool
// is shutting down). It reports whether the reader may go on.
func (s *session) waitUnblocked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.blocked.Load() && !s.broken && !s.draining.Load() {
		s.cond.Wait()
	}
	return !s.blocked.Load() && !s.broken
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
