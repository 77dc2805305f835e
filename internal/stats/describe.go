// Package stats holds shardproxy's counters and their descriptions, in
// nutcracker's layout.
package stats

import (
	"fmt"
	"io"
)

// Description names one counter and says what it counts.
type Description struct {
	Name string
	Desc string
}

// PoolStats describes the per-pool counters, in nutcracker's order.
func PoolStats() []Description {
	return []Description{
		{"client_eof", "# eof on client connections"},
		{"client_err", "# errors on client connections"},
		{"client_connections", "# active client connections"},
		{"server_ejects", "# times backend server was ejected"},
		{"forward_error", "# times we encountered a forwarding error"},
		{"fragments", "# fragments created from a multi-vector request"},
	}
}

// ServerStats describes the per-server counters, in nutcracker's order.
func ServerStats() []Description {
	return []Description{
		{"server_eof", "# eof on server connections"},
		{"server_err", "# errors on server connections"},
		{"server_timedout", "# timeouts on server connections"},
		{"server_connections", "# active server connections"},
		{"server_ejected_at", "timestamp when server was ejected in usec since epoch"},
		{"requests", "# requests"},
		{"request_bytes", "total request bytes"},
		{"responses", "# responses"},
		{"response_bytes", "total response bytes"},
		{"in_queue", "# requests in incoming queue"},
		{"in_queue_bytes", "current request bytes in incoming queue"},
		{"out_queue", "# requests in outgoing queue"},
		{"out_queue_bytes", "current request bytes in outgoing queue"},
	}
}

// Describe writes the stats descriptions as `nutcracker -D` does, after the
// version banner that the caller prints.
func Describe(w io.Writer) {
	fmt.Fprintf(w, "pool stats:\n")
	for _, d := range PoolStats() {
		fmt.Fprintf(w, "  %-20s\"%s\"\n", d.Name, d.Desc)
	}
	fmt.Fprintf(w, "\nserver stats:\n")
	for _, d := range ServerStats() {
		fmt.Fprintf(w, "  %-20s\"%s\"\n", d.Name, d.Desc)
	}
}
