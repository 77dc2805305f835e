// Package proxy runs shardproxy's pools: listeners, client sessions, routing
// to backend servers.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
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

	started time.Time // set by New
	runID   string    // set by New: INFO's run_id, 40 random hex digits per process start
}

// Proxy is a set of pools built from one configuration.
type Proxy struct {
	opts    Options
	pools   []*Pool
	reserve *fdReserve // the spare descriptor the pools refuse clients with

	mu      sync.Mutex
	started bool
}

// New builds the pools of cfg without opening any socket.
func New(cfg *config.Config, opts Options) (*Proxy, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.BufSize <= 0 {
		opts.BufSize = 16384
	}
	opts.started = time.Now()
	opts.runID = newRunID()
	p := &Proxy{opts: opts, reserve: newFDReserve()}
	for _, pc := range cfg.Pools {
		pool, err := newPool(pc, opts, p.reserve)
		if err != nil {
			return nil, err
		}
		p.pools = append(p.pools, pool)
	}
	return p, nil
}

// Pools returns the pools, in configuration order.
func (p *Proxy) Pools() []*Pool { return p.pools }

// Start opens every pool's listener and starts accepting clients. If any
// listener cannot be opened, those already open are closed and the error
// names the pool and address.
func (p *Proxy) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("proxy already started")
	}
	if !p.reserve.fill() {
		p.opts.Logger.Warn("no spare file descriptor (" + os.DevNull + " cannot be opened): out of descriptors, clients will wait to be accepted instead of being refused at once")
	}
	for i, pool := range p.pools {
		if err := pool.listen(); err != nil {
			for _, opened := range p.pools[:i] {
				opened.closeListener()
			}
			p.reserve.release()
			return fmt.Errorf("pool %q: listen on %s: %w", pool.cfg.Name, pool.cfg.Listen, err)
		}
	}
	for _, pool := range p.pools {
		pool.startAccepting()
	}
	p.started = true
	return nil
}

// Shutdown stops accepting new clients, waits until every session has
// finished its in-flight requests or ctx is done, then closes what is left.
// It returns ctx's error when sessions had to be cut off.
func (p *Proxy) Shutdown(ctx context.Context) error {
	for _, pool := range p.pools {
		pool.closeListener()
	}
	p.reserve.release() // no accept loop is left to use it
	var err error
	for _, pool := range p.pools {
		if e := pool.drain(ctx); e != nil && err == nil {
			err = e
		}
	}
	return err
}
