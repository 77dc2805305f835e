package stats

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// fakeSource is a data provider that counts its calls.
type fakeSource struct {
	mu    sync.Mutex
	calls int
}

func (f *fakeSource) Collect(s *Snapshot) {
	f.mu.Lock()
	f.calls++
	n := int64(f.calls)
	f.mu.Unlock()
	var pool, server, cmd Histogram
	pool.Observe(30 * time.Microsecond)
	pool.Observe(2 * time.Millisecond)
	server.Observe(20 * time.Microsecond)
	cmd.Observe(time.Hour)
	s.TotalConnections, s.CurrConnections = 10+n, 3
	// Out of nutcracker's order, which the Server restores.
	s.Pools = append(s.Pools,
		PoolSnapshot{Name: "zeta", ClientEOF: n, ClientConnections: 2, Extra: []Field{{"noreply_errors", 4}, {"odd-one", 5}},
			Latency: &pool, Commands: []CommandLatency{{"get", &cmd}, {"set", nil}},
			Servers: []ServerSnapshot{
				{Name: "127.0.0.1:6380", Requests: 100 * n, ServerEjectedAt: 1_700_000_000_500_000, Latency: &server},
				{Name: "s1", Requests: 7, Extra: []Field{{"server_failover", 1}}},
			}},
		PoolSnapshot{Name: "ab", Servers: []ServerSnapshot{{Name: "m"}}},
	)
}

func (f *fakeSource) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// startServer starts a Server on a free port of 127.0.0.1, closed when
// the test ends.
func startServer(t *testing.T, cfg ServerConfig) *Server {
	t.Helper()
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "testhost"
	}
	s := NewServer(cfg)
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func get(t *testing.T, client *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp, body
}

func newClient() *http.Client { return &http.Client{Timeout: 5 * time.Second} }

// checkStatsJSON checks b is the JSON of fakeSource's snapshot.
func checkStatsJSON(t *testing.T, b []byte) {
	t.Helper()
	ms, err := parseOrdered(b)
	if err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	got := strings.Join(keyPaths(ms, ""), " ")
	for _, want := range []string{
		"service source version uptime timestamp total_connections curr_connections ab ab/client_eof",
		"ab/m/out_queue_bytes zeta zeta/client_eof",
		"zeta/fragments zeta/noreply_errors zeta/odd-one zeta/s1 zeta/s1/server_eof",
		"zeta/s1/out_queue_bytes zeta/s1/server_failover zeta/127.0.0.1:6380 ",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("keys lack %q:\n%s", want, got)
		}
	}
	if !bytes.HasPrefix(b, []byte(`{"service":"nutcracker", "source":"testhost", "version":"1.2.3", "uptime":`)) || !bytes.HasSuffix(b, []byte("}}}\n")) {
		t.Errorf("JSON: %s", b)
	}
}

func TestServerRawClient(t *testing.T) {
	src := &fakeSource{}
	s := startServer(t, ServerConfig{Source: src, Version: "1.2.3"})
	addr := s.Addr().String()

	t.Run("sends nothing", func(t *testing.T) {
		start := time.Now()
		b := testutil.ReadStats(t, addr) // fails unless the server closes
		checkStatsJSON(t, b)
		if d := time.Since(start); d < DefaultHTTPWait || d > 2*time.Second {
			t.Errorf("answered after %v, want the HTTP wait of %v", d, DefaultHTTPWait)
		}
	})
	t.Run("half-closes at once, as nc </dev/null", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		start := time.Now()
		_ = c.(*net.TCPConn).CloseWrite()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		b, err := io.ReadAll(c)
		if err != nil {
			t.Fatal(err)
		}
		checkStatsJSON(t, b)
		if d := time.Since(start); d >= DefaultHTTPWait {
			t.Errorf("answered after %v; an EOF needs no wait", d)
		}
	})
	for _, sent := range []string{"stats\r\n", "GE", "get /", "\x16\x03\x01\x02\x00"} {
		t.Run("sends "+strings.ToValidUTF8(sent, "?"), func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c, sent); err != nil {
				t.Fatal(err)
			}
			// The server reads until this side closes, so more bytes
			// now cause no reset that could destroy the JSON.
			time.Sleep(20 * time.Millisecond)
			_, _ = io.WriteString(c, "more bytes\r\n")
			b, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("%v after %q", err, b)
			}
			checkStatsJSON(t, b)
		})
	}
}

