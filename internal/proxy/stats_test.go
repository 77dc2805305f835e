package proxy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/stats"
	"github.com/shardproxy/shardproxy/internal/testutil"
)

// readStats reads one raw stats document, as nutcracker's clients do.
func readStats(t *testing.T, addr string) map[string]any {
	t.Helper()
	b := testutil.ReadStats(t, addr)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("stats from %s: %v\n%s", addr, err, b)
	}
	return m
}

// startStats serves px's stats on a free port with a tiny interval.
func startStats(t *testing.T, px *Proxy) string {
	t.Helper()
	srv := stats.NewServer(stats.ServerConfig{
		Addr:     fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)),
		Interval: stats.MinInterval,
		Source:   px,
		Version:  "test",
		HTTPWait: -1,
	})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv.Addr().String()
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestStatsMatchNutcracker runs the same workload through nutcracker and
// shardproxy (each over its own redis-servers, same names) and compares
// the stats documents: the same keys at every level, and the same values
// for every counter a known workload fixes.
func TestStatsMatchNutcracker(t *testing.T) {
	ncServers := startRedises(t, 2)
	spServers := startRedises(t, 2)
	conf := func(servers []*testutil.Server) string {
		return fmt.Sprintf("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n  servers:\n   - %s:1 one\n   - %s:1 two\n",
			testutil.FreePort(t), servers[0].Addr, servers[1].Addr)
	}
	ncConf := conf(ncServers)
	nc := testutil.StartNutcracker(t, ncConf, "-i", "100")
	px, spAddr := startProxy(t, conf(spServers))
	spStats := startStats(t, px)
	// StartNutcracker's readiness check was one client that connected and
	// left: do the same here, so both have seen two clients.
	if c, err := net.Dial("tcp", spAddr); err == nil {
		c.Close()
	}

	const n = 200
	var req strings.Builder
	for i := range n {
		req.WriteString(cmd("SET", fmt.Sprintf("key:%d", i), "value"))
	}
	for _, addr := range []string{listenAddrsOf(ncConf)[0], spAddr} {
		c := dialRaw(t, addr)
		c.send(req.String())
		for range n {
			if got := c.readReply(); got != "+OK\r\n" {
				t.Fatal(got)
			}
		}
		c.conn.Close()
	}
	// Both aggregate on an interval: wait until the client's EOF shows.
	var ncDoc, spDoc map[string]any
	ok := waitFor(5*time.Second, func() bool {
		ncDoc, spDoc = readStats(t, nc.StatsAddr), readStats(t, spStats)
		nca, _ := ncDoc["alpha"].(map[string]any)
		spa, _ := spDoc["alpha"].(map[string]any)
		settled := func(pool map[string]any) bool {
			if pool == nil || pool["client_eof"] != 2.0 || pool["client_connections"] != 0.0 {
				return false
			}
			sum := 0.0
			for _, name := range []string{"one", "two"} {
				srv, _ := pool[name].(map[string]any)
				if srv == nil {
					return false
				}
				sum += srv["responses"].(float64)
			}
			return sum == n
		}
		return settled(nca) && settled(spa)
	})
	if !ok {
		t.Fatalf("stats never settled:\nnutcracker %v\nshardproxy %v", ncDoc, spDoc)
	}

	// nutcracker's top-level keys, and then the process-wide additions.
	var topAdds []string
	for _, d := range stats.ProxyAdditions() {
		topAdds = append(topAdds, d.Name)
	}
	if a, b := keysOf(ncDoc), keysOf(spDoc); fmt.Sprint(a) != fmt.Sprint(slices.DeleteFunc(b, func(k string) bool { return slices.Contains(topAdds, k) })) {
		t.Errorf("top-level keys: nutcracker %v, shardproxy %v (additions %v)", a, b, topAdds)
	}
	if spDoc["reloads"] != 0.0 || spDoc["reloads_failed"] != 0.0 {
		t.Errorf("reloads %v, reloads_failed %v; want 0 and 0", spDoc["reloads"], spDoc["reloads_failed"])
	}
	for _, k := range []string{"service", "total_connections", "curr_connections"} {
		if ncDoc[k] != spDoc[k] {
			t.Errorf("%s: nutcracker %v, shardproxy %v", k, ncDoc[k], spDoc[k])
		}
	}
	ncPool, spPool := ncDoc["alpha"].(map[string]any), spDoc["alpha"].(map[string]any)
	// nutcracker's keys, and then shardproxy's documented additions.
	var additions []string
	for _, d := range stats.PoolAdditions() {
		if _, ok := spPool[d.Name]; ok {
			additions = append(additions, d.Name)
		}
	}
	if a, b := keysOf(ncPool), keysOf(spPool); fmt.Sprint(a) != fmt.Sprint(slices.DeleteFunc(b, func(k string) bool { return slices.Contains(additions, k) })) {
		t.Errorf("pool keys: nutcracker %v, shardproxy %v (additions %v)", a, b, additions)
	}
	if fmt.Sprint(additions) != "[client_refused blocked_clients pushed_back pubsub_dropped]" || spPool["client_refused"] != 0.0 || spPool["pubsub_dropped"] != 0.0 {
		t.Errorf("additions to a Redis pool: %v, client_refused %v, pubsub_dropped %v; want client_refused, blocked_clients, pushed_back, pubsub_dropped, client_refused and pubsub_dropped 0", additions, spPool["client_refused"], spPool["pubsub_dropped"])
	}
	for _, k := range []string{"client_eof", "client_err", "client_connections", "server_ejects", "forward_error", "fragments"} {
		if ncPool[k] != spPool[k] {
			t.Errorf("pool %s: nutcracker %v, shardproxy %v", k, ncPool[k], spPool[k])
		}
	}
	var requests, requestBytes, responses, responseBytes float64
	for _, name := range []string{"one", "two"} {
		ncSrv, spSrv := ncPool[name].(map[string]any), spPool[name].(map[string]any)
		if a, b := keysOf(ncSrv), keysOf(spSrv); fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("server keys: nutcracker %v, shardproxy %v", a, b)
		}
		for _, k := range []string{"server_eof", "server_err", "server_timedout", "server_connections", "server_ejected_at",
			"requests", "request_bytes", "responses", "response_bytes", "in_queue", "in_queue_bytes", "out_queue", "out_queue_bytes"} {
			if ncSrv[k] != spSrv[k] {
				t.Errorf("server %s %s: nutcracker %v, shardproxy %v", name, k, ncSrv[k], spSrv[k])
			}
		}
		requests += spSrv["requests"].(float64)
		requestBytes += spSrv["request_bytes"].(float64)
		responses += spSrv["responses"].(float64)
		responseBytes += spSrv["response_bytes"].(float64)
	}
	if requests != n || requestBytes != float64(req.Len()) || responses != n || responseBytes != n*float64(len("+OK\r\n")) {
		t.Errorf("requests %v (want %d), request_bytes %v (want %d), responses %v, response_bytes %v",
			requests, n, requestBytes, req.Len(), responses, responseBytes)
	}
}

