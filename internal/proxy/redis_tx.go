package proxy

import (
	"errors"
	"strings"

	"github.com/shardproxy/shardproxy/internal/rediscmd"
)

// A transaction (MULTI … EXEC) is queued by the proxy, not by a server:
// MULTI is answered +OK and each command +QUEUED once it is checked (name,
// arity, keys), and EXEC sends MULTI, the commands and EXEC to the one
// server the transaction's keys are on, in one block that no other
// client's request can enter, on the shared connection. The server's EXEC
// reply is relayed as it is (the array of results, per-command errors, or
// EXECABORT). A command that cannot be part of a single-server
// transaction (keys on another server than the transaction's, a command
// the proxy refuses, a wrong argument count) is answered with an error and
// marks the transaction failed: EXEC then answers EXECABORT and nothing of
// it reaches any server, as Redis does for an error at queue time.
//
// SCRIPT and FUNCTION management (SCRIPT LOAD, FUNCTION LOAD, …) is
// refused inside MULTI: it must reach every server. An EVALSHA inside MULTI
// is not retried on -NOSCRIPT (see redis_script.go): its error is part of
// the EXEC reply the server sends.

// maxTxBytes bounds the bytes a transaction may queue in the proxy (Redis's
// own bound is the client query buffer, 1 GB; a transaction is held here
// whole until EXEC, so the bound is smaller). Past it the transaction
// fails, and EXEC answers EXECABORT.
const maxTxBytes = 64 << 20

// maxTxCommands bounds the commands a transaction may queue.
const maxTxCommands = 1 << 20

var (
	replyQueued    = []byte("+QUEUED\r\n")
	replyExecAbort = []byte("-EXECABORT Transaction discarded because of previous errors.\r\n")
	cmdMulti       = []byte("*1\r\n$5\r\nMULTI\r\n")
	cmdExec        = []byte("*1\r\n$4\r\nEXEC\r\n")
)

// txState is a session's open transaction. Owned by the session reader.
type txState struct {
	block    []byte    // the queued commands, as sent to the server
	ends     []int     // where each command ends in block
	srvs     []*server // each command's server; nil for a command without keys
	srv      *server   // the server of the first key; nil until a key
	firstKey []byte    // a copy of that key
	failed   bool      // a command was refused: EXEC answers EXECABORT
}

func (tx *txState) reset() {
	if cap(tx.block) > maxKeptReply {
		tx.block = nil
	}
	tx.block = tx.block[:0]
	tx.ends = tx.ends[:0]
	clear(tx.srvs)
	tx.srvs = tx.srvs[:0]
	tx.srv, tx.failed = nil, false
	tx.firstKey = tx.firstKey[:0]
}

// command returns the bytes of the i-th queued command.
func (tx *txState) command(i int) []byte {
	start := 0
	if i > 0 {
		start = tx.ends[i-1]
	}
	return tx.block[start:tx.ends[i]]
}

// transaction answers MULTI, EXEC, DISCARD and UNWATCH outside a
// transaction. It reports whether cmd was one of them.
func (rp *redisProtocol) transaction(s *session, r *request, cmd *rediscmd.Command) bool {
	switch cmd.Name {
	case "multi":
		if s.tx == nil {
			s.tx = new(txState)
		}
		s.tx.reset()
		if s.watching {
			s.tx.srv = s.pinned.server // it runs where the watch is
		}
		s.inTx = true
		s.reply(r, replyOK)
	case "exec":
		s.replyError(r, "EXEC without MULTI")
	case "discard":
		s.replyError(r, "DISCARD without MULTI")
	case "unwatch":
		rp.unwatch(s, r)
	default:
		return false
	}
	return true
}