func TestServerHTTP(t *testing.T) {
	src := &fakeSource{}
	slow := NewSlowLog(4)
	slow.Add(SlowEntry{Time: time.Unix(1700000000, 0), Pool: "zeta", Server: "s1", Command: "get", Key: "k", Latency: 15 * time.Millisecond})
	s := startServer(t, ServerConfig{Source: src, Version: "1.2.3", SlowLog: slow, HTTPWait: 5 * time.Second})
	base := "http://" + s.Addr().String()
	client := newClient()

	for _, path := range []string{"/", "/stats"} {
		resp, body := get(t, client, base+path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s: %s %q", path, resp.Status, resp.Header.Get("Content-Type"))
		}
		checkStatsJSON(t, body)
	}

	resp, err := client.Head(base + "/stats")
	if err != nil || resp.StatusCode != 200 || resp.ContentLength <= 0 {
		t.Errorf("HEAD /stats: %v %v", resp, err)
	}
	for path, code := range map[string]int{"/nope": 404, "/stats/x": 404, "/metricsx": 404} {
		if resp, _ := get(t, client, base+path); resp.StatusCode != code {
			t.Errorf("GET %s: %s, want %d", path, resp.Status, code)
		}
	}
	if resp, err := client.Post(base+"/stats", "text/plain", strings.NewReader("x")); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST /stats: %v %v", resp, err)
	}

	resp, body := get(t, client, base+"/slowlog")
	var doc struct {
		Capacity int
		Entries  []map[string]any
	}
	if err := json.Unmarshal(body, &doc); err != nil || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("/slowlog: %v %s", err, body)
	}
	if doc.Capacity != 4 || len(doc.Entries) != 1 || doc.Entries[0]["command"] != "get" || doc.Entries[0]["latency_us"] != 15000.0 {
		t.Errorf("/slowlog: %s", body)
	}

	// Keep-alive works through the hand-over from sniffing to net/http.
	reused := false
	trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", base+"/stats", nil)
	if resp, err := client.Do(req); err != nil {
		t.Fatal(err)
	} else {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if !reused {
		t.Error("the HTTP connection was not reused")
	}
}

func TestServerSlowLogAbsent(t *testing.T) {
	s := startServer(t, ServerConfig{})
	_, body := get(t, newClient(), "http://"+s.Addr().String()+"/slowlog")
	if string(body) != `{"capacity":0,"added":0,"entries":[]}`+"\n" {
		t.Errorf("/slowlog without a log: %s", body)
	}
	// No Source: the JSON has no pools, and is still valid.
	_, body = get(t, newClient(), "http://"+s.Addr().String()+"/stats")
	if !json.Valid(body) || !bytes.HasSuffix(body, []byte(`"curr_connections":0}`+"\n")) {
		t.Errorf("/stats without a Source: %s", body)
	}
}

func TestServerCurl(t *testing.T) {
	curl := testutil.Binary(t, "curl")
	src := &fakeSource{}
	s := startServer(t, ServerConfig{Source: src, Version: "1.2.3"})
	base := "http://" + s.Addr().String()
	for _, path := range []string{"/", "/stats", "/metrics"} {
		out, err := exec.Command(curl, "-sS", "--fail", "--max-time", "5", base+path).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v\n%s", path, err, out)
		}
		if path == "/metrics" {
			if !bytes.Contains(out, []byte(`shardproxy_server_requests_total{pool="zeta",server="s1"} 7`)) {
				t.Errorf("curl /metrics:\n%s", out)
			}
			continue
		}
		checkStatsJSON(t, out)
	}
}

// scrape fetches /metrics and parses it.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, body := get(t, newClient(), base+"/metrics")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %s %q\n%s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams
}

// metricValue finds the sample of family name with labels; ok is false if
// there is none.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (m *dto.Metric, ok bool) {
	f := fams[name]
	if f == nil {
		return nil, false
	}
	for _, m := range f.Metric {
		match := len(m.Label) == len(labels)
		for _, l := range m.Label {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if match {
			return m, true
		}
	}
	return nil, false
}

