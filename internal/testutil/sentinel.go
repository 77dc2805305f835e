package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The timings of a topology's Sentinels. A SIGKILLed master is failed over
// in about DownAfter plus two or three seconds of agreement, election and
// promotion; a failed election is retried after twice FailoverTimeout.
const (
	TopologyDownAfter       = 1000 * time.Millisecond
	TopologyFailoverTimeout = 3000 * time.Millisecond
)

// topologyReadyTimeout bounds the wait for the Sentinels to know each other
// and the replicas.
const topologyReadyTimeout = 15 * time.Second

// Topology is a Redis Sentinel deployment on loopback: for each group a
// master and one replica, and Sentinels that all monitor every group.
// Build it with StartSentinelTopology; every process is stopped when the
// test ends. Its methods fail the test they were built for, so call them
// from that test's goroutine.
type Topology struct {
	// Immutable once StartSentinelTopology returns.

	Groups    []string
	Sentinels []*Server
	Password  string // requirepass of every Redis server; "" if none

	t     testing.TB
	nodes map[string][2]*Server // per group: the first master, its replica
}

// TopologyOption changes what StartSentinelTopology builds.
type TopologyOption func(*Topology)

// WithPassword protects every Redis server with requirepass, and gives
// replicas the masterauth and Sentinels the auth-pass to reach them.
// Sentinels themselves stay unprotected.
func WithPassword(password string) TopologyOption {
	return func(tp *Topology) { tp.Password = password }
}

// StartSentinelTopology starts, for each group, a master and a replica of
// it, then n Sentinels each monitoring every group with quorum 2 (1 when n
// is 1), down-after-milliseconds TopologyDownAfter, failover-timeout
// TopologyFailoverTimeout and parallel-syncs 1, and returns once every
// Sentinel knows every other Sentinel and sees each replica connected to
// its master, so that a failover can happen at once.
//
// To be ready in a second rather than after Sentinel's periodic discovery
// (hello messages every 2 s, INFO every 10 s), each Sentinel's
// configuration already names its own myid, the replicas (known-replica)
// and the other Sentinels (known-sentinel), and replicas are in sync
// before the first Sentinel starts.
func StartSentinelTopology(t testing.TB, groups []string, n int, opts ...TopologyOption) *Topology {
	t.Helper()
	if len(groups) == 0 || n < 1 {
		t.Fatalf("StartSentinelTopology: want at least one group and one sentinel, got %d and %d", len(groups), n)
	}
	tp := &Topology{Groups: slices.Clone(groups), t: t, nodes: make(map[string][2]*Server)}
	for _, o := range opts {
		o(tp)
	}
	redisLines := []string{"repl-diskless-sync-delay 0"}
	if tp.Password != "" {
		redisLines = append(redisLines, "requirepass "+tp.Password, "masterauth "+tp.Password)
	}
	for _, g := range groups {
		m := StartRedis(t, redisLines...)
		r := StartRedis(t, append(slices.Clone(redisLines), "replicaof 127.0.0.1 "+strconv.Itoa(m.Port))...)
		tp.nodes[g] = [2]*Server{m, r}
	}
	deadline := time.Now().Add(topologyReadyTimeout)
	for _, g := range groups {
		r := tp.nodes[g][1]
		tp.waitFor(deadline, fmt.Sprintf("replica %s of group %s in sync", r.Addr, g), func() (bool, string) {
			v, err := RedisDo(r.Addr, tp.Password, "INFO", "replication")
			info, _ := v.(string)
			return err == nil && strings.Contains(info, "master_link_status:up"), fmt.Sprint(info, err)
		})
	}

	ports := make([]int, n)
	ids := make([]string, n)
	for i := range n {
		ports[i] = FreePort(t)
		ids[i] = randomID()
	}
	quorum := min(2, n)
	for i := range n {
		var lines []string
		for _, g := range groups {
			m, r := tp.nodes[g][0], tp.nodes[g][1]
			lines = append(lines,
				fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d %d", g, m.Port, quorum),
				fmt.Sprintf("sentinel down-after-milliseconds %s %d", g, TopologyDownAfter.Milliseconds()),
				fmt.Sprintf("sentinel failover-timeout %s %d", g, TopologyFailoverTimeout.Milliseconds()),
				fmt.Sprintf("sentinel parallel-syncs %s 1", g),
				fmt.Sprintf("sentinel known-replica %s 127.0.0.1 %d", g, r.Port))
			if tp.Password != "" {
				lines = append(lines, fmt.Sprintf("sentinel auth-pass %s %s", g, tp.Password))
			}
			for j := range n {
				if j != i {
					lines = append(lines, fmt.Sprintf("sentinel known-sentinel %s 127.0.0.1 %d %s", g, ports[j], ids[j]))
				}
			}
		}
		lines = append(lines, "sentinel myid "+ids[i])
		tp.Sentinels = append(tp.Sentinels, startSentinel(t, ports[i], lines))
	}

	for _, s := range tp.Sentinels {
		for _, g := range groups {
			tp.waitFor(deadline, fmt.Sprintf("sentinel %s to know the replica and %d other sentinels of group %s", s.Addr, n-1, g), func() (bool, string) {
				return sentinelReady(s.Addr, g, n-1)
			})
		}
	}
	return tp
}

