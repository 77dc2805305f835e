package stats

import (
	"runtime"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Prometheus metric names follow one rule from the JSON keys, so that each
// metric can be found from its key and back (docs/stats.md lists them):
//
//	shardproxy_<level>_<key>[_total | _seconds]
//
// (shardproxy_<key>[_total] for the process's own counters, such as
// reloads), where level is pool or server, a server key loses its own "server_"
// prefix (server_eof → shardproxy_server_eof_total), counters end in
// _total, gauges have no suffix, and timestamps (server_ejected_at, in
// microseconds in the JSON) become seconds with the suffix _seconds.
const namespace = "shardproxy"

// metricDesc is the Prometheus form of one counter of a level.
type metricDesc struct {
	desc  *prometheus.Desc
	kind  Kind
	valid bool // false for an Extra field named like no description
}

// newMetricDesc names d's metric by the rule above.
func newMetricDesc(level string, d Description, labels []string) metricDesc {
	name := sanitizeName(strings.TrimPrefix(d.Name, level+"_"))
	fq := namespace + "_" + level + "_" + name
	if level == "" { // the process's own: shardproxy_<key>
		fq = namespace + "_" + name
	}
	switch d.Kind {
	case Counter:
		fq += "_total"
	case Timestamp:
		fq += "_seconds"
	}
	// nutcracker's "#" means "number of".
	help := d.Desc
	if rest, ok := strings.CutPrefix(help, "# "); ok {
		help = "Number of " + rest
	} else if help != "" {
		help = strings.ToUpper(help[:1]) + help[1:]
	}
	if d.Kind == Timestamp {
		help = strings.Replace(help, "in usec", "in seconds", 1)
	}
	help += " (stats port key " + d.Name + ")."
	return metricDesc{desc: prometheus.NewDesc(fq, help, labels, nil), kind: d.Kind, valid: true}
}

// sanitizeName replaces what a Prometheus metric name cannot hold with _.
func sanitizeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// collector exports a Source's counters at scrape time, fresh rather than
// an interval old. It is an unchecked collector (Describe sends nothing):
// its metrics depend on the pools and on the Extra fields the Source
// reports.
type collector struct {
	// Label names, the same for every metric of a level.
	poolLabels, serverLabels, commandLabels []string

	// Immutable after newCollector.
	collect func(*Snapshot)
	slow    *SlowLog
	pool    []metricDesc // for PoolSnapshot's fields, in PoolStats order
	server  []metricDesc // for ServerSnapshot's fields, in ServerStats order

	conns, connsTotal                  *prometheus.Desc
	poolLatency, serverLatency, cmdLat *prometheus.Desc
	slowAdded                          *prometheus.Desc

	mu    sync.Mutex
	extra map[string]metricDesc // guarded by mu; level + " " + name → desc
}

func newCollector(collect func(*Snapshot), slow *SlowLog) *collector {
	poolLabels := []string{"pool"}
	serverLabels := []string{"pool", "server"}
	c := &collector{
		poolLabels:    poolLabels,
		serverLabels:  serverLabels,
		commandLabels: []string{"pool", "family"},
		collect:       collect,
		slow:          slow,
		extra:         make(map[string]metricDesc),
		conns: prometheus.NewDesc(namespace+"_connections",
			"Connections open now, clients and servers (stats port key curr_connections).", nil, nil),
		connsTotal: prometheus.NewDesc(namespace+"_connections_total",
			"Connections ever opened or accepted, clients and servers (stats port key total_connections).", nil, nil),
		poolLatency: prometheus.NewDesc(namespace+"_pool_request_duration_seconds",
			"Time from reading a request to having its reply, per pool.", poolLabels, nil),
		serverLatency: prometheus.NewDesc(namespace+"_server_request_duration_seconds",
			"Time from sending a request to a server to reading its reply, per server.", serverLabels, nil),
		cmdLat: prometheus.NewDesc(namespace+"_pool_command_duration_seconds",
			"Time from reading a request to having its reply, per pool and command family.", []string{"pool", "family"}, nil),
		slowAdded: prometheus.NewDesc(namespace+"_slowlog_entries_total",
			"Requests added to the slow log (which keeps only the latest).", nil, nil),
	}
	for _, d := range PoolStats() {
		c.pool = append(c.pool, newMetricDesc("pool", d, poolLabels))
	}
	for _, d := range ServerStats() {
		c.server = append(c.server, newMetricDesc("server", d, serverLabels))
	}
	c.mu.Lock()
	for _, d := range PoolAdditions() {
		c.extra["pool "+d.Name] = newMetricDesc("pool", d, poolLabels)
	}
	for _, d := range ServerAdditions() {
		c.extra["server "+d.Name] = newMetricDesc("server", d, serverLabels)
	}
	for _, d := range ProxyAdditions() {
		c.extra[" "+d.Name] = newMetricDesc("", d, nil)
	}
	c.mu.Unlock()
	return c
}

// Describe sends nothing, which makes the collector unchecked.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

// Collect reads the Source and sends every counter.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	var s Snapshot
	c.collect(&s)
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.CurrConnections))
	ch <- prometheus.MustNewConstMetric(c.connsTotal, prometheus.CounterValue, float64(s.TotalConnections))
	for _, f := range s.Extra {
		send(ch, c.extraDesc("", f.Name, nil), f.Value)
	}
	for i := range s.Pools {
		p := &s.Pools[i]
		for j, v := range p.counters() {
			send(ch, c.pool[j], *v, p.Name)
		}
		for _, f := range p.Extra {
			send(ch, c.extraDesc("pool", f.Name, c.poolLabels), f.Value, p.Name)
		}
		sendHistogram(ch, c.poolLatency, p.Latency, p.Name)
		for _, cl := range p.Commands {
			sendHistogram(ch, c.cmdLat, cl.Latency, p.Name, cl.Family)
		}
		for k := range p.Servers {
			sv := &p.Servers[k]
			for j, v := range sv.counters() {
				send(ch, c.server[j], *v, p.Name, sv.Name)
			}
			for _, f := range sv.Extra {
				send(ch, c.extraDesc("server", f.Name, c.serverLabels), f.Value, p.Name, sv.Name)
			}
			sendHistogram(ch, c.serverLatency, sv.Latency, p.Name, sv.Name)
		}
	}
	if c.slow != nil {
		ch <- prometheus.MustNewConstMetric(c.slowAdded, prometheus.CounterValue, float64(c.slow.Added()))
	}
}

