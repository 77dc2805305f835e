package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/hashkit"
)

// Pool serves one configured pool: a listener, its client sessions, and the
// servers its keys are sharded over.
type Pool struct {
	// Immutable after newPool.
	cfg     *config.Pool
	opts    Options
	logger  *slog.Logger
	proto   protocol
	prelude [][]byte
	servers []*server
	random  bool       // distribution: random (each key anywhere)
	timing  bool       // measure latency (histograms, slow log)
	slowlog bool       // slowlog_slower_than is set: keep what the slow log needs
	bufs    sync.Pool  // read buffers of opts.BufSize bytes
	reserve *fdReserve // the process's spare descriptor, shared by every pool
	refusal []byte     // the reply to a client turned away

	// ring places keys on servers; an ejection publishes a new one.
	ring   atomic.Pointer[hashkit.Ring]
	ringMu sync.Mutex // serialises rebuilds

	// done is closed at shutdown: it stops the background work (ejected
	// servers' probes, Sentinel), counted in background.
	done       chan struct{}
	bgMu       sync.Mutex // orders goBackground against stopBackground
	bgStopped  bool
	background sync.WaitGroup
	watcherMu  sync.Mutex      // guards watcher, which a reload may hand to the next pool
	watcher    *sentinelFollow // Sentinel pools; set by startAccepting
	pubsub     *pubsubHub      // Redis pools: the subscriptions (pubsub_conn.go)

	refusals  refusalLog // clients refused for want of descriptors, logged at a rate limit
	overLimit refusalLog // clients refused over client_connections, likewise
	// refuseWarned is when the accept goroutine, which owns it, last warned
	// that it could not refuse clients (no spare descriptor, accept failed).
	refuseWarned time.Time

	clients  atomic.Int64 // current client connections, for client_connections
	stats    poolStats
	sessionN atomic.Uint64
	// clock is a coarse monotonic clock (monoNow, updated every
	// halfClosedSweep): CLIENT LIST's idle times when latency is not
	// measured, without a clock read per request.
	clock atomic.Int64

	dbMu sync.Mutex   // guards dbs
	dbs  map[int]bool // the databases clients selected besides redis_db (useDB)

	// next is the pool a reload put on this pool's listener in its place
	// (same address and protocol): the sessions move to it at their next
	// request boundary (session.follow). Nil while the pool is current,
	// and for a pool whose address or protocol a reload dropped.
	next atomic.Pointer[Pool]

	mu       sync.Mutex // guards the fields below
	lis      *listener  // where clients come from, once started
	sessions map[*session]struct{}
	closing  bool
	active   sync.WaitGroup // sessions
}

// newPool builds the pool of cfg. kept holds the servers of the pools a
// reload replaces, by identity: a server found there is taken (removed
// from the map) instead of a new one, with its connections, counters and
// ejection state; it moves to the new pool when the reload commits.
func newPool(cfg *config.Pool, opts Options, reserve *fdReserve, kept map[serverKey]*server) (*Pool, error) {
	p := &Pool{
		cfg:      cfg,
		opts:     opts,
		reserve:  reserve,
		logger:   opts.Logger.With("pool", cfg.Name),
		sessions: make(map[*session]struct{}),
		done:     make(chan struct{}),
	}
	p.refusals.logger, p.refusals.msg = p.logger, "clients refused: out of file descriptors"
	p.overLimit.logger, p.overLimit.msg = p.logger, "clients refused: client_connections reached"
	p.clock.Store(monoNow())
	size := opts.BufSize
	p.bufs.New = func() any { b := make([]byte, size); return &b }
	if cfg.Redis {
		p.pubsub = newPubsubHub(p)
		p.proto = newRedisProtocol(p)
	} else {
		p.proto = newMemcacheProtocol(p)
	}
	p.prelude = p.proto.prelude(cfg.RedisDB)
	// Redis's own words when it is over maxclients: redis-py turns exactly
	// this reply into a ConnectionError, which its retry logic handles.
	p.refusal = p.proto.appendError(nil, "max number of clients reached")
	p.slowlog = cfg.SlowlogSlowerThan >= 0 && opts.SlowLog != nil
	p.timing = !opts.NoLatency || p.slowlog

	hash, ok := hashkit.HashByName(cfg.Hash)
	if !ok {
		return nil, fmt.Errorf("pool %q: unknown hash %q", cfg.Name, cfg.Hash)
	}
	dist, ok := hashkit.ParseDistribution(cfg.Distribution)
	if !ok {
		return nil, fmt.Errorf("pool %q: unknown distribution %q", cfg.Name, cfg.Distribution)
	}
	p.random = dist == hashkit.Random
	serverCfgs := cfg.Servers
	if cfg.Sentinel() {
		serverCfgs = groupServers(cfg.Groups)
	}
	nodes := make([]hashkit.Node, 0, len(serverCfgs))
	var live []bool // nil: every server in the ring
	for i, sc := range serverCfgs {
		key := keyOf(cfg, sc)
		srv := kept[key]
		if srv != nil {
			delete(kept, key)
			if srv.isEjected() && p.ejects() {
				// Placement as a fresh start would give, with the
				// servers that are out still out.
				if live == nil {
					live = make([]bool, len(serverCfgs))
					for j := range i {
						live[j] = true
					}
				}
			} else if live != nil {
				live[i] = true
			}
		} else {
			srv = newServer(p, sc)
			if cfg.Sentinel() {
				srv.addr.Store(nil) // unknown until Sentinel names the master
			}
			if live != nil {
				live[i] = true
			}
		}
		p.servers = append(p.servers, srv)
		nodes = append(nodes, hashkit.Node{Name: srv.name, Weight: sc.Weight})
	}
	if len(nodes) > 0 {
		ring, err := hashkit.NewRing(hashkit.Spec{Hash: hash, Distribution: dist, HashTag: cfg.HashTag, Rand: rand.Uint32}, nodes, live)
		if err != nil {
			return nil, fmt.Errorf("pool %q: %w", cfg.Name, err)
		}
		p.ring.Store(ring)
	}
	return p, nil
}