func TestServerMetrics(t *testing.T) {
	src := &fakeSource{}
	slow := NewSlowLog(0)
	slow.Add(SlowEntry{})
	slow.Add(SlowEntry{})
	s := startServer(t, ServerConfig{Source: src, Version: "1.2.3", SlowLog: slow})
	fams := scrape(t, "http://"+s.Addr().String())

	pool := func(p string) map[string]string { return map[string]string{"pool": p} }
	server := func(p, s string) map[string]string { return map[string]string{"pool": p, "server": s} }
	tests := []struct {
		name   string
		labels map[string]string
		typ    dto.MetricType
		value  float64
	}{
		{"shardproxy_connections", nil, dto.MetricType_GAUGE, 3},
		{"shardproxy_connections_total", nil, dto.MetricType_COUNTER, 11},
		{"shardproxy_pool_client_eof_total", pool("zeta"), dto.MetricType_COUNTER, 1},
		{"shardproxy_pool_client_err_total", pool("zeta"), dto.MetricType_COUNTER, 0},
		{"shardproxy_pool_client_connections", pool("zeta"), dto.MetricType_GAUGE, 2},
		{"shardproxy_pool_server_ejects_total", pool("ab"), dto.MetricType_COUNTER, 0},
		{"shardproxy_pool_forward_error_total", pool("ab"), dto.MetricType_COUNTER, 0},
		{"shardproxy_pool_fragments_total", pool("ab"), dto.MetricType_COUNTER, 0},
		{"shardproxy_pool_noreply_errors_total", pool("zeta"), dto.MetricType_COUNTER, 4},
		{"shardproxy_pool_odd_one", pool("zeta"), dto.MetricType_GAUGE, 5},
		{"shardproxy_server_eof_total", server("zeta", "s1"), dto.MetricType_COUNTER, 0},
		{"shardproxy_server_err_total", server("zeta", "s1"), dto.MetricType_COUNTER, 0},
		{"shardproxy_server_timedout_total", server("zeta", "s1"), dto.MetricType_COUNTER, 0},
		{"shardproxy_server_connections", server("zeta", "s1"), dto.MetricType_GAUGE, 0},
		{"shardproxy_server_ejected_at_seconds", server("zeta", "127.0.0.1:6380"), dto.MetricType_GAUGE, 1_700_000_000.5},
		{"shardproxy_server_requests_total", server("zeta", "127.0.0.1:6380"), dto.MetricType_COUNTER, 100},
		{"shardproxy_server_requests_total", server("ab", "m"), dto.MetricType_COUNTER, 0},
		{"shardproxy_server_request_bytes_total", server("zeta", "s1"), dto.MetricType_COUNTER, 0},
		{"shardproxy_server_responses_total", server("zeta", "s1"), dto.MetricType_COUNTER, 0},
		{"shardproxy_server_response_bytes_total", server("zeta", "s1"), dto.MetricType_COUNTER, 0},
		{"shardproxy_server_in_queue", server("zeta", "s1"), dto.MetricType_GAUGE, 0},
		{"shardproxy_server_in_queue_bytes", server("zeta", "s1"), dto.MetricType_GAUGE, 0},
		{"shardproxy_server_out_queue", server("zeta", "s1"), dto.MetricType_GAUGE, 0},
		{"shardproxy_server_out_queue_bytes", server("zeta", "s1"), dto.MetricType_GAUGE, 0},
		{"shardproxy_server_failover_total", server("zeta", "s1"), dto.MetricType_COUNTER, 1},
		{"shardproxy_slowlog_entries_total", nil, dto.MetricType_COUNTER, 2},
		{"shardproxy_build_info", map[string]string{"version": "1.2.3", "goversion": runtime.Version(), "service": "nutcracker"}, dto.MetricType_GAUGE, 1},
	}
	for _, tc := range tests {
		m, ok := metricValue(fams, tc.name, tc.labels)
		if !ok {
			t.Errorf("no %s%v", tc.name, tc.labels)
			continue
		}
		if typ := fams[tc.name].GetType(); typ != tc.typ {
			t.Errorf("%s is a %v, want %v", tc.name, typ, tc.typ)
		}
		var v float64
		switch tc.typ {
		case dto.MetricType_COUNTER:
			v = m.GetCounter().GetValue()
		default:
			v = m.GetGauge().GetValue()
		}
		if v != tc.value {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, v, tc.value)
		}
		if !strings.Contains(fams[tc.name].GetHelp(), " ") {
			t.Errorf("%s has help %q", tc.name, fams[tc.name].GetHelp())
		}
	}

	// Histograms, in seconds, with every bucket.
	hists := []struct {
		name   string
		labels map[string]string
		count  uint64
		sum    float64
		le     float64 // a bound
		below  uint64  // the cumulative count at le
	}{
		{"shardproxy_pool_request_duration_seconds", pool("zeta"), 2, 0.00203, 0.0025, 2},
		{"shardproxy_pool_request_duration_seconds", pool("zeta"), 2, 0.00203, 0.000025, 0},
		{"shardproxy_pool_request_duration_seconds", pool("zeta"), 2, 0.00203, 0.00005, 1},
		{"shardproxy_server_request_duration_seconds", server("zeta", "127.0.0.1:6380"), 1, 0.00002, 0.000025, 1},
		{"shardproxy_pool_command_duration_seconds", map[string]string{"pool": "zeta", "family": "get"}, 1, 3600, 10, 0},
	}
	for _, tc := range hists {
		m, ok := metricValue(fams, tc.name, tc.labels)
		if !ok || fams[tc.name].GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("no histogram %s%v", tc.name, tc.labels)
			continue
		}
		h := m.GetHistogram()
		if h.GetSampleCount() != tc.count || h.GetSampleSum() < tc.sum*0.999 || h.GetSampleSum() > tc.sum*1.001 {
			t.Errorf("%s%v: count %d sum %v", tc.name, tc.labels, h.GetSampleCount(), h.GetSampleSum())
		}
		// The text format lists +Inf too.
		if n := len(h.Bucket); n != NumBuckets+1 || !math.IsInf(h.Bucket[n-1].GetUpperBound(), 1) || h.Bucket[n-1].GetCumulativeCount() != tc.count {
			t.Errorf("%s: buckets %v", tc.name, h.Bucket)
		}
		found := false
		for _, b := range h.Bucket {
			if b.GetUpperBound() == tc.le {
				found = true
				if b.GetCumulativeCount() != tc.below {
					t.Errorf("%s%v: bucket le=%v has %d, want %d", tc.name, tc.labels, tc.le, b.GetCumulativeCount(), tc.below)
				}
			}
		}
		if !found {
			t.Errorf("%s: no bucket le=%v", tc.name, tc.le)
		}
	}
	if _, ok := metricValue(fams, "shardproxy_pool_command_duration_seconds", map[string]string{"pool": "zeta", "family": "set"}); ok {
		t.Error("a nil histogram was exported")
	}
	if _, ok := metricValue(fams, "shardproxy_server_request_duration_seconds", server("zeta", "s1")); ok {
		t.Error("a nil server histogram was exported")
	}

	// The Go runtime and the process.
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}