// sentinelReady reports whether the Sentinel at addr sees group's replica
// connected to its master, and peers other Sentinels connected; the
// second result describes what it sees.
func sentinelReady(addr, group string, peers int) (bool, string) {
	reps, err := RedisDo(addr, "", "SENTINEL", "replicas", group)
	if err != nil {
		return false, err.Error()
	}
	sens, err := RedisDo(addr, "", "SENTINEL", "sentinels", group)
	if err != nil {
		return false, err.Error()
	}
	repList, _ := reps.([]any)
	senList, _ := sens.([]any)
	seen := fmt.Sprintf("replicas %v; sentinels %v", reps, sens)
	if len(repList) != 1 || len(senList) != peers {
		return false, seen
	}
	if r := fieldMap(repList[0]); r["flags"] != "slave" || r["master-link-status"] != "ok" {
		return false, seen
	}
	for _, s := range senList {
		if fieldMap(s)["flags"] != "sentinel" {
			return false, seen
		}
	}
	return true, seen
}

// waitFor polls cond until it holds, failing the test with what cond last
// described if the deadline passes first.
func (tp *Topology) waitFor(deadline time.Time, what string, cond func() (bool, string)) {
	tp.t.Helper()
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tp.t.Fatalf("StartSentinelTopology: gave up waiting for %s; last seen: %s", what, seen)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// randomID returns a Sentinel run ID: 40 hex digits.
func randomID() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// MasterAddr returns the group's master, "127.0.0.1:port", as the first
// Sentinel that answers names it. It fails the test if none answers.
func (tp *Topology) MasterAddr(group string) string {
	tp.t.Helper()
	var errs []string
	for _, s := range tp.Sentinels {
		if !s.Running() {
			continue
		}
		v, err := RedisDo(s.Addr, "", "SENTINEL", "get-master-addr-by-name", group)
		arr, _ := v.([]any)
		if err != nil || len(arr) != 2 {
			errs = append(errs, fmt.Sprintf("%s: %v %v", s.Addr, v, err))
			continue
		}
		host, _ := arr[0].(string)
		port, _ := arr[1].(string)
		return net.JoinHostPort(host, port)
	}
	tp.t.Fatalf("no sentinel names the master of %s: %s", group, strings.Join(errs, "; "))
	return ""
}

// Master returns the group's current master, as the Sentinels name it.
func (tp *Topology) Master(group string) *Server {
	tp.t.Helper()
	addr := tp.MasterAddr(group)
	for _, s := range tp.nodes[group] {
		if s.Addr == addr {
			return s
		}
	}
	tp.t.Fatalf("the sentinels name %s as the master of %s, which is not one of its servers", addr, group)
	return nil
}

// Replica returns the group's server that is not its current master.
func (tp *Topology) Replica(group string) *Server {
	tp.t.Helper()
	m := tp.Master(group)
	if s := tp.nodes[group]; s[0] == m {
		return s[1]
	}
	return tp.nodes[group][0]
}

// Failover forces a failover of group with SENTINEL FAILOVER, sent to the
// first running Sentinel that accepts it, and returns at once: the
// Sentinels announce the new master a second or two later.
func (tp *Topology) Failover(group string) {
	tp.t.Helper()
	var errs []string
	for _, s := range tp.Sentinels {
		if !s.Running() {
			continue
		}
		v, err := RedisDo(s.Addr, "", "SENTINEL", "FAILOVER", group)
		if err == nil && v == "OK" {
			return
		}
		errs = append(errs, fmt.Sprintf("%s: %v %v", s.Addr, v, err))
	}
	tp.t.Fatalf("SENTINEL FAILOVER %s: %s", group, strings.Join(errs, "; "))
}
