package proxy

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestRedisInfo(t *testing.T) {
	servers := startRedises(t, 3, "databases 4")
	px, addr := redisPool(t, "  redis_db: 2\n  auto_eject_hosts: true\n  server_failure_limit: 1\n  server_retry_timeout: 60000\n", servers...)
	c := dialRaw(t, addr)
	var req strings.Builder
	for i := range 30 {
		if i%3 == 0 {
			req.WriteString(cmd("SET", fmt.Sprintf("k%d", i), "v", "EX", "1000"))
		} else {
			req.WriteString(cmd("SET", fmt.Sprintf("k%d", i), "v"))
		}
	}
	c.send(req.String())
	for range 30 {
		if got := c.readReply(); got != "+OK\r\n" {
			t.Fatal(got)
		}
	}
	// Another database of the same servers is not the pool's.
	dialRaw(t, servers[0].Addr).roundTrip(cmd("SET", "other-db", "x"))

	all := c.roundTrip("INFO\r\n")
	for _, want := range []string{"# Server\r\n", "shardproxy_version:", "redis_mode:standalone\r\n",
		"\r\n\r\n# Clients\r\nconnected_clients:1\r\nblocked_clients:0\r\n", "# Shardproxy\r\npool:alpha\r\n", "servers:3\r\nservers_up:3\r\n",
		"server0:name=" + servers[0].Addr + ",addr=" + servers[0].Addr + ",state=up,",
		"\r\n\r\n# Keyspace\r\n"} {
		if !strings.Contains(all, want) {
			t.Errorf("INFO lacks %q:\n%s", want, all)
		}
	}
	ks := c.roundTrip(cmd("INFO", "keyspace"))
	m := regexp.MustCompile(`^\$\d+\r\n# Keyspace\r\ndb0:keys=30,expires=10,avg_ttl=(\d+)\r\n\r\n$`).FindStringSubmatch(ks)
	if m == nil {
		t.Errorf("INFO keyspace = %q", ks)
	}
	if got := c.roundTrip(cmd("INFO", "memory")); got != "$0\r\n\r\n" {
		t.Errorf("INFO memory = %q, want an empty bulk as Redis gives for unknown sections", got)
	}

	// An ejected server is shown as such and left out of the keyspace.
	victim := servers[1]
	onVictim := 0
	for i := range 30 {
		if backendOf(px, fmt.Sprintf("k%d", i)) == victim.Addr {
			onVictim++
		}
	}
	victim.Kill()
	waitIdle(t, px.Pools()[0].servers[1])
	if !waitFor(2*time.Second, func() bool { return px.Pools()[0].servers[1].state() == "ejected" }) {
		t.Fatal("not ejected")
	}
	all = c.roundTrip("INFO\r\n")
	// fnv1a_64 spreads such short keys badly: all 30 may be on the victim,
	// and an empty database has no line, as in Redis.
	wantKeys := fmt.Sprintf("db0:keys=%d,", 30-onVictim)
	if onVictim == 30 {
		wantKeys = "# Keyspace\r\n\r\n"
	}
	if !strings.Contains(all, "servers_up:2\r\n") || !strings.Contains(all, "state=ejected") ||
		!strings.Contains(all, wantKeys) {
		t.Errorf("INFO with an ejected server:\n%s", all)
	}
}

// bulkBody returns the text of a bulk string reply.
func bulkBody(t *testing.T, reply string) string {
	t.Helper()
	head, body, ok := strings.Cut(reply, "\r\n")
	n, err := strconv.Atoi(strings.TrimPrefix(head, "$"))
	if !ok || err != nil || !strings.HasPrefix(head, "$") || len(body) != n+2 {
		t.Fatalf("not a bulk string: %q", reply)
	}
	return body[:n]
}

// infoFields parses an INFO reply's text as client libraries do (redis-py's
// parse_info, Sidekiq): "key:value" lines under "# Section" headers. It
// fails on a line they could not read, such as a value with commas that are
// not all key=value pairs (redis-py then raises).
func infoFields(t *testing.T, text string) map[string]string {
	t.Helper()
	m := map[string]string{}
	for _, ln := range strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n") {
		if ln == "" || strings.HasPrefix(ln, "# ") {
			continue
		}
		k, v, ok := strings.Cut(ln, ":")
		if !ok {
			t.Errorf("INFO line %q is not key:value", ln)
			continue
		}
		if strings.Contains(v, ",") && strings.Contains(v, "=") {
			for _, item := range strings.Split(v, ",") {
				if !strings.Contains(item, "=") {
					t.Errorf("INFO line %q: item %q is not key=value", ln, item)
				}
			}
		}
		m[k] = v
	}
	return m
}