// poolStats are the pool's counters that have no nutcracker equivalent yet;
// the stats server (a later issue) publishes them beside nutcracker's.
type poolStats struct {
	accepted      atomic.Uint64 // client connections accepted (total_connections)
	clientEOF     atomic.Uint64 // clients that closed their connection
	clientErr     atomic.Uint64 // client connections that ended in an error
	refused       atomic.Uint64 // clients closed at accept: client_connections, out of descriptors
	serverEjects  atomic.Uint64 // servers ejected from the ring
	forwardErrors atomic.Uint64 // requests answered with an error because no server could take them
	fragments     atomic.Uint64 // fragments made by splitting multi-key requests
	pubsubDropped atomic.Uint64 // subscribers disconnected at client_pubsub_limit
	// noreplyErrors counts Memcached requests sent with noreply that
	// failed unseen by the client: an error reply from the server, or a
	// connection failure, refusal or timeout.
	noreplyErrors atomic.Uint64
	// Blocking commands (Redis pools): clients blocked now, and elements
	// popped for a block that lost the race (or whose client left) and
	// pushed back.
	blocked    atomic.Int64
	pushedBack atomic.Uint64
}

// NoreplyErrors returns how many noreply requests failed silently.
func (p *Pool) NoreplyErrors() uint64 { return p.stats.noreplyErrors.Load() }

// Name returns the pool's name from the configuration.
func (p *Pool) Name() string { return p.cfg.Name }

// Addr returns the address the pool listens on, once started.
func (p *Pool) Addr() net.Addr {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.lis == nil {
		return nil
	}
	return p.lis.ln.Addr()
}

// getBuf and putBuf lend read buffers of opts.BufSize bytes. They deal in
// *[]byte, the pointer sync.Pool holds: putting a fresh &slice back would
// allocate a slice header on every call.
func (p *Pool) getBuf() *[]byte  { return p.bufs.Get().(*[]byte) }
func (p *Pool) putBuf(b *[]byte) { p.bufs.Put(b) }

// pick returns the server for key, or nil when no server is live.
func (p *Pool) pick(key []byte) *server {
	ring := p.ring.Load()
	if ring == nil {
		return nil
	}
	i := ring.Pick(key)
	if i < 0 {
		return nil
	}
	return p.servers[i]
}

// startAccepting starts the pool's background work: Sentinel (the watcher
// of prev, the pool a reload replaces, when its settings are the same),
// preconnect, the timeout sweep. Its listener then hands it clients.
func (p *Pool) startAccepting(prev *Pool) {
	if p.cfg.Sentinel() && (prev == nil || !p.adoptWatcher(prev)) {
		if err := p.startSentinel(); err != nil {
			// Config validation rules out what New refuses.
			p.logger.Error("sentinel not started", "err", err)
		}
	}
	if p.cfg.Preconnect {
		for _, srv := range p.servers {
			for _, c := range srv.conns {
				c.preconnect()
			}
		}
	}
	if p.cfg.Timeout > 0 {
		p.goBackground(p.sweepLoop)
	}
	if p.cfg.Sentinel() && p.cfg.AutoEjectHosts {
		p.logger.Warn("auto_eject_hosts is ignored in Sentinel mode: Sentinel replaces a failing master, and ejecting a group would move its keys")
	}
	p.goBackground(p.halfClosedLoop)
	p.logger.Info("pool listening", "listen", p.cfg.Listen.String(), "redis", p.cfg.Redis, "servers", len(p.servers))
}

