package proxy

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/sentinel"
)

// Sentinel mode (twemproxy-163's groups: and sentinels:): each group is a
// server on the ring, named after the group with weight 1, so placement
// depends on the group names only and never moves on a failover. The
// address behind a group is its master, which Sentinel names and switches.

// groupServers makes the ring servers of a Sentinel pool: one per group,
// sorted by name as twemproxy-163 sorts them.
func groupServers(groups []string) []config.Server {
	sorted := slices.Clone(groups)
	slices.Sort(sorted)
	out := make([]config.Server, 0, len(sorted))
	for _, g := range sorted {
		out = append(out, config.Server{Name: g, Weight: 1, Address: config.Address{Network: "tcp"}})
	}
	return out
}

// serverNamed returns the pool's server called name (a group), or nil.
func (p *Pool) serverNamed(name string) *server {
	for _, s := range p.servers {
		if s.name == name {
			return s
		}
	}
	return nil
}

// setMaster points group's server at addr ("host:port"). The first address
// makes the group servable; a different one is a failover: connections to
// the old master are closed, their requests answered with an error, and
// the next requests dial the new master.
func (p *Pool) setMaster(group, addr, reason, via string) {
	srv := p.serverNamed(group)
	if srv == nil {
		return
	}
	host, portText, err := net.SplitHostPort(addr)
	port, perr := strconv.Atoi(portText)
	if err != nil || perr != nil {
		p.logger.Warn("sentinel gave a bad master address", "server", group, "addr", addr, "sentinel", via)
		return
	}
	a := &config.Address{Network: "tcp", Host: host, Port: port}
	old := srv.addr.Swap(a)
	// The watcher logs discoveries and switches at info level.
	switch {
	case old == nil:
		p.logger.Debug("group served", "server", group, "addr", addr)
	case *old == *a:
		return
	default:
		srv.stats.failovers.Add(1)
		srv.eachConn(func(b *backendConn) { b.closeWith(errSwitched) })
		srv.blk.reset(errSwitched)
		if p.pubsub != nil {
			p.pubsub.switched(srv) // subscriptions move to the new master
		}
		p.logger.Debug("connections to the old master closed", "server", group, "from", old.String(), "to", addr,
			"reason", reason, "sentinel", via)
	}
}

// sentinelFollow is a pool's Sentinel watcher and the pool its events
// go to: a reload that leaves the pool's Sentinel settings as they were
// hands the watcher to the new pool (adoptWatcher), so unchanged groups
// keep following their masters without a new discovery.
type sentinelFollow struct {
	w      *sentinel.Watcher
	key    string // sentinelKey of the settings it was started with
	target atomic.Pointer[Pool]
}

// sentinelKey sums up the settings a watcher is started with.
func sentinelKey(pc *config.Pool) string {
	return fmt.Sprintf("%q %v %v %v %q %v", pc.Name, pc.Sentinels, pc.Groups, pc.SentinelHeartbeat, pc.RedisAuth, pc.Timeout)
}

// startSentinel starts following the pool's groups through Sentinel.
func (p *Pool) startSentinel() error {
	timeout := p.cfg.Timeout
	if timeout <= 0 {
		timeout = sentinel.DefaultTimeout
	}
	f := &sentinelFollow{key: sentinelKey(p.cfg)}
	f.target.Store(p)
	w, err := sentinel.New(sentinel.Config{
		Pool:        p.cfg.Name,
		Sentinels:   p.cfg.Sentinels,
		Groups:      p.cfg.Groups,
		Heartbeat:   p.cfg.SentinelHeartbeat,
		Auth:        p.cfg.RedisAuth,
		DialTimeout: timeout,
		Logger:      p.opts.Logger,
	}, func(e sentinel.Event) {
		f.target.Load().setMaster(e.Group, e.Addr, e.Reason, e.Sentinel)
	})
	if err != nil {
		return err
	}
	f.w = w
	p.watcherMu.Lock()
	p.watcher = f
	p.watcherMu.Unlock()
	w.Start()
	return nil
}

// takeWatcher removes the pool's watcher and returns it (nil if none).
func (p *Pool) takeWatcher() *sentinel.Watcher {
	p.watcherMu.Lock()
	defer p.watcherMu.Unlock()
	f := p.watcher
	p.watcher = nil
	if f == nil {
		return nil
	}
	return f.w
}

// adoptWatcher takes over old's watcher when it was started with the
// settings p has: its events come to p from now on. It reports whether it
// did; if not, p starts a watcher of its own.
func (p *Pool) adoptWatcher(old *Pool) bool {
	old.watcherMu.Lock()
	f := old.watcher
	if f == nil || f.key != sentinelKey(p.cfg) {
		old.watcherMu.Unlock()
		return false
	}
	old.watcher = nil
	old.watcherMu.Unlock()
	f.target.Store(p)
	p.watcherMu.Lock()
	p.watcher = f
	p.watcherMu.Unlock()
	return true
}
