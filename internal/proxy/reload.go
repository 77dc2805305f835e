package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
)

// Reload (SIGUSR1) applies a new configuration as a difference, all or
// nothing:
//
//   - Listeners are matched by address (ListenKey), not by pool name: an
//     address in both configurations keeps its socket, and its listener
//     hands new clients to the new pool at once. New addresses are bound
//     before anything changes; one bind failure and nothing changes.
//   - A pool's clients move to the pool that replaces it on the same
//     address (Pool.next) at their next request boundary (session.follow):
//     what they sent before is answered under the old configuration.
//     Clients in the middle of a transaction, a WATCH, a subscription or a
//     blocking command move once they are out of it.
//   - The clients of an address the new configuration drops, or whose
//     protocol it changes, are served for the grace period, then closed
//     at a request boundary; a dropped address refuses connects at once.
//   - A server with the same identity (serverKey) in both is kept: its
//     connections, counters and ejection state move to the new pool.
//     Other servers of the old pools are closed once their requests are
//     answered (retire).
//   - Key placement is what a fresh start with the new file gives, with
//     the servers that are ejected now still out of the ring.

// serverKey is what makes a server the same across a reload: everything
// its connections were set up with and its place on the ring depends on.
// A pool that changes any of it gets a new server (and connections).
type serverKey struct {
	redis    bool
	auth     string
	db       int
	conns    int
	sentinel bool // a Sentinel group (its address is its master's)
	name     string
	addr     string
	weight   int
}

func keyOf(pc *config.Pool, sc config.Server) serverKey {
	return serverKey{
		redis: pc.Redis, auth: pc.RedisAuth, db: pc.RedisDB, conns: max(1, pc.ServerConnections),
		sentinel: pc.Sentinel(), name: sc.RingName(), addr: sc.Address.Network + " " + sc.Address.String(), weight: sc.Weight,
	}
}

// ReloadStats are the reload counters the stats show.
func (px *Proxy) ReloadStats() (applied, failed uint64) {
	return px.opts.reloads.applied.Load(), px.opts.reloads.failed.Load()
}

// ReloadFailed counts a reload that did not get as far as Reload: the file
// could not be read or is invalid.
func (px *Proxy) ReloadFailed() { px.opts.reloads.failed.Add(1) }

// Reload replaces the running configuration with cfg (see the comment at
// the top of this file). On error nothing has changed.
func (px *Proxy) Reload(cfg *config.Config) error {
	px.reloadMu.Lock()
	defer px.reloadMu.Unlock()
	err := px.reload(cfg)
	if err != nil {
		px.opts.reloads.failed.Add(1)
		return err
	}
	px.opts.reloads.applied.Add(1)
	return nil
}