// TestServerMetricsFresh checks /metrics collects at every scrape, unlike
// the JSON, which is up to an interval old.
func TestServerMetricsFresh(t *testing.T) {
	src := &fakeSource{}
	s := startServer(t, ServerConfig{Source: src, Interval: time.Hour})
	base := "http://" + s.Addr().String()
	for i := 1; i <= 3; i++ {
		fams := scrape(t, base)
		if m, ok := metricValue(fams, "shardproxy_pool_client_eof_total", map[string]string{"pool": "zeta"}); !ok || m.GetCounter().GetValue() != float64(i) {
			t.Errorf("scrape %d: client_eof %v", i, m)
		}
	}
	if src.count() != 3 {
		t.Errorf("%d collections for 3 scrapes", src.count())
	}
}

func TestServerRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "program_own_total", Help: "The program's own."})
	reg.MustRegister(extra)
	s := startServer(t, ServerConfig{Registry: reg, Version: "v"})
	if s.Registry() != reg {
		t.Error("Registry() is not the given registry")
	}
	fams := scrape(t, "http://"+s.Addr().String())
	if fams["program_own_total"] == nil || fams["shardproxy_build_info"] == nil || fams["shardproxy_connections"] == nil {
		t.Errorf("families: %v", keys(fams))
	}
	if fams["go_goroutines"] != nil {
		t.Error("the Go collector was added to the program's registry")
	}

	// A registry that already holds shardproxy's metrics: Start fails.
	s2 := NewServer(ServerConfig{Addr: "127.0.0.1:0", Registry: reg, Version: "v"})
	if err := s2.Start(); err == nil || !strings.Contains(err.Error(), "registering metrics") {
		t.Errorf("Start with a registry in use: %v", err)
	}
	_ = s2.Close()
}

