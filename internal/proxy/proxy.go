// Package proxy runs shardproxy's pools: listeners, client sessions, routing
// to backend servers.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/stats"
)

// Options are the process-wide settings the pools share.
type Options struct {
	Logger  *slog.Logger
	BufSize int    // I/O buffer size in bytes (-m, nutcracker's mbuf size)
	Version string // shardproxy's version, for INFO and stats
	// SlowLog receives the requests slower than their pool's
	// slowlog_slower_than; nil keeps no slow log.
	SlowLog *stats.SlowLog
	// NoLatency turns off latency measurement (histograms), which is the
	// only per-request cost of the stats besides plain increments: for
	// measuring that cost (make bench). The slow log still measures.
	NoLatency bool
	// Inherited are listening sockets handed over by the process this one
	// replaces (a binary upgrade), keyed by ListenKey. Start adopts those
	// whose address a pool listens on and closes the others.
	Inherited map[string]*os.File
	// Grace is how long the clients of a listen address that a reload
	// removed are still served before they are closed at a request
	// boundary; 0 means DefaultGrace.
	Grace time.Duration

	started time.Time       // set by New
	runID   string          // set by New: INFO's run_id, 40 random hex digits per process start
	reloads *reloadCounters // set by New: the process's, which INFO shows in every pool
}

// reloadCounters count configuration reloads (the stats' reloads and
// reloads_failed).
type reloadCounters struct {
	applied, failed atomic.Uint64
}

// DefaultGrace is Options.Grace's default.
const DefaultGrace = 3 * time.Second

// Proxy is a set of pools built from one configuration, and the listeners
// their clients come from. Reload replaces the pools.
type Proxy struct {
	opts    Options
	reserve *fdReserve // the spare descriptor the pools refuse clients with

	reloadMu sync.Mutex // serialises Start, Reload and Shutdown's view of the pools

	mu        sync.Mutex // guards the fields below
	pools     []*Pool
	listeners map[string]*listener // by ListenKey
	retired   map[*Pool]struct{}   // pools a reload replaced that still have clients or requests
	started   bool
	stopped   bool
	// pastTotal is what total_connections counted of pools and servers
	// that reloads removed, so that it never goes down.
	pastTotal int64
}

// New builds the pools of cfg without opening any socket.
func New(cfg *config.Config, opts Options) (*Proxy, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BufSize <= 0 {
		opts.BufSize = 16384
	}
	if opts.Grace <= 0 {
		opts.Grace = DefaultGrace
	}
	opts.started = time.Now()
	opts.runID = newRunID()
	opts.reloads = new(reloadCounters)
	p := &Proxy{opts: opts, reserve: newFDReserve(), listeners: make(map[string]*listener), retired: make(map[*Pool]struct{})}
	for _, pc := range cfg.Pools {
		pool, err := newPool(pc, opts, p.reserve, nil)
		if err != nil {
			return nil, err
		}
		p.pools = append(p.pools, pool)
	}
	return p, nil
}

// Pools returns the current pools, in configuration order.
func (px *Proxy) Pools() []*Pool {
	px.mu.Lock()
	defer px.mu.Unlock()
	return slices.Clone(px.pools)
}

// Start opens every pool's listener and starts accepting clients. If any
// listener cannot be opened, those already open are closed and the error
// names the pool and address. Inherited sockets no pool uses are closed.
func (px *Proxy) Start() error {
	px.reloadMu.Lock()
	defer px.reloadMu.Unlock()
	px.mu.Lock()
	defer px.mu.Unlock()
	if px.started {
		return errors.New("proxy already started")
	}
	if !px.reserve.fill() {
		px.opts.Logger.Warn("no spare file descriptor (" + os.DevNull + " cannot be opened): out of descriptors, clients will wait to be accepted instead of being refused at once")
	}
	opened := make([]*listener, 0, len(px.pools))
	for _, pool := range px.pools {
		l, err := openListener(pool.cfg.Listen, pool.cfg.Backlog, px.opts.Inherited)
		if err != nil {
			for _, l := range opened {
				// A handed-over unix socket's path stays: the process
				// that handed it over goes on serving it.
				l.close(!l.inherited)
			}
			px.reserve.release()
			return fmt.Errorf("pool %q: listen on %s: %w", pool.cfg.Name, pool.cfg.Listen, err)
		}
		opened = append(opened, l)
	}
	px.closeInherited()
	for i, pool := range px.pools {
		px.attach(opened[i], pool)
		pool.startAccepting(nil)
	}
	for _, l := range opened {
		l.serve()
	}
	px.started = true
	return nil
}

// attach makes l the listener of pool. px.mu must be held.
func (px *Proxy) attach(l *listener, pool *Pool) {
	l.pool.Store(pool)
	pool.mu.Lock()
	pool.lis = l
	pool.mu.Unlock()
	px.listeners[l.key] = l
}

// closeInherited closes the handed-over sockets no pool took.
func (px *Proxy) closeInherited() {
	for key, f := range px.opts.Inherited {
		px.opts.Logger.Info("inherited listener not used by the configuration: closed", "listen", key)
		f.Close()
		delete(px.opts.Inherited, key)
	}
}

// ListenerFiles returns a duplicate descriptor of every listening socket,
// keyed by ListenKey: what a binary upgrade hands to the new process.
// The caller closes them.
func (px *Proxy) ListenerFiles() (map[string]*os.File, error) {
	px.mu.Lock()
	defer px.mu.Unlock()
	files := make(map[string]*os.File, len(px.listeners))
	for key, l := range px.listeners {
		f, err := l.file()
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, err
		}
		files[key] = f
	}
	return files, nil
}

// StopAccepting closes every listener, leaving unix socket paths in place:
// a new process has taken the sockets over (binary upgrade). The clients
// already connected are served until Shutdown.
func (px *Proxy) StopAccepting() {
	px.mu.Lock()
	ls := make([]*listener, 0, len(px.listeners))
	for _, l := range px.listeners {
		ls = append(ls, l)
	}
	px.mu.Unlock()
	for _, l := range ls {
		l.close(false)
	}
}

// Clients returns how many clients are connected to every pool, retired
// ones included.
func (px *Proxy) Clients() int64 {
	px.mu.Lock()
	defer px.mu.Unlock()
	var n int64
	for _, p := range px.pools {
		n += p.clients.Load()
	}
	for p := range px.retired {
		n += p.clients.Load()
	}
	return n
}

// Shutdown stops accepting new clients, waits until every session has
// finished its in-flight requests or ctx is done, then closes what is left.
// It returns ctx's error when sessions had to be cut off.
func (px *Proxy) Shutdown(ctx context.Context) error {
	px.reloadMu.Lock()
	defer px.reloadMu.Unlock()
	px.mu.Lock()
	px.stopped = true
	ls := make([]*listener, 0, len(px.listeners))
	for _, l := range px.listeners {
		ls = append(ls, l)
	}
	pools := slices.Clone(px.pools)
	for p := range px.retired {
		pools = append(pools, p)
	}
	px.mu.Unlock()
	for _, l := range ls {
		l.close(true)
	}
	px.reserve.release() // no accept loop is left to use it
	for _, pool := range pools {
		pool.stopAdmitting()
	}
	var err error
	for _, pool := range pools {
		if e := pool.drain(ctx); e != nil && err == nil {
			err = e
		}
	}
	return err
}