func (px *Proxy) reload(cfg *config.Config) error {
	px.mu.Lock()
	if !px.started || px.stopped {
		px.mu.Unlock()
		return errors.New("the proxy is not running")
	}
	old := slices.Clone(px.pools)
	listeners := make(map[string]*listener, len(px.listeners))
	for k, l := range px.listeners {
		listeners[k] = l
	}
	px.mu.Unlock()

	// Build the new pools, taking the servers that stay. Nothing running
	// is touched until every pool is built and every address bound.
	kept := make(map[serverKey]*server)
	for _, op := range old {
		for _, srv := range op.servers {
			if srv.pool() == op {
				kept[keyOf(op.cfg, srv.cfg)] = srv
			}
		}
	}
	pools := make([]*Pool, 0, len(cfg.Pools))
	for _, pc := range cfg.Pools {
		np, err := newPool(pc, px.opts, px.reserve, kept)
		if err != nil {
			return err
		}
		pools = append(pools, np)
	}
	fresh := make(map[string]*listener)
	for _, np := range pools {
		key := ListenKey(np.cfg.Listen)
		if listeners[key] != nil || fresh[key] != nil {
			continue
		}
		l, err := openListener(np.cfg.Listen, np.cfg.Backlog, nil)
		if err != nil {
			for _, l := range fresh {
				l.close(true)
			}
			return fmt.Errorf("pool %q: listen on %s: %w", np.cfg.Name, np.cfg.Listen, err)
		}
		fresh[key] = l
	}

	// Commit.
	prevAt := make(map[string]*Pool, len(old))
	for _, op := range old {
		prevAt[ListenKey(op.cfg.Listen)] = op
	}
	byName := make(map[string]*Pool, len(old))
	for _, op := range old {
		byName[op.cfg.Name] = op
	}
	px.mu.Lock()
	for _, op := range old {
		// What total_connections counted of what goes away.
		if !slices.ContainsFunc(pools, func(np *Pool) bool { return np.cfg.Name == op.cfg.Name && np.cfg.Redis == op.cfg.Redis }) {
			px.pastTotal += int64(op.stats.accepted.Load()) + 1
		}
		for _, srv := range op.servers {
			if srv.pool() == op && !slices.ContainsFunc(pools, func(np *Pool) bool { return slices.Contains(np.servers, srv) }) {
				px.pastTotal += int64(srv.stats.connects.Load())
			}
		}
	}
	for _, np := range pools {
		key := ListenKey(np.cfg.Listen)
		prev := prevAt[key]
		if op := byName[np.cfg.Name]; op != nil && op.cfg.Redis == np.cfg.Redis {
			np.stats.continueFrom(&op.stats) // same name, same counters
		}
		adopted := false
		for _, srv := range np.servers {
			if srv.pool() == np {
				continue
			}
			adopted = true
			srv.pl.Store(np)
			switch {
			case !np.ejects():
				srv.rejoin() // the new pool ejects no server
			case srv.isEjected():
				np.goBackground(srv.probeLoop) // the old pool's stops at its next tick
			}
		}
		if adopted && np.ejects() {
			np.rebuildRing() // an ejection or rejoin may have come since newPool
		}
		np.startAccepting(prev)
		l := listeners[key]
		if l == nil {
			l = fresh[key]
		} else {
			l.update(np.cfg.Listen, np.cfg.Backlog, np.logger)
		}
		px.attach(l, np)
		if prev != nil && prev.cfg.Redis == np.cfg.Redis {
			prev.next.Store(np)
		}
	}
	var dropped []*listener
	for key, l := range px.listeners {
		if prevAt[key] != nil && !slices.ContainsFunc(pools, func(np *Pool) bool { return ListenKey(np.cfg.Listen) == key }) {
			delete(px.listeners, key)
			dropped = append(dropped, l)
		}
	}
	px.pools = pools
	for _, op := range old {
		px.retired[op] = struct{}{}
	}
	px.mu.Unlock()

	for _, l := range dropped {
		l.close(true) // connects are refused from now on
	}
	for _, l := range fresh {
		l.serve()
	}
	for _, op := range old {
		go px.retire(op)
	}
	for _, np := range pools {
		np.logger.Info("pool configured by reload", "listen", np.cfg.Listen.String(), "servers", len(np.servers))
	}
	return nil
}

// update applies what a reload may change on a socket that stays: the
// backlog (listen(2) again sets it) and a unix socket's mode.
func (l *listener) update(addr config.Address, backlog int, logger *slog.Logger) {
	if backlog <= 0 {
		backlog = syscall.SOMAXCONN
	}
	if sc, ok := l.ln.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) {
				if err := syscall.Listen(int(fd), backlog); err != nil {
					logger.Warn("backlog not changed", "listen", addr.String(), "err", err)
				}
			})
		}
	}
	if addr.Network == "unix" && addr.Mode != 0 {
		if err := os.Chmod(addr.Path, addr.Mode); err != nil {
			logger.Warn("socket mode not changed", "listen", addr.String(), "err", err)
		}
	}
	l.addr = addr
}

// rejoin puts an ejected server back, as a pool that ejects nothing has it.
func (s *server) rejoin() {
	s.mu.Lock()
	s.ejected = false
	s.mu.Unlock()
	s.failures.Store(0)
}

// retirePoll is how often a replaced pool checks whether its clients have
// all moved on or left.
const retirePoll = 50 * time.Millisecond

// retireOwed bounds the wait for the requests a replaced pool's servers
// still owe before their connections are closed.
const retireOwed = 30 * time.Second