// sessionEarlyPeeks is how many of a client's first short reads are
// followed by a peek for a half-close (see rawConn.readLoop).
const sessionEarlyPeeks = 4

// halfClosedSweep is how often idle clients are checked for a half-close
// that raised no event.
const halfClosedSweep = time.Second

// halfClosedLoop wakes the sessions of clients that half-closed after
// their early bursts, so they get their end of stream (and their
// connection closed, as nutcracker closes it) within halfClosedSweep. One
// peek per client per sweep: 5,000 idle clients cost 5,000 system calls a
// second, nothing per request.
func (p *Pool) halfClosedLoop() {
	t := time.NewTicker(halfClosedSweep)
	defer t.Stop()
	var batch []*session
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.clock.Store(monoNow())
		p.mu.Lock()
		for s := range p.sessions {
			batch = append(batch, s)
		}
		p.mu.Unlock()
		for i, s := range batch {
			if s.raw.wakeIfHalfClosed() {
				p.logger.Debug("client half-closed", "client", s.conn.RemoteAddr().String())
			}
			batch[i] = nil
		}
		batch = batch[:0]
		// A server that closed right after its last complete reply, with
		// requests still waiting: the same missing event.
		for _, srv := range p.ownServers() {
			srv.eachConn((*backendConn).wakeIfClosed)
		}
	}
}

// sweepTicks is how many sweeps make one timeout: a request times out
// between timeout and timeout*(1+1/sweepTicks) after it was sent (the
// issue asked for within 1.1 ×; a sweep costs a lock per server
// connection, nothing per request). Below 16 ms of timeout the sweep runs
// every millisecond and fewer sweeps make a timeout.
const sweepTicks = 16

// sweepEvery returns the interval of the timeout sweep for timeout, and
// how many sweeps without progress make a timeout.
func sweepEvery(timeout time.Duration) (time.Duration, int) {
	every := max(timeout/sweepTicks, time.Millisecond)
	return every, max(int(timeout/every), 1)
}

func (p *Pool) sweepLoop() {
	every, ticks := sweepEvery(p.cfg.Timeout)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		// A server a reload moved to another pool is that pool's to
		// sweep: two sweeps would halve its timeout.
		for _, srv := range p.ownServers() {
			srv.eachConn(func(c *backendConn) { c.sweep(ticks) })
		}
	}
}

// stopAdmitting turns away the clients the listener still hands over:
// the pool is shutting down.
func (p *Pool) stopAdmitting() {
	p.mu.Lock()
	p.closing = true
	p.mu.Unlock()
}

// spareRetry is how soon accepting is tried again when the process is out
// of file descriptors and has no spare to refuse clients with.
const spareRetry = 20 * time.Millisecond

// refuseClients handles accept's EMFILE or ENFILE (cause): it refuses the
// client waiting in the listener's queue with the spare descriptor, or,
// when none waits, waits until one arrives: accept would fail at once
// again, and there is nobody to serve. No client is left in the kernel's
// queue for more than spareRetry, and a client that arrives once
// descriptors are free again is served at once. It returns false when the
// listener is closed.
func (p *Pool) refuseClients(rc syscall.RawConn, cause error) bool {
	res, err := p.reserve.refuse(rc, p.refusal)
	switch {
	case errors.Is(err, net.ErrClosed):
		return false
	case err != nil:
		p.warnRefuseFailed("accept failed", err)
		time.Sleep(spareRetry)
	case res == refusedOne:
		p.stats.accepted.Add(1) // total_connections, as at client_connections
		p.stats.refused.Add(1)
		p.refusals.add(cause)
	case res == queueEmpty:
		waitAcceptable(rc)
	default: // noSpare
		p.warnRefuseFailed("out of file descriptors, with no spare to refuse clients with: they wait", cause)
		time.Sleep(spareRetry)
	}
	return true
}

// warnRefuseFailed logs msg, at most once each refusalLogEvery.
func (p *Pool) warnRefuseFailed(msg string, err error) {
	if now := time.Now(); now.Sub(p.refuseWarned) >= refusalLogEvery {
		p.refuseWarned = now
		p.logger.Warn(msg, "err", err, "retry_in", spareRetry)
	}
}

