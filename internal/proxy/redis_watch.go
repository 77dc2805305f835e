package proxy

import (
	"errors"

	"github.com/shardproxy/shardproxy/internal/rediscmd"
)

// WATCH needs a server connection of the client's own: a watch belongs to
// the connection that set it, and the shared connections carry every
// client's requests. So WATCH pins the client to a dedicated connection to
// the watched keys' server (every watched key on that one server), and
// every request of the client for that server goes there until the watch
// ends: EXEC (which runs there), DISCARD or UNWATCH (sent there as
// UNWATCH), RESET, or the client leaving. Then, once the connection has
// answered everything the client sent on it, it goes back to a small
// per-server pool of idle dedicated connections — only in a known clean
// state (no watch left, the pool's default database); any other is
// closed. A dedicated connection is never redialled: a watch cannot
// survive a new connection, so if it fails, the client's next requests on
// it get an error saying the watch was lost.

// maxDedicated bounds the dedicated connections open to one server (in
// use or idle); maxIdleDedicated how many of them are kept idle.
const (
	maxDedicated     = 256
	maxIdleDedicated = 8
)

var cmdUnwatch = []byte("*1\r\n$7\r\nUNWATCH\r\n")

// errWatchLost answers a request on a dedicated connection that failed.
var errWatchLost = errors.New("the server connection holding this client's WATCH was lost, and the watch with it; run WATCH again")

// watch answers WATCH: it pins the client to a dedicated connection to the
// server of the keys and sends the WATCH there.
func (rp *redisProtocol) watch(s *session, r *request, cmd *rediscmd.Command, args [][]byte) {
	keys, err := cmd.KeyIndexes(args, s.idxs[:0])
	s.idxs = keys
	if err != nil {
		rp.refuse(s, r, args, err)
		return
	}
	var srv *server
	if s.pinned != nil {
		srv = s.pinned.server
	}
	for _, k := range keys {
		ks := rp.pool.pick(args[k])
		switch {
		case ks == nil:
			s.noServer(r)
			return
		case srv == nil:
			srv = ks
		case ks != srv && !rp.pool.random:
			s.replyError(r, "WATCH: key '"+printable(args[k])+"' is on server "+ks.name+", but this client watches keys on "+
				srv.name+": the keys of a transaction with WATCH must be on one server; put them together with a hash tag")
			return
		}
	}
	if s.pinned == nil {
		b := srv.acquireDedicated(s.db)
		if b == nil {
			s.replyError(r, "WATCH: "+srv.name+" already has the most dedicated connections the proxy opens to a server")
			return
		}
		s.pinned = b
	}
	s.watching, s.pinClean = true, false
	s.sendCur(s.pinned, r)
}

// unwatch answers UNWATCH, and DISCARD of a transaction under WATCH, whose
// reply (+OK) is UNWATCH's: the watch ends on the server.
func (rp *redisProtocol) unwatch(s *session, r *request) {
	if s.pinned == nil {
		s.reply(r, replyOK) // nothing watched
		return
	}
	s.watching = false
	s.pinClean = true
	s.send(s.pinned, r, nil, cmdUnwatch)
}

// maybeUnpin gives the dedicated connection back once the watch is over
// and the connection has answered everything the client sent on it (until
// then the client's requests for that server keep going there, in order).
func (s *session) maybeUnpin() {
	if s.pinned == nil || s.watching || !s.pinned.idle() {
		return
	}
	s.pinned.server.releaseDedicated(s.pinned, s.pinClean)
	s.pinned = nil
}

// unpinAtEnd releases the dedicated connection of a session that ends:
// every request has been answered by then.
func (s *session) unpinAtEnd() {
	if s.pinned != nil {
		s.pinned.server.releaseDedicated(s.pinned, s.pinClean && !s.watching)
		s.pinned = nil
	}
}

// acquireDedicated returns a dedicated connection to the server for
// database db: an idle clean one, or a new one (dialled on first use); nil
// when the server has maxDedicated already.
func (s *server) acquireDedicated(db int) *backendConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.idleDed) - 1; i >= 0; i-- {
		if b := s.idleDed[i]; b.db == db {
			s.idleDed = append(s.idleDed[:i], s.idleDed[i+1:]...)
			return b
		}
	}
	if len(s.dedicated) >= maxDedicated {
		return nil
	}
	b := s.newConns(db)[0]
	b.dedicated = true
	if s.dedicated == nil {
		s.dedicated = make(map[*backendConn]struct{})
	}
	s.dedicated[b] = struct{}{}
	return b
}

// releaseDedicated takes back a dedicated connection with nothing in
// flight: kept idle if clean (no watch left, still connected, the pool's
// database), else closed.
func (s *server) releaseDedicated(b *backendConn, clean bool) {
	keep := clean && b.db == s.pool().cfg.RedisDB && b.reusable()
	s.mu.Lock()
	if keep && len(s.idleDed) < maxIdleDedicated {
		s.idleDed = append(s.idleDed, b)
		s.mu.Unlock()
		return
	}
	delete(s.dedicated, b)
	s.mu.Unlock()
	b.close()
}

// idle reports whether the connection has nothing queued or in flight.
func (b *backendConn) idle() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inflight.len() == 0
}

// reusable reports whether a dedicated connection can serve another client:
// connected, never failed.
func (b *backendConn) reusable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.dead && b.state == stateConnected
}