// queueTx handles a request inside MULTI: the transaction commands act at
// once, as in Redis; every other command is checked and queued.
func (rp *redisProtocol) queueTx(s *session, r *request, args [][]byte, cmd *rediscmd.Command, err error) {
	tx := s.tx
	if cmd != nil && cmd.Name == "watch" && (err == nil || errors.Is(err, rediscmd.ErrUnsupported)) {
		s.replyError(r, "WATCH inside MULTI is not allowed") // Redis's words; the transaction goes on
		return
	}
	if err == nil {
		switch cmd.Name {
		case "exec":
			rp.exec(s, r)
			return
		case "discard":
			s.inTx = false
			if s.watching {
				rp.unwatch(s, r) // DISCARD ends the watch too; UNWATCH answers +OK as DISCARD does
				return
			}
			s.reply(r, replyOK)
			return
		case "multi":
			s.replyError(r, "MULTI calls can not be nested") // the transaction goes on, as in Redis
			return
		case "quit", "reset":
			// Run at once, as in Redis: both end the transaction.
			s.inTx = false
			rp.local(s, r, cmd, args)
			return
		case "hello":
			tx.failed = true // unknown to the proxy, as to a Redis without RESP3
			rp.refuse(s, r, args, rediscmd.UnknownCommand(args))
			return
		case "auth", "select":
			err = errors.New("ERR " + cmd.Name + " inside MULTI is not supported through the proxy")
		}
		if strings.HasPrefix(cmd.Name, "client|") {
			// The proxy answers CLIENT itself, and a transaction runs
			// on a server: it would answer for (or change) its shared
			// connection instead of the client's.
			err = errors.New("ERR CLIENT inside MULTI is not supported through the proxy: the proxy answers CLIENT itself, and a transaction runs on a server")
		}
	}
	if err == nil && cmd.Kind == rediscmd.Unsupported {
		err = cmd.Err()
	}
	if err == nil && cmd.Kind == rediscmd.PubSub {
		// Redis queues them; a transaction runs on one server, and the
		// proxy's subscriptions and channel placement are outside it.
		err = errors.New("ERR '" + cmd.Name + "' inside MULTI is not supported through the proxy: pub/sub is served by the proxy's subscriber connections, outside any transaction")
	}
	if err == nil && cmd.Kind == rediscmd.Broadcast {
		// SCRIPT LOAD, FUNCTION LOAD, …: every server must get them, and a
		// transaction runs on one.
		err = errors.New("ERR '" + cmd.Name + "' inside MULTI is not supported through the proxy: it must reach every server, and a transaction runs on one")
	}
	var srv *server
	if err == nil {
		srv, err = rp.txServer(s, args, cmd)
	}
	if err == nil && (len(tx.block)+len(s.cur) > maxTxBytes || len(tx.ends) >= maxTxCommands) {
		err = errors.New("ERR transaction too large for the proxy to queue")
	}
	if err != nil {
		tx.failed = true
		rp.refuse(s, r, args, err)
		return
	}
	if cmd.Script == rediscmd.ScriptBody {
		rp.scripts.remember(args[cmd.FirstArg()])
	}
	tx.block = append(tx.block, s.cur...)
	tx.ends = append(tx.ends, len(tx.block))
	tx.srvs = append(tx.srvs, srv)
	s.reply(r, replyQueued)
}

