package proxy

import "github.com/shardproxy/shardproxy/internal/memcache"

// request is one client request on its way through the proxy, or one
// fragment of a multi-key request. A session owns its requests: they come
// from and return to the session's free list, so the steady state allocates
// nothing per request.
type request struct {
	// Set by the session reader before the request is queued; read-only
	// afterwards until the request is recycled.
	sess   *session
	parent *request // the multi-key request this fragment belongs to, or nil
	// merge says how the fragments' replies combine (parents only).
	merge mergeFunc

	// size is how many bytes were queued to the server for it (stats).
	size int
	// body is the part of the request lent to the backend rather than
	// copied (see backendConn.enqueue), or nil.
	body []byte
	// skip is how many replies the server sends before the request's own,
	// which the backend drops: a transaction's MULTI +OK and +QUEUEDs.
	skip int
	// For the latency histograms and the slow log (see session.now):
	// when the request was read, its Redis command family, and with the
	// slow log on, its command name and a copy of its first key.
	start   int64
	family  uint8
	cmdName string
	slowKey []byte

	// retry, once made, is kept for reuse: an EVALSHA sent again if its
	// server answers -NOSCRIPT (see redis_script.go). Armed by the
	// session reader when it queues the request.
	retry *scriptRetry

	// reply is written by whoever completes the request (a backend reader,
	// or the session reader for local replies) before marking it done.
	reply []byte

	// Guarded by sess.mu.
	done    bool
	push    bool       // published messages for a subscriber (redis_pubsub.go), no request of the client
	pending int        // fragments not yet answered (parents only)
	frags   []*request // the fragments, in creation order (parents only)
	// keyFrag[i] and keyPos[i] say which fragment holds the i-th key of the
	// original request and at which position (parents only).
	keyFrag []int32
	keyPos  []int32
	elems   [][]byte // scratch for splitting a fragment's array reply

	// Memcached: the command (the reply's shape depends on it), whether
	// the client must not see the reply (noreply, or what a meta q flag
	// hides: decided when the reply arrives), and for a split multi-get
	// the keys in the client's order (the client's buffer is reused by
	// then) and each fragment's progress through its VALUE blocks.
	mcCmd  memcache.Command
	quiet  bool
	silent bool
	keyBuf []byte
	keyEnd []int32
	cursor int
}

// maxKeptReply bounds the reply buffer a recycled request keeps, so one huge
// value does not pin memory for the life of the session.
const maxKeptReply = 64 << 10

func (r *request) reset() {
	r.parent = nil
	r.skip = 0
	r.merge = nil
	if cap(r.reply) > maxKeptReply {
		r.reply = nil
	}
	r.reply = r.reply[:0]
	if rt := r.retry; rt != nil {
		rt.conn, rt.body = nil, ""
		if cap(rt.cmd) > maxKeptReply {
			rt.cmd = nil
		}
		rt.cmd = rt.cmd[:0]
	}
	r.size, r.body = 0, nil
	r.done, r.push = false, false
	r.pending = 0
	r.frags = r.frags[:0]
	r.keyFrag = r.keyFrag[:0]
	r.keyPos = r.keyPos[:0]
	r.elems = r.elems[:0]
	r.mcCmd = 0
	r.quiet = false
	r.silent = false
	r.keyBuf = r.keyBuf[:0]
	r.keyEnd = r.keyEnd[:0]
	r.cursor = 0
}

// reqQueue is a FIFO of requests on a growable ring buffer.
type reqQueue struct {
	buf  []*request
	head int
	n    int
}

func (q *reqQueue) len() int { return q.n }

func (q *reqQueue) push(r *request) {
	if q.n == len(q.buf) {
		nb := make([]*request, max(16, 2*len(q.buf)))
		for i := 0; i < q.n; i++ {
			nb[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = nb, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = r
	q.n++
}

// pushFront puts r before every queued request.
func (q *reqQueue) pushFront(r *request) {
	if q.n == len(q.buf) {
		q.push(r) // grow
		q.n--
	}
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = r
	q.n++
}

func (q *reqQueue) peek() *request {
	if q.n == 0 {
		return nil
	}
	return q.buf[q.head]
}

// last returns the request queued last, or nil.
func (q *reqQueue) last() *request {
	if q.n == 0 {
		return nil
	}
	return q.buf[(q.head+q.n-1)%len(q.buf)]
}

func (q *reqQueue) pop() *request {
	if q.n == 0 {
		return nil
	}
	r := q.buf[q.head]
	q.buf[q.head] = nil
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return r
}
