package proxy

import (
	"slices"

	"github.com/shardproxy/shardproxy/internal/rediscmd"
	"github.com/shardproxy/shardproxy/internal/stats"
)

// Collect fills s with every pool's and server's counters: the proxy is
// the stats server's Source. It reads atomics and takes each backend
// connection's mutex briefly; nothing on the request path waits for it
// longer than for another request.
func (px *Proxy) Collect(s *stats.Snapshot) {
	var total, curr int64
	s.Pools = s.Pools[:0]
	applied, failed := px.ReloadStats()
	s.Extra = append(s.Extra[:0],
		stats.Field{Name: "reloads", Value: int64(applied)},
		stats.Field{Name: "reloads_failed", Value: int64(failed)})
	px.mu.Lock()
	pools := slices.Clone(px.pools)
	total = px.pastTotal
	for p := range px.retired {
		curr += p.clients.Load() // clients a reload has not moved yet
	}
	px.mu.Unlock()
	for _, p := range pools {
		ps := p.collect()
		s.Pools = append(s.Pools, ps)
		total += int64(p.stats.accepted.Load()) + 1 // clients and the listener
		curr += ps.ClientConnections + 1
		for _, srv := range p.servers {
			total += int64(srv.stats.connects.Load())
		}
		for i := range ps.Servers {
			curr += ps.Servers[i].ServerConnections
		}
	}
	s.TotalConnections, s.CurrConnections = total, curr
}

func (p *Pool) collect() stats.PoolSnapshot {
	ps := stats.PoolSnapshot{
		Name:              p.cfg.Name,
		ClientEOF:         int64(p.stats.clientEOF.Load()),
		ClientErr:         int64(p.stats.clientErr.Load()),
		ClientConnections: p.clients.Load(),
		ServerEjects:      int64(p.stats.serverEjects.Load()),
		ForwardError:      int64(p.stats.forwardErrors.Load()),
		Fragments:         int64(p.stats.fragments.Load()),
	}
	if !p.cfg.Redis {
		ps.Extra = append(ps.Extra, stats.Field{Name: "noreply_errors", Value: int64(p.stats.noreplyErrors.Load())})
	}
	ps.Extra = append(ps.Extra, stats.Field{Name: "client_refused", Value: int64(p.stats.refused.Load())})
	if p.cfg.Redis {
		ps.Extra = append(ps.Extra,
			stats.Field{Name: "blocked_clients", Value: p.stats.blocked.Load()},
			stats.Field{Name: "pushed_back", Value: int64(p.stats.pushedBack.Load())})
		ps.Extra = append(ps.Extra, stats.Field{Name: "pubsub_dropped", Value: int64(p.stats.pubsubDropped.Load())})
	}
	var families *[rediscmd.NumFamilies]stats.Histogram
	if p.cfg.Redis && p.timing {
		families = new([rediscmd.NumFamilies]stats.Histogram)
	}
	if p.timing {
		ps.Latency = new(stats.Histogram)
	}
	for _, srv := range p.servers {
		ss := srv.collect(families)
		if ps.Latency != nil {
			ps.Latency.Merge(ss.Latency)
		}
		ps.Servers = append(ps.Servers, ss)
	}
	if families != nil {
		for f := range families {
			h := &families[f]
			if snap := h.Snapshot(); snap.Count() > 0 {
				ps.Commands = append(ps.Commands, stats.CommandLatency{Family: rediscmd.Family(f).String(), Latency: h})
			}
		}
	}
	return ps
}

// collect sums the server's connections' counters; it adds their family
// latencies into families when that is not nil.
func (s *server) collect(families *[rediscmd.NumFamilies]stats.Histogram) stats.ServerSnapshot {
	ss := stats.ServerSnapshot{
		Name:            s.name,
		ServerEOF:       int64(s.stats.eof.Load()),
		ServerErr:       int64(s.stats.err.Load()),
		ServerTimedout:  int64(s.stats.timedOut.Load()),
		ServerEjectedAt: s.stats.ejectedAt.Load(),
	}
	if s.pool().timing {
		ss.Latency = new(stats.Histogram)
	}
	s.eachConn(func(b *backendConn) {
		b.mu.Lock()
		c := b.counts
		connected := b.state == stateConnected
		b.mu.Unlock()
		if connected {
			ss.ServerConnections++
		}
		ss.Requests += int64(c.requests)
		ss.RequestBytes += int64(c.requestBytes)
		ss.Responses += int64(c.responses)
		ss.ResponseBytes += int64(c.responseBytes)
		ss.InQueue += c.inQueue
		ss.InQueueBytes += c.inQueueBytes
		ss.OutQueue += c.outQueue
		ss.OutQueueBytes += c.outQueueBytes
		if ss.Latency != nil {
			ss.Latency.Merge(&b.latency)
			if b.famLatency != nil {
				for f := range b.famLatency {
					ss.Latency.Merge(&b.famLatency[f])
				}
			}
		}
		if families != nil && b.famLatency != nil {
			for f := range families {
				families[f].Merge(&b.famLatency[f])
			}
		}
	})
	if s.pool().cfg.Sentinel() {
		ss.Extra = append(ss.Extra, stats.Field{Name: "server_failover", Value: int64(s.stats.failovers.Load())})
	}
	return ss
}