// txServer returns the server of the command's keys, which must all be on
// one server, and, unless the pool splits transactions, on the
// transaction's server (fixed by its first key). It returns nil for a
// command without keys.
func (rp *redisProtocol) txServer(s *session, args [][]byte, cmd *rediscmd.Command) (*server, error) {
	keys, err := cmd.KeyIndexes(args, s.idxs[:0])
	s.idxs = keys
	if err != nil && rp.scriptsAnywhere && cmd.Script != rediscmd.NotScript && cmd.IsNoKeys(err) {
		// EVAL … 0 with script_no_keys: placeholder runs on the
		// transaction's server, like any keyless command.
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	tx := s.tx
	var cmdSrv *server
	for _, k := range keys {
		srv := rp.pool.pick(args[k])
		switch {
		case srv == nil:
			return nil, errors.New("ERR Connection refused")
		case tx.srv == nil:
			tx.srv = srv
			tx.firstKey = append(tx.firstKey[:0], args[k]...)
		case rp.pool.random:
			srv = tx.srv // each key would go to a random server: use the first key's
		}
		if cmdSrv == nil {
			cmdSrv = srv
		}
		if srv == cmdSrv && (srv == tx.srv || rp.pool.cfg.SplitTransactions) {
			continue
		}
		other := tx.srv
		if srv != cmdSrv {
			other = cmdSrv
		}
		return nil, errors.New("ERR key '" + printable(args[k]) + "' is on server " + srv.name +
			", but this transaction's keys are on " + other.name +
			": a transaction runs on one server; put its keys together with a hash tag, e.g. {user1}:a and {user1}:b")
	}
	return cmdSrv, nil
}

// exec ends the transaction: EXECABORT if a command was refused; else the
// whole block goes to its server and the server's EXEC reply is relayed,
// or, with split_transactions and keys on several servers, each server
// gets a MULTI/EXEC block of its commands, all sent together, and the
// results are merged back in the client's order.
func (rp *redisProtocol) exec(s *session, r *request) {
	tx := s.tx
	s.inTx = false
	var watched *server
	if s.watching {
		watched = s.pinned.server
		// EXEC ends the watch on the server, whatever the outcome. A
		// transaction the proxy discards never reaches the server, whose
		// watch then stays: that connection is closed, not reused.
		s.watching = false
		s.pinClean = !tx.failed
	}
	if tx.failed {
		s.reply(r, replyExecAbort)
		return
	}
	first := tx.srv
	if first == nil {
		// No key: any server will do.
		if first = rp.pool.pick([]byte(rediscmd.PlaceholderKey)); first == nil {
			s.noServer(r)
			return
		}
	}
	split := false
	for i, srv := range tx.srvs {
		switch {
		case srv == nil:
			tx.srvs[i] = first // a command without keys joins the first server
		case srv != first:
			split = true
		}
		if srv != nil && srv.isEjected() {
			// Its keys are elsewhere now, and so maybe not together.
			s.replyError(r, "EXECABORT the transaction's server "+srv.name+" left the ring; transaction discarded")
			return
		}
	}
	if !split {
		// The server answers MULTI +OK and each command +QUEUED before
		// EXEC's own reply: the backend drops those (skip) and completes
		// the request with the last.
		r.skip = len(tx.srvs) + 1
		s.scratch = append(append(append(s.scratch[:0], cmdMulti...), tx.block...), cmdExec...)
		s.sendScratch(first.connFor(s), r)
		return
	}
	if watched != nil {
		rp.execWatchedSplit(s, r, watched)
		return
	}
	// One fragment per server; the merge puts each EXEC's results back in
	// the client's order, and a server's error (EXECABORT, a broken
	// connection) is the reply.
	r.merge = mergeArray
	s.fanOut(r, tx.srvs, func(f *request, items []int32, buf []byte) []byte {
		f.skip = len(items) + 1
		buf = append(buf, cmdMulti...)
		for _, j := range items {
			buf = append(buf, tx.command(int(j))...)
		}
		return append(buf, cmdExec...)
	})
}

// A transaction under WATCH whose keys are on several servers (with
// split_transactions): the watch is on one server, the watched keys' (the
// client's dedicated connection), and it must guard the whole
// transaction. So the watched server's MULTI/EXEC block is sent first,
// alone; only once its EXEC has succeeded are the other servers' blocks
// sent (each atomic on its server, as split_transactions says). If the
// watched server's EXEC is null (a watched key changed) or an error,
// nothing else is sent and the client gets that reply: nothing of the
// transaction was applied anywhere. Meanwhile the session is blocked, as
// for a blocking command, so none of the client's later requests can
// overtake the blocks still held. RQ's job-success transaction (WATCH of
// the job's dependents key, then the job hash and the registries, on
// other servers) is the case that needs it.

// txHold is the blocks of such a transaction that wait for the watched
// server's EXEC.
type txHold struct {
	watched *server
	first   *request // the watched server's fragment
	frags   []*request
	conns   []*backendConn
	bufs    [][]byte
}

// keep holds fragment f for b with its bytes (copied: buf is reused).
func (h *txHold) keep(s *session, b *backendConn, f *request, buf []byte) {
	h.frags = append(h.frags, f)
	h.conns = append(h.conns, b)
	h.bufs = append(h.bufs, append([]byte(nil), buf...))
	s.sent += len(buf)
}

// execWatchedSplit runs a transaction under WATCH split over servers.
func (rp *redisProtocol) execWatchedSplit(s *session, r *request, watched *server) {
	tx := s.tx
	h := &txHold{watched: watched}
	r.hold = h
	r.merge = mergeWatchedTx
	s.blocked.Store(true)
	s.fanOut(r, tx.srvs, func(f *request, items []int32, buf []byte) []byte {
		f.skip = len(items) + 1
		buf = append(buf, cmdMulti...)
		for _, j := range items {
			buf = append(buf, tx.command(int(j))...)
		}
		return append(buf, cmdExec...)
	})
	if h.first == nil {
		// No command for the watched server: an empty MULTI/EXEC there
		// checks the watch. Nothing was sent yet, so the parent cannot
		// have been merged: the held fragments keep it open.
		f := s.newFragment(r)
		f.hold, h.first = h, f
		f.skip = 1
		s.scratch = append(append(s.scratch[:0], cmdMulti...), cmdExec...)
		s.sendScratch(watched.connFor(s), f)
	}
}

// release runs when the watched server's fragment first has its reply:
// the held blocks are sent if its EXEC succeeded (an array), else each is
// answered with that reply, unsent. It runs on the goroutine that
// completes first (a backend reader), while the session reader waits.
func (h *txHold) release(first *request) {
	first.hold = nil
	ok := len(first.reply) > 0 && first.reply[0] == '*' && !isNullReply(first.reply)
	for i, f := range h.frags {
		if !ok {
			f.reply = append(f.reply[:0], first.reply...)
			f.size = len(h.bufs[i]) // counted as answered, as it was as sent (keep)
			f.sess.complete(f)
			continue
		}
		f.start, f.family = first.start, first.family
		b := h.conns[i]
		b.mu.Lock()
		if b.dead {
			b.mu.Unlock()
			f.reply = b.server.pool().proto.appendError(f.reply[:0], errWatchLost.Error())
			f.size = len(h.bufs[i])
			f.sess.complete(f)
			continue
		}
		b.pushLocked(f, nil, h.bufs[i], false)
		b.mu.Unlock()
		b.flush()
	}
	h.frags, h.conns, h.bufs = nil, nil, nil
}

// mergeWatchedTx merges a transaction under WATCH split over servers:
// null when the watched server's EXEC was (a watched key changed), else
// as any split transaction.
func mergeWatchedTx(p *request, dst []byte) []byte {
	if f := p.hold.first; f != nil && isNullReply(f.reply) {
		return append(dst, replyNullArray...)
	}
	return mergeArray(p, dst)
}