// TestMetricsAndSlowLog scrapes /metrics with the Prometheus text parser
// after a known workload, and reads the slow log over HTTP.
func TestMetricsAndSlowLog(t *testing.T) {
	servers := startRedises(t, 2)
	yaml := fmt.Sprintf("alpha:\n  listen: 127.0.0.1:%d\n  redis: true\n  slowlog_slower_than: 0\n  servers:\n%s",
		testutil.FreePort(t), serverLines(servers...))
	cfg, err := config.Parse("test.yml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	slow := stats.NewSlowLog(16)
	px, err := New(cfg, Options{SlowLog: slow})
	if err != nil {
		t.Fatal(err)
	}
	if err := px.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = px.Shutdown(context.Background()) })
	srv := stats.NewServer(stats.ServerConfig{Addr: fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)), Source: px, SlowLog: slow, Version: "test"})
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	c := dialRaw(t, px.Pools()[0].Addr().String())
	const n = 50
	for i := range n {
		c.roundTrip(cmd("SET", fmt.Sprintf("k%d", i), "v"))
		c.roundTrip(cmd("HGET", "h", "f"))
	}
	resp, err := http.Get("http://" + srv.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	count := func(name string, labels map[string]string) uint64 {
		var total uint64
		for _, m := range families[name].GetMetric() {
			match := true
			for k, v := range labels {
				found := false
				for _, l := range m.GetLabel() {
					if l.GetName() == k && l.GetValue() == v {
						found = true
					}
				}
				match = match && found
			}
			if match {
				total += m.GetHistogram().GetSampleCount()
			}
		}
		return total
	}
	if got := count("shardproxy_pool_request_duration_seconds", map[string]string{"pool": "alpha"}); got != 2*n {
		t.Errorf("pool latency samples = %d, want %d", got, 2*n)
	}
	if got := count("shardproxy_server_request_duration_seconds", nil); got != 2*n {
		t.Errorf("server latency samples = %d, want %d", got, 2*n)
	}
	for fam, want := range map[string]uint64{"string": n, "hash": n} {
		if got := count("shardproxy_pool_command_duration_seconds", map[string]string{"pool": "alpha", "family": fam}); got != want {
			t.Errorf("%s latency samples = %d, want %d", fam, got, want)
		}
	}
	var requests float64
	for _, m := range families["shardproxy_server_requests_total"].GetMetric() {
		requests += m.GetCounter().GetValue()
	}
	if requests != 2*n {
		t.Errorf("shardproxy_server_requests_total = %v, want %d", requests, 2*n)
	}
	if families["go_goroutines"] == nil {
		t.Error("no Go runtime metrics")
	}

	r2, err := http.Get("http://" + srv.Addr().String() + "/slowlog")
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	body, _ := io.ReadAll(r2.Body)
	for _, want := range []string{`"command":"hget"`, `"key":"h"`, `"pool":"alpha"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("slow log lacks %s:\n%s", want, body)
		}
	}
	if slow.Added() != 2*n {
		t.Errorf("slow log added %d, want %d (threshold 0 records every request)", slow.Added(), 2*n)
	}
}
