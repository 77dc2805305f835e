package proxy

import (
	"bytes"

	"github.com/shardproxy/shardproxy/internal/resp"
)

// Scripts that a server does not have.
//
// A script is cached by each server separately, and a server forgets its
// scripts when it restarts or is flushed; a server added to a pool never
// had them. A client that loaded a script (SCRIPT LOAD, or EVAL once) then
// sends EVALSHA, and the server of its keys may answer -NOSCRIPT. The pool
// remembers the bodies of the scripts its clients sent (scriptCache), so
// for an EVALSHA whose script it knows, the proxy arms a retry: when the
// reply is -NOSCRIPT, SCRIPT LOAD <body> and the EVALSHA again are sent on
// the same server connection as one request, the SCRIPT LOAD reply is
// dropped (request.skip), and the client sees only the EVALSHA's second
// reply. A request is retried once; a -NOSCRIPT for a script the proxy
// never saw is relayed as it is.
//
// The retry is sent behind whatever that connection already carries. So
// that the script still runs before anything its client sent after it to
// that server, there is no retry when such a request is already queued
// there (a pipeline of EVALSHA then GET): the client gets the -NOSCRIPT
// and its library falls back to EVAL, as without the proxy. Inside MULTI
// there is no retry either: the transaction's EXEC reply is relayed as it
// is.

// scriptRetry is a request's armed retry. A request keeps it once made, so
// the steady path (armed, never used) allocates nothing.
type scriptRetry struct {
	// Set by the session reader before the request is queued; taken
	// (conn set to nil) by whoever completes the request first.
	conn *backendConn // the connection the EVALSHA went to; nil: not armed
	body string       // the script
	cmd  []byte       // the EVALSHA request as sent
}

var noScriptPrefix = []byte("-NOSCRIPT")

// scriptLoadHead is SCRIPT LOAD's array header and name; the body follows
// as a bulk string.
var scriptLoadHead = []byte("*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n")

// armRetry prepares r, an EVALSHA or EVALSHA_RO about to be queued on b with
// the bytes s.cur, to be retried if b's server answers -NOSCRIPT. It does
// nothing when the proxy does not know the script.
func (rp *redisProtocol) armRetry(s *session, r *request, b *backendConn, sha []byte) {
	body, ok := rp.scripts.body(sha)
	if !ok {
		return
	}
	if r.retry == nil {
		r.retry = new(scriptRetry)
	}
	rt := r.retry
	rt.conn, rt.body = b, body
	rt.cmd = append(rt.cmd[:0], s.cur...)
}

// retryNoScript is called with r's reply in r.reply, before r is marked
// done, when r has a retry armed. It disarms it, and if the reply is
// -NOSCRIPT sends the script and r again and reports true: r is not done,
// and its next reply (or the connection's failure) completes it.
func (r *request) retryNoScript() bool {
	rt := r.retry
	b := rt.conn
	rt.conn = nil
	if !bytes.HasPrefix(r.reply, noScriptPrefix) || !b.resend(r, rt.body, rt.cmd) {
		return false
	}
	// Not on this goroutine: it is a backend reader (or a failing
	// connection's), which must not wait on a write.
	go b.flush()
	return true
}

// holdRetry disarms r's retry when a later request of its client is among
// later: requests whose replies came in the same read burst as r's, which
// the backend reader completes after r (completeAll). They are no longer
// in the queue that resend looks at, but the server has run them, so the
// script must not run after them either.
func (r *request) holdRetry(later []*request) {
	rt := r.retry
	if rt == nil || rt.conn == nil {
		return
	}
	for _, l := range later {
		if l.sess == r.sess {
			rt.conn = nil
			return
		}
	}
}

// resend queues SCRIPT LOAD body and then cmd on b as request r, whose
// first reply (SCRIPT LOAD's) is dropped, and reports true; or, when a
// later request of r's client is queued on b, it queues nothing and
// reports false. It is enqueue for a request that is already on its way:
// the session's per-request state (when it was read, the command's family)
// was recorded the first time, and only the session reader may read the
// session, so it is left alone. An idle connection is dialled, as by
// enqueue; the caller flushes.
func (b *backendConn) resend(r *request, body string, cmd []byte) bool {
	b.mu.Lock()
	// The script must run before the requests its client sent after it
	// to the same server: a GET pipelined after an EVALSHA must see the
	// script's writes. Those requests are already on their way, so the
	// -NOSCRIPT goes to the client, whose library falls back to EVAL.
	q := &b.inflight
	for i := range q.n {
		if q.buf[(q.head+i)%len(q.buf)].sess == r.sess {
			b.mu.Unlock()
			return false
		}
	}
	// SCRIPT LOAD's reply is dropped; the request is answered by the
	// retried EVALSHA's. An allocation per retry, which is rare.
	load := resp.AppendBulkString(append([]byte(nil), scriptLoadHead...), body)
	r.skip = 1
	b.pushLocked(r, load, cmd, false)
	b.mu.Unlock()
	return true
}
