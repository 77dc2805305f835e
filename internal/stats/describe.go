// Package stats holds shardproxy's statistics: the snapshot a Source
// fills, nutcracker's JSON layout for the stats port, the stats server
// (raw JSON as nutcracker, plus HTTP with Prometheus metrics and the slow
// log on the same port), latency histograms and the slow log.
package stats

import (
	"fmt"
	"io"
)

// Kind says how a counter behaves, which decides its Prometheus type.
type Kind uint8

const (
	// Counter only grows (until the proxy restarts).
	Counter Kind = iota
	// Gauge goes up and down: connections, queue lengths.
	Gauge
	// Timestamp is a time in microseconds since the Unix epoch, 0 for
	// never.
	Timestamp
)

// Description names one counter and says what it counts.
type Description struct {
	Name string
	Desc string // nutcracker's text, quoted as is by -D
	Kind Kind
}

// PoolStats describes the per-pool counters, in nutcracker's order.
func PoolStats() []Description {
	return []Description{
		{"client_eof", "# eof on client connections", Counter},
		{"client_err", "# errors on client connections", Counter},
		{"client_connections", "# active client connections", Gauge},
		{"server_ejects", "# times backend server was ejected", Counter},
		{"forward_error", "# times we encountered a forwarding error", Counter},
		{"fragments", "# fragments created from a multi-vector request", Counter},
	}
}

// ServerStats describes the per-server counters, in nutcracker's order.
func ServerStats() []Description {
	return []Description{
		{"server_eof", "# eof on server connections", Counter},
		{"server_err", "# errors on server connections", Counter},
		{"server_timedout", "# timeouts on server connections", Counter},
		{"server_connections", "# active server connections", Gauge},
		{"server_ejected_at", "timestamp when server was ejected in usec since epoch", Timestamp},
		{"requests", "# requests", Counter},
		{"request_bytes", "total request bytes", Counter},
		{"responses", "# responses", Counter},
		{"response_bytes", "total response bytes", Counter},
		{"in_queue", "# requests in incoming queue", Gauge},
		{"in_queue_bytes", "current request bytes in incoming queue", Gauge},
		{"out_queue", "# requests in outgoing queue", Gauge},
		{"out_queue_bytes", "current request bytes in outgoing queue", Gauge},
	}
}

// PoolAdditions describes shardproxy's own per-pool counters, which the
// JSON writes after nutcracker's (PoolSnapshot.Extra), in this order.
func PoolAdditions() []Description {
	return []Description{
		{"noreply_errors", "# noreply requests that failed unseen by the client", Counter},
		{"client_refused", "# clients refused at accept (client_connections reached, out of file descriptors)", Counter},
		{"blocked_clients", "# clients blocked in BLPOP, BRPOP, XREAD BLOCK, … now (Redis pools)", Gauge},
		{"pushed_back", "# elements a cross-server blocking pop took and put back (another server answered first, or the client left)", Counter},
		{"pubsub_dropped", "# subscribers disconnected for leaving client_pubsub_limit bytes of messages unread", Counter},
	}
}

// ServerAdditions describes shardproxy's own per-server counters, which
// the JSON writes after nutcracker's (ServerSnapshot.Extra), in this order.
func ServerAdditions() []Description {
	return []Description{
		{"server_failover", "# times the server's address was switched by Sentinel", Counter},
	}
}

// ProxyAdditions describes shardproxy's own process-wide counters, which
// the JSON writes after curr_connections (Snapshot.Extra), in this order.
func ProxyAdditions() []Description {
	return []Description{
		{"reloads", "# configuration reloads applied (SIGUSR1)", Counter},
		{"reloads_failed", "# configuration reloads refused, the running configuration kept (invalid file, address not bound)", Counter},
	}
}

// Describe writes the stats descriptions as `nutcracker -D` does, after the
// version banner that the caller prints. shardproxy's additions follow
// nutcracker's lines in each section, in the same format, so a tool that
// reads nutcracker's lines reads them too and finds nutcracker's first and
// unchanged.
func Describe(w io.Writer) {
	fmt.Fprintf(w, "pool stats:\n")
	for _, d := range append(PoolStats(), PoolAdditions()...) {
		fmt.Fprintf(w, "  %-20s\"%s\"\n", d.Name, d.Desc)
	}
	fmt.Fprintf(w, "\nserver stats:\n")
	for _, d := range append(ServerStats(), ServerAdditions()...) {
		fmt.Fprintf(w, "  %-20s\"%s\"\n", d.Name, d.Desc)
	}
	fmt.Fprintf(w, "\nproxy stats:\n")
	for _, d := range ProxyAdditions() {
		fmt.Fprintf(w, "  %-20s\"%s\"\n", d.Name, d.Desc)
	}
}
