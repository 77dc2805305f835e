package proxy

import (
	"fmt"
	"regexp"
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
	for _, want := range []string{"# Server\r\n", "shardproxy_version:", "redis_mode:proxy\r\n",
		"\r\n\r\n# Clients\r\nconnected_clients:1\r\n", "# Shardproxy\r\npool:alpha\r\n", "servers:3\r\nservers_up:3\r\n",
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
