package stats

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Snapshot is every counter of the proxy at one moment: what the stats
// port serves as JSON and /metrics as Prometheus metrics.
type Snapshot struct {
	// Filled by the Server.
	Service   string // "nutcracker": monitoring tools key on it
	Source    string // the host name
	Version   string
	Uptime    int64 // seconds since the proxy started
	Timestamp int64 // seconds since the Unix epoch

	// Filled by the Source.
	TotalConnections int64 // connections ever accepted or opened, clients and servers
	CurrConnections  int64 // connections open now, clients and servers
	// Extra holds shardproxy's own process-wide counters, written after
	// curr_connections; see ProxyAdditions.
	Extra []Field
	Pools []PoolSnapshot
}

// PoolSnapshot is one pool's counters. The int64 fields are nutcracker's,
// in the order of its JSON.
type PoolSnapshot struct {
	Name              string
	ClientEOF         int64
	ClientErr         int64
	ClientConnections int64
	ServerEjects      int64
	ForwardError      int64
	Fragments         int64
	// Extra holds shardproxy's own pool counters, written after
	// nutcracker's; see PoolAdditions.
	Extra   []Field
	Servers []ServerSnapshot
	// Latency is the pool's request latency, for /metrics only; nil if
	// not measured.
	Latency *Histogram
	// Commands is the latency per command family, for /metrics only.
	Commands []CommandLatency
}

// ServerSnapshot is one server's counters. The int64 fields are
// nutcracker's, in the order of its JSON.
type ServerSnapshot struct {
	// Name is the server's ring name, the key nutcracker gives it: its
	// name from the configuration, else host:port (host alone for port
	// 11211).
	Name              string
	ServerEOF         int64
	ServerErr         int64
	ServerTimedout    int64
	ServerConnections int64
	ServerEjectedAt   int64 // microseconds since the Unix epoch; 0 if never ejected
	Requests          int64
	RequestBytes      int64
	Responses         int64
	ResponseBytes     int64
	InQueue           int64
	InQueueBytes      int64
	OutQueue          int64
	OutQueueBytes     int64
	// Extra holds shardproxy's own server counters, written after
	// nutcracker's; see ServerAdditions.
	Extra []Field
	// Latency is the server's latency, for /metrics only; nil if not
	// measured.
	Latency *Histogram
}

// counters returns pointers to p's nutcracker counters, in PoolStats
// order.
func (p *PoolSnapshot) counters() [6]*int64 {
	return [...]*int64{&p.ClientEOF, &p.ClientErr, &p.ClientConnections, &p.ServerEjects, &p.ForwardError, &p.Fragments}
}

// counters returns pointers to s's nutcracker counters, in ServerStats
// order.
func (s *ServerSnapshot) counters() [13]*int64 {
	return [...]*int64{&s.ServerEOF, &s.ServerErr, &s.ServerTimedout, &s.ServerConnections, &s.ServerEjectedAt,
		&s.Requests, &s.RequestBytes, &s.Responses, &s.ResponseBytes,
		&s.InQueue, &s.InQueueBytes, &s.OutQueue, &s.OutQueueBytes}
}

// Field is a named counter that nutcracker does not have. The value is a
// number so that tools reading the JSON, which take every object to be a
// pool or a server and every other value to be a count, keep working.
type Field struct {
	Name  string
	Value int64
}

// CommandLatency is the latency of one family of commands in a pool.
type CommandLatency struct {
	Family  string
	Latency *Histogram
}

// Source fills a Snapshot with the proxy's counters. Collect sets
// TotalConnections, CurrConnections, Extra and Pools, and leaves the rest alone.
// It must be cheap: it runs when the stats port or /metrics is read. A
// Server never calls it from two goroutines at once.
type Source interface {
	Collect(s *Snapshot)
}

// Sort puts the pools and each pool's servers in nutcracker's order: by
// name, shorter names first, then bytewise. nutcracker sorts both lists
// that way when it checks them for duplicate names (conf_validate_server,
// conf_post_validate) and its stats follow, so a configuration with pools
// "zeta" and "ab" shows "ab" first. Equal names keep their order.
func (s *Snapshot) Sort() {
	slices.SortStableFunc(s.Pools, func(a, b PoolSnapshot) int { return compareNames(a.Name, b.Name) })
	for i := range s.Pools {
		slices.SortStableFunc(s.Pools[i].Servers, func(a, b ServerSnapshot) int { return compareNames(a.Name, b.Name) })
	}
}