// admit starts a session for conn, or turns it away when the pool is at
// client_connections (twemproxy parses that key but never enforces it).
func (p *Pool) admit(conn net.Conn) {
	p.stats.accepted.Add(1)
	n := p.clients.Add(1)
	if limit := p.cfg.ClientConnections; limit > 0 && n > int64(limit) {
		p.clients.Add(-1)
		p.stats.refused.Add(1)
		p.overLimit.add(fmt.Errorf("client_connections %d reached; the latest refused: %s", limit, conn.RemoteAddr()))
		_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = conn.Write(p.refusal)
		conn.Close()
		return
	}
	s, err := newSession(p, conn, p.sessionN.Add(1))
	if err != nil {
		p.clients.Add(-1)
		p.logger.Warn("client refused", "client", conn.RemoteAddr().String(), "err", err)
		conn.Close()
		return
	}
	s.client.created = monoNow()
	s.client.active.Store(s.client.created)
	p.mu.Lock()
	if p.closing {
		p.mu.Unlock()
		p.clients.Add(-1)
		conn.Close()
		return
	}
	p.sessions[s] = struct{}{}
	p.active.Add(1)
	p.mu.Unlock()

	// Logged here, not in the session's goroutine: slog's call depth would
	// grow that goroutine's stack past 2 KiB for the life of the connection.
	client := conn.RemoteAddr().String()
	p.logger.Info("client connected", "client", client)
	go func() {
		defer func() {
			// The pool the session ends in: a reload may have moved it.
			p := s.pool()
			p.mu.Lock()
			delete(p.sessions, s)
			p.mu.Unlock()
			p.clients.Add(-1)
			p.active.Done()
		}()
		err := s.serve()
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, errKilled) {
			p.stats.clientEOF.Add(1)
		} else {
			p.stats.clientErr.Add(1)
		}
		p.logger.Info("client closed", "client", client, "err", err)
	}()
}

// drain stops the pool's sessions at their next request boundary and waits
// until their requests are answered, or closes them when ctx is done. Then
// it closes the server connections.
func (p *Pool) drain(ctx context.Context) error {
	p.mu.Lock()
	for s := range p.sessions {
		s.drain()
	}
	p.mu.Unlock()
	done := make(chan struct{})
	go func() {
		p.active.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		p.mu.Lock()
		for s := range p.sessions {
			s.abort()
		}
		p.mu.Unlock()
		// Fail what the servers still owe, so every session can finish;
		// the process is about to exit, so do not wait long for them.
		p.closeServers()
		select {
		case <-done:
		case <-time.After(time.Second):
		}
		err = ctx.Err()
	}
	p.stopBackground()
	p.closeServers()
	return err
}

// stopBackground stops the probes and waits for them.
func (p *Pool) stopBackground() {
	p.bgMu.Lock()
	if !p.bgStopped {
		p.bgStopped = true
		close(p.done)
	}
	p.bgMu.Unlock()
	if w := p.takeWatcher(); w != nil {
		w.Close()
	}
	p.background.Wait()
	p.refusals.stop()
	p.overLimit.stop()
}

// goBackground runs f in a goroutine that stopBackground waits for, unless
// the pool is already stopping (WaitGroup.Add must not race with Wait).
func (p *Pool) goBackground(f func()) bool {
	p.bgMu.Lock()
	defer p.bgMu.Unlock()
	if p.bgStopped {
		return false
	}
	p.background.Add(1)
	go func() {
		defer p.background.Done()
		f()
	}()
	return true
}

// isClosing reports whether the pool is shutting down: failures then are
// the shutdown's, not the servers'.
func (p *Pool) isClosing() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ownServers returns the pool's servers that a reload has not moved to a
// newer pool (all of them while the pool is current).
func (p *Pool) ownServers() []*server {
	own := p.servers
	for i, srv := range p.servers {
		if srv.pool() != p {
			own = slices.Clone(p.servers[:i])
			for _, srv := range p.servers[i+1:] {
				if srv.pool() == p {
					own = append(own, srv)
				}
			}
			break
		}
	}
	return own
}

func (p *Pool) closeServers() {
	for _, srv := range p.ownServers() {
		srv.eachConn((*backendConn).close)
		srv.blk.close()
	}
	if p.pubsub != nil {
		p.pubsub.releaseAll() // no (P|S)SUBSCRIBE waits for a server any more
	}
}
