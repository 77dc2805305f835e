package proxy

import (
	"time"
	"unsafe"

	"github.com/shardproxy/shardproxy/internal/rediscmd"
	"github.com/shardproxy/shardproxy/internal/stats"
)

// noFamily marks a request without a Redis command family (Memcached).
const noFamily = 0xff

// clockBase anchors monoNow: time.Since on a time with a monotonic reading
// reads only the monotonic clock.
var clockBase = time.Now()

// monoNow returns monotonic nanoseconds. The session reads it once per read
// burst and the backend reader once per reply burst, not per request.
func monoNow() int64 { return int64(time.Since(clockBase)) }

// observe records the latency of one answered request (read from the
// client to reply parsed) and, when it is slow enough, a slow log entry.
//
// One histogram per request: a Redis request's family histogram, which the
// stats add up into the server's; the connection's own for the rest.
func (b *backendConn) observe(r *request, lat time.Duration) {
	if b.famLatency != nil && int(r.family) < rediscmd.NumFamilies {
		b.famLatency[r.family].Observe(lat)
	} else {
		b.latency.Observe(lat)
	}
	p := b.server.pool()
	if p.slowlog && lat >= p.cfg.SlowlogSlowerThan {
		p.opts.SlowLog.Add(stats.SlowEntry{
			Time:    time.Now().Add(-lat),
			Pool:    p.cfg.Name,
			Server:  b.server.name,
			Command: r.cmdName,
			Key:     unsafe.String(unsafe.SliceData(r.slowKey), len(r.slowKey)), // Add copies it
			Latency: lat,
		})
	}
}