// compareNames is nutcracker's string_compare: length first, then bytes.
func compareNames(a, b string) int {
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}

// AppendJSON appends s in nutcracker 0.5.0's stats layout, byte for byte,
// in the order of s (see Sort):
//
//	{"service":"nutcracker", "source":"host", "version":"0.5.0", "uptime":5, "timestamp":1700000000, "total_connections":3, "curr_connections":2, "alpha": {"client_eof":0, …, "fragments":0, "s1": {"server_eof":0, …, "out_queue_bytes":0},"s2": {…}},"beta": {…}}
//
// followed by a newline. Every value is an integer; objects open with
// `": {`, members are separated by ", " but consecutive objects by ","
// alone. Extra fields follow nutcracker's in their pool or server.
//
// Two deliberate differences make the output valid JSON where
// nutcracker's is not: names are escaped (nutcracker prints a `"` or `\`
// in a name as is), and a snapshot without pools ends in `}` (nutcracker
// would print `"curr_connections":0,}`; it never runs without a pool).
func AppendJSON(dst []byte, s *Snapshot) []byte {
	// This follows nc_stats.c: every member is written followed by ", ",
	// and closing an object rewrites that separator (stats_end_nesting,
	// stats_add_footer). Hence "}," between objects.
	poolKeys, serverKeys := PoolStats(), ServerStats() // the keys, in the counters' order
	b := append(dst, '{')
	b = appendString(b, "service", s.Service)
	b = appendString(b, "source", s.Source)
	b = appendString(b, "version", s.Version)
	b = appendNum(b, "uptime", s.Uptime)
	b = appendNum(b, "timestamp", s.Timestamp)
	b = appendNum(b, "total_connections", s.TotalConnections)
	b = appendNum(b, "curr_connections", s.CurrConnections)
	b = appendFields(b, s.Extra)
	for i := range s.Pools {
		p := &s.Pools[i]
		b = appendKey(b, p.Name)
		b = append(b, " {"...)
		for k, v := range p.counters() {
			b = appendNum(b, poolKeys[k].Name, *v)
		}
		b = appendFields(b, p.Extra)
		for j := range p.Servers {
			sv := &p.Servers[j]
			b = appendKey(b, sv.Name)
			b = append(b, " {"...)
			for k, v := range sv.counters() {
				b = appendNum(b, serverKeys[k].Name, *v)
			}
			b = appendFields(b, sv.Extra)
			b = endObject(b)
		}
		b = endObject(b)
	}
	// stats_add_footer: the last byte (the "," after an object) becomes
	// the final "}".
	if len(s.Pools) == 0 {
		b = b[:len(b)-2] // drop the ", " after the last number
		b = append(b, '}')
	} else {
		b[len(b)-1] = '}'
	}
	return append(b, '\n')
}

// endObject closes the object being written as stats_end_nesting does:
// after a member, its trailing ", " becomes "},"; after an object, its
// trailing "," becomes "},". b always ends in one or the other.
func endObject(b []byte) []byte {
	n := len(b)
	if b[n-2] == ',' && b[n-1] == ' ' {
		b[n-2], b[n-1] = '}', ','
		return b
	}
	// After a nested object: "}," → "}},".
	b[n-1] = '}'
	return append(b, ',')
}

func appendFields(b []byte, fs []Field) []byte {
	for _, f := range fs {
		b = appendNum(b, f.Name, f.Value)
	}
	return b
}

// appendNum appends `"name":value, ` (stats_add_num).
func appendNum(b []byte, name string, v int64) []byte {
	b = appendKey(b, name)
	b = strconv.AppendInt(b, v, 10)
	return append(b, ", "...)
}

// appendString appends `"name":"value", ` (stats_add_string).
func appendString(b []byte, name, v string) []byte {
	b = appendKey(b, name)
	b = appendQuoted(b, v)
	return append(b, ", "...)
}

// appendKey appends `"name":`.
func appendKey(b []byte, name string) []byte {
	b = appendQuoted(b, name)
	return append(b, ':')
}

// appendQuoted appends s as a JSON string. Bytes other than `"`, `\` and
// control characters are copied as they are, as nutcracker copies the
// whole name, so UTF-8 names come out unchanged.
func appendQuoted(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}