// retire winds down op, which a reload replaced: its clients move to the
// new pool (op.next) at their next request boundary, or, with no new pool
// for them, are closed at one after the grace period; once none is left
// and its servers have answered what they owe, its background work stops
// and the servers no new pool kept are closed.
func (px *Proxy) retire(op *Pool) {
	if op.next.Load() != nil {
		// Idle clients move now, not when they next send.
		op.mu.Lock()
		for s := range op.sessions {
			s.wakeToFollow()
		}
		op.mu.Unlock()
	} else {
		grace := time.NewTimer(px.opts.Grace)
		select {
		case <-grace.C:
		case <-op.done: // shutdown drains it
			grace.Stop()
		}
		op.mu.Lock()
		for s := range op.sessions {
			s.drain()
		}
		op.mu.Unlock()
	}
	tick := time.NewTicker(retirePoll)
	defer tick.Stop()
	for op.sessionCount() > 0 {
		select {
		case <-tick.C:
		case <-op.done:
			return // shutdown drains it
		}
	}
	owed := time.Now().Add(retireOwed)
	for time.Now().Before(owed) && op.serversOwe() {
		select {
		case <-tick.C:
		case <-op.done:
			return
		}
	}
	op.stopBackground()
	op.closeServers()
	px.mu.Lock()
	delete(px.retired, op)
	px.mu.Unlock()
	op.logger.Debug("replaced pool closed")
}

// continueFrom starts the counters at old's values: a reload that keeps a
// pool's name keeps its counters going. Gauges (blocked) are not copied:
// they count what is still on the old pool.
func (ps *poolStats) continueFrom(old *poolStats) {
	for _, c := range [][2]*atomic.Uint64{
		{&ps.accepted, &old.accepted}, {&ps.clientEOF, &old.clientEOF}, {&ps.clientErr, &old.clientErr},
		{&ps.refused, &old.refused}, {&ps.serverEjects, &old.serverEjects}, {&ps.forwardErrors, &old.forwardErrors},
		{&ps.fragments, &old.fragments}, {&ps.pubsubDropped, &old.pubsubDropped},
		{&ps.noreplyErrors, &old.noreplyErrors}, {&ps.pushedBack, &old.pushedBack},
	} {
		c[0].Store(c[1].Load())
	}
}

func (p *Pool) sessionCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sessions)
}

// serversOwe reports whether a server only p has (not kept by a reload)
// still has requests in flight.
func (p *Pool) serversOwe() bool {
	owe := false
	for _, srv := range p.ownServers() {
		srv.eachConn(func(b *backendConn) {
			b.mu.Lock()
			if b.inflight.len() > 0 {
				owe = true
			}
			b.mu.Unlock()
		})
	}
	return owe
}

// follow moves the session to the pool that replaced its own on the same
// listener, at a request boundary: the reader calls it before handling a
// read batch. A session in a transaction, a WATCH, a subscription or a
// blocking command stays until it is out of it; its old pool lives on for
// it meanwhile.
func (s *session) follow() {
	for {
		old := s.pool()
		next := old.next.Load()
		if next == nil || !s.movable() {
			return
		}
		next.mu.Lock()
		if next.closing {
			next.mu.Unlock()
			return
		}
		next.sessions[s] = struct{}{}
		next.active.Add(1)
		next.mu.Unlock()
		next.clients.Add(1)

		if s.db == old.cfg.RedisDB {
			s.db = next.cfg.RedisDB
			s.client.db.Store(int32(s.db))
		} else {
			next.useDB(s.db)
		}
		if old.cfg.RedisAuth != next.cfg.RedisAuth {
			s.authed = false // the new password is asked for
		}
		s.pl.Store(next)

		old.mu.Lock()
		delete(old.sessions, s)
		old.mu.Unlock()
		old.clients.Add(-1)
		old.active.Done()
	}
}

// movable reports whether the session holds nothing tied to its pool: no
// transaction being queued, no WATCH connection, no subscription, no
// blocking command.
func (s *session) movable() bool {
	if s.inTx || s.pinned != nil || s.watching || s.blocked.Load() {
		return false
	}
	if s.sub != nil && s.sub.total() > 0 {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A client that has unsubscribed may still wait for confirmations
	// from the old pool's subscriber connections.
	return s.block == nil && (s.sub == nil || s.queue.len() == 0)
}