// TestRedisInfoServer: every request that shows the Server section has
// Redis's fields, redis_version the servers' own.
func TestRedisInfoServer(t *testing.T) {
	servers := startRedises(t, 2)
	_, addr := redisPool(t, "", servers...)
	direct := infoFields(t, bulkBody(t, dialRaw(t, servers[0].Addr).roundTrip(cmd("INFO", "server"))))
	c := dialRaw(t, addr)
	port := addr[strings.LastIndexByte(addr, ':')+1:]
	for _, req := range [][]string{{"INFO"}, {"INFO", "server"}, {"INFO", "SERVER"}, {"INFO", "default"}, {"INFO", "all"},
		{"INFO", "everything"}, {"INFO", "keyspace", "server"}} {
		text := bulkBody(t, c.roundTrip(cmd(req...)))
		if !strings.HasPrefix(text, "# Server\r\nredis_version:"+direct["redis_version"]+"\r\n") {
			t.Errorf("%q: %.60q…", req, text)
		}
		f := infoFields(t, text)
		for k, want := range map[string]string{"redis_mode": "standalone", "os": direct["os"], "arch_bits": direct["arch_bits"],
			"multiplexing_api": direct["multiplexing_api"], "process_id": strconv.Itoa(os.Getpid()), "tcp_port": port,
			"redis_git_sha1": "00000000", "redis_git_dirty": "0", "gcc_version": "0.0.0", "process_supervised": "no"} {
			if f[k] != want {
				t.Errorf("%q: %s = %q, want %q", req, k, f[k], want)
			}
		}
		if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(f["run_id"]) {
			t.Errorf("%q: run_id %q", req, f["run_id"])
		}
		for _, k := range []string{"uptime_in_seconds", "uptime_in_days", "server_time_usec", "lru_clock", "hz"} {
			if _, err := strconv.ParseInt(f[k], 10, 64); err != nil {
				t.Errorf("%q: %s = %q", req, k, f[k])
			}
		}
		if serverOnly := len(req) == 2 && strings.EqualFold(req[1], "server"); serverOnly == strings.Contains(text, "# Keyspace\r\n") {
			t.Errorf("%q: Keyspace section: %q", req, text)
		}
	}
	if got := c.roundTrip(cmd("INFO", "replication")); got != "$48\r\n# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n" {
		t.Errorf("INFO replication = %q", got)
	}
	runID := infoFields(t, bulkBody(t, c.roundTrip(cmd("INFO", "server"))))["run_id"]

	// Servers down: the version they last gave.
	for _, s := range servers {
		s.Stop()
	}
	f := infoFields(t, bulkBody(t, c.roundTrip(cmd("INFO", "server"))))
	if f["redis_version"] != direct["redis_version"] || f["run_id"] != runID {
		t.Errorf("servers down: redis_version %q, run_id %q", f["redis_version"], f["run_id"])
	}
	// Never reached: the documented fallback.
	_, addr2 := redisPool(t, "", servers...)
	f = infoFields(t, bulkBody(t, dialRaw(t, addr2).roundTrip(cmd("INFO"))))
	if f["redis_version"] != fallbackRedisVersion {
		t.Errorf("no server reached: redis_version %q, want %q", f["redis_version"], fallbackRedisVersion)
	}
}

func TestServerVersions(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"7.0.15", "7.0.15", 0}, {"7.0.15", "7.0.9", 1}, {"6.2.14", "7.0.0", -1}, {"7.2", "7.2.0", -1},
		{"10.0.0", "9.9.9", 1}, {"7.0.0-rc1", "7.0.0", 1},
	} {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
	var v serverVersions
	if got := v.lowest(); got != fallbackRedisVersion {
		t.Errorf("no version known: %q", got)
	}
	a, b, c := &server{}, &server{}, &server{}
	v.set(a, "7.2.4")
	v.set(b, "6.2.14")
	v.set(c, "7.0.15")
	v.set(b, "7.4.0") // upgraded
	if got := v.lowest(); got != "7.0.15" {
		t.Errorf("lowest = %q, want 7.0.15", got)
	}
}