func keys(m map[string]*dto.MetricFamily) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestServerInterval checks the JSON is collected at most once per
// interval, on demand.
func TestServerInterval(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1700000000, 0)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	src := &fakeSource{}
	started := now.Add(-90 * time.Second)
	s := startServer(t, ServerConfig{Source: src, Interval: 30 * time.Second, Now: clock, Started: started, Version: "1.2.3"})
	base := "http://" + s.Addr().String()
	client := newClient()

	if src.count() != 0 {
		t.Fatalf("%d collections before anyone read", src.count())
	}
	_, first := get(t, client, base+"/stats")
	for range 3 {
		_, b := get(t, client, base+"/")
		if !bytes.Equal(b, first) {
			t.Errorf("the JSON changed within the interval")
		}
	}
	if raw := testutil.ReadStats(t, s.Addr().String()); !bytes.Equal(raw, first) {
		t.Errorf("raw and HTTP JSON differ:\n%s\n%s", raw, first)
	}
	if src.count() != 1 {
		t.Errorf("%d collections for 5 reads within an interval", src.count())
	}
	if !bytes.Contains(first, []byte(`"uptime":90, "timestamp":1700000000,`)) {
		t.Errorf("uptime or timestamp: %s", first)
	}

	advance(29 * time.Second)
	get(t, client, base+"/stats")
	if src.count() != 1 {
		t.Errorf("collected again after 29s of a 30s interval")
	}
	advance(time.Second)
	_, b := get(t, client, base+"/stats")
	if src.count() != 2 || !bytes.Contains(b, []byte(`"uptime":120, "timestamp":1700000030,`)) {
		t.Errorf("after the interval: %d collections, %s", src.count(), b)
	}
	advance(-time.Hour) // a clock stepped back
	get(t, client, base+"/stats")
	if src.count() != 3 {
		t.Errorf("a clock stepped back did not refresh: %d collections", src.count())
	}
}

// TestServerIntervalZero checks -i 0 neither spins nor runs anything in
// the background: collections follow reads, at most one per MinInterval.
func TestServerIntervalZero(t *testing.T) {
	src := &fakeSource{}
	s := startServer(t, ServerConfig{Source: src, Interval: 0})
	base := "http://" + s.Addr().String()

	time.Sleep(200 * time.Millisecond)
	if n := src.count(); n != 0 {
		t.Fatalf("%d collections while nobody read", n)
	}
	client := newClient()
	reads := 0
	start := time.Now()
	for time.Since(start) < 200*time.Millisecond {
		get(t, client, base+"/stats")
		reads++
	}
	elapsed := time.Since(start)
	n := src.count()
	limit := int(elapsed/MinInterval) + 1
	if n > reads || n > limit || n < 2 {
		t.Errorf("%d collections for %d reads in %v (at most %d)", n, reads, elapsed, limit)
	}
	time.Sleep(100 * time.Millisecond)
	if src.count() != n {
		t.Errorf("collections went on after the reads stopped")
	}
	t.Logf("%d reads, %d collections in %v", reads, n, elapsed)
}

func TestServerCloseWithIdleClients(t *testing.T) {
	src := &fakeSource{}
	before := runtime.NumGoroutine()
	s := NewServer(ServerConfig{Addr: "127.0.0.1:0", Source: src, HTTPWait: 10 * time.Second})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr().String()

	// One raw client still within the HTTP wait, one idle keep-alive
	// HTTP connection, one connected to nothing yet.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_ = idle.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(idle, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
	buf := make([]byte, 64<<10)
	if n, err := idle.Read(buf); err != nil || !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200 OK")) {
		t.Fatalf("HTTP over a raw socket: %v %q", err, buf[:n])
	}
	time.Sleep(50 * time.Millisecond)

	start := time.Now()
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	for _, c := range []net.Conn{raw, idle} {
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := io.ReadAll(c); err != nil && !errors.Is(err, net.ErrClosed) && !isReset(err) {
			t.Errorf("after Close a client reads %v, want EOF", err)
		}
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("still accepting after Close")
	}
	// The goroutines are gone (allow the runtime a moment).
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		t.Errorf("%d goroutines after Close, %d before the server started", g, before)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := s.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

func TestServerStartErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	s := NewServer(ServerConfig{Addr: addr})
	err = s.Start()
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Start on a used port: %v (want an error naming %s)", err, addr)
	}
	_ = s.Close()

	s = startServer(t, ServerConfig{})
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	if NewServer(ServerConfig{}).Addr() != nil {
		t.Error("Addr before Start")
	}
}

// TestServerManySilentClients checks the HTTP wait is bounded: past
// maxSniffing silent connections, new ones get the JSON at once.
func TestServerManySilentClients(t *testing.T) {
	src := &fakeSource{}
	s := startServer(t, ServerConfig{Source: src, Version: "1.2.3", HTTPWait: 10 * time.Second})
	addr := s.Addr().String()
	for range maxSniffing {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// Let the server accept them all.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		n := s.sniffing
		s.mu.Unlock()
		if n == maxSniffing || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	start := time.Now()
	checkStatsJSON(t, testutil.ReadStats(t, addr))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the %dth silent client waited %v", maxSniffing+1, d)
	}
}

func TestServerNegativeHTTPWait(t *testing.T) {
	src := &fakeSource{}
	s := startServer(t, ServerConfig{Source: src, Version: "1.2.3", HTTPWait: -1})
	start := time.Now()
	checkStatsJSON(t, testutil.ReadStats(t, s.Addr().String()))
	if d := time.Since(start); d >= DefaultHTTPWait {
		t.Errorf("answered after %v with no HTTP wait", d)
	}
}

func TestClassifyMethod(t *testing.T) {
	methods := httpMethods()
	tests := []struct {
		in   string
		want int
	}{
		{"", 0}, {"G", 0}, {"GE", 0}, {"GET", 0}, {"GET ", 1}, {"GET /metrics HTTP/1.1\r\n", 1},
		{"P", 0}, {"PO", 0}, {"PU", 0}, {"PUT /", 1}, {"PATCH /", 1}, {"HEAD /", 1}, {"OPTIONS *", 1},
		{"GETX", -1}, {"get /", -1}, {"stats\r\n", -1}, {"\x16\x03", -1}, {"X", -1}, {"GET/", -1},
	}
	for _, tc := range tests {
		if got := classifyMethod([]byte(tc.in), methods); got != tc.want {
			t.Errorf("classifyMethod(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestServerConcurrentReaders reads the JSON and /metrics from several
// goroutines at once (for -race).
func TestServerConcurrentReaders(t *testing.T) {
	src := &fakeSource{}
	s := startServer(t, ServerConfig{Source: src, Version: "1.2.3", Interval: time.Millisecond})
	base := "http://" + s.Addr().String()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := newClient()
			for range 10 {
				path := "/stats"
				if i%2 == 1 {
					path = "/metrics"
				}
				resp, err := client.Get(base + path)
				if err != nil {
					t.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
}

// TestServerHandOver is a binary upgrade's view of the stats port: a new
// Server takes over the socket (File, ServerConfig.Listener), the old one
// shuts down, and every client is answered by one or the other — the one
// already connected to the old Server by the old Server, though it is still
// within the HTTP wait when Shutdown begins.
func TestServerHandOver(t *testing.T) {
	old := NewServer(ServerConfig{Addr: "127.0.0.1:0", Version: "old", HTTPWait: 300 * time.Millisecond})
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	addr := old.Addr().String()
	waiting, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()

	f, err := old.File()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	successor := startServer(t, ServerConfig{Listener: ln, Version: "new", HTTPWait: -1})
	if got := successor.Addr().String(); got != addr {
		t.Fatalf("successor listens on %s, want %s", got, addr)
	}

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdown <- old.Shutdown(ctx)
	}()
	// Clients dialling meanwhile are answered by whichever Server accepts them.
	for i := range 20 {
		b := testutil.ReadStats(t, addr)
		if !bytes.Contains(b, []byte(`"version":"old"`)) && !bytes.Contains(b, []byte(`"version":"new"`)) {
			t.Fatalf("client %d read %q", i, b)
		}
	}
	_ = waiting.SetDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(waiting)
	if err != nil || !bytes.Contains(b, []byte(`"version":"old"`)) {
		t.Errorf("the client connected before Shutdown read %q, %v; want the old server's JSON", b, err)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if b := testutil.ReadStats(t, addr); !bytes.Contains(b, []byte(`"version":"new"`)) {
		t.Errorf("after Shutdown a client read %q", b)
	}
	if _, err := old.File(); err == nil {
		t.Error("File after Shutdown succeeded")
	}
}
