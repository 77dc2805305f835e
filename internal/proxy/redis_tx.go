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
	block    []byte  // MULTI and the queued commands, as sent to the server
	n        int     // commands queued
	srv      *server // the server of the transaction's keys; nil until a key
	firstKey []byte  // a copy of the key that chose srv
	failed   bool    // a command was refused: EXEC answers EXECABORT
}

func (tx *txState) reset() {
	if cap(tx.block) > maxKeptReply {
		tx.block = nil
	}
	tx.block = append(tx.block[:0], cmdMulti...)
	tx.n, tx.srv, tx.failed = 0, nil, false
	tx.firstKey = tx.firstKey[:0]
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
		s.inTx = true
		s.reply(r, replyOK)
	case "exec":
		s.replyError(r, "EXEC without MULTI")
	case "discard":
		s.replyError(r, "DISCARD without MULTI")
	case "unwatch":
		s.reply(r, replyOK)
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
	if err == nil {
		err = rp.txServer(s, args, cmd)
	}
	if err == nil && (len(tx.block)+len(s.cur) > maxTxBytes || tx.n >= maxTxCommands) {
		err = errors.New("ERR transaction too large for the proxy to queue")
	}
	if err != nil {
		tx.failed = true
		rp.refuse(s, r, args, err)
		return
	}
	tx.block = append(tx.block, s.cur...)
	tx.n++
	s.reply(r, replyQueued)
}

// txServer checks that the command's keys are on the transaction's server,
// fixing that server at the first key.
func (rp *redisProtocol) txServer(s *session, args [][]byte, cmd *rediscmd.Command) error {
	keys, err := cmd.KeyIndexes(args, s.idxs[:0])
	s.idxs = keys
	if err != nil {
		return err
	}
	tx := s.tx
	for _, k := range keys {
		srv := rp.pool.pick(args[k])
		if srv == nil {
			return errors.New("ERR Connection refused")
		}
		if tx.srv == nil {
			tx.srv = srv
			tx.firstKey = append(tx.firstKey[:0], args[k]...)
			continue
		}
		if srv != tx.srv && !rp.pool.random {
			return errors.New("ERR key '" + printable(args[k]) + "' is on server " + srv.name +
				", but this transaction's keys are on " + tx.srv.name +
				": a transaction runs on one server; put its keys together with a hash tag, e.g. {user1}:a and {user1}:b")
		}
	}
	return nil
}

// exec ends the transaction: EXECABORT if a command was refused, else the
// whole block goes to its server and the server's EXEC reply is relayed.
func (rp *redisProtocol) exec(s *session, r *request) {
	tx := s.tx
	s.inTx = false
	if tx.failed {
		s.reply(r, replyExecAbort)
		return
	}
	key := tx.firstKey
	if tx.srv == nil {
		key = []byte(rediscmd.PlaceholderKey) // no key: any server will do
	}
	srv := rp.pool.pick(key)
	switch {
	case srv == nil:
		s.noServer(r)
		return
	case tx.srv != nil && srv != tx.srv:
		// The server left the ring (ejected) since the commands were
		// checked: its keys are elsewhere now, and so maybe not together.
		s.replyError(r, "EXECABORT the transaction's server "+tx.srv.name+" left the ring; transaction discarded")
		return
	}
	tx.block = append(tx.block, cmdExec...)
	// The server answers MULTI +OK and each command +QUEUED before EXEC's
	// own reply: the backend drops those and completes r with the last.
	r.skip = tx.n + 1
	b := srv.connFor(s)
	b.enqueue(r, tx.block)
	s.addDirty(b)
}