// extraDesc returns the metric of an Extra field: the described one for
// shardproxy's additions, else a gauge named by the rule, since nothing
// says the value only grows.
func (c *collector) extraDesc(level, name string, labels []string) metricDesc {
	key := level + " " + name
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.extra[key]
	if !ok {
		d = newMetricDesc(level, Description{Name: name, Desc: "A " + level + " field without a description", Kind: Gauge}, labels)
		c.extra[key] = d
	}
	return d
}

// send sends one counter, converting a timestamp from microseconds to
// seconds.
func send(ch chan<- prometheus.Metric, d metricDesc, v int64, labels ...string) {
	var m prometheus.Metric
	var err error
	switch d.kind {
	case Counter:
		m, err = prometheus.NewConstMetric(d.desc, prometheus.CounterValue, float64(v), labels...)
	case Gauge:
		m, err = prometheus.NewConstMetric(d.desc, prometheus.GaugeValue, float64(v), labels...)
	default:
		m, err = prometheus.NewConstMetric(d.desc, prometheus.GaugeValue, float64(v)/1e6, labels...)
	}
	if err != nil {
		m = prometheus.NewInvalidMetric(d.desc, err)
	}
	ch <- m
}

// sendHistogram sends h as a Prometheus histogram in seconds; a nil h
// sends nothing.
func sendHistogram(ch chan<- prometheus.Metric, d *prometheus.Desc, h *Histogram, labels ...string) {
	if h == nil {
		return
	}
	s := h.Snapshot()
	buckets := make(map[float64]uint64, NumBuckets)
	var cum uint64
	for i, b := range bucketBounds {
		cum += s.Counts[i]
		buckets[b.Seconds()] = cum
	}
	m, err := prometheus.NewConstHistogram(d, cum+s.Counts[NumBuckets], s.Sum.Seconds(), buckets, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}

// newBuildInfo returns the shardproxy_build_info gauge: always 1, its
// labels say what is running.
func newBuildInfo(service, version string) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace:   namespace,
		Name:        "build_info",
		Help:        "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{"version": version, "goversion": runtime.Version(), "service": service},
	})
	g.Set(1)
	return g
}
