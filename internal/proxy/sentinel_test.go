package proxy

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

const sentinelPassword = "s3cret"

// sentinelPool starts a Sentinel-mode pool over tp's groups and sentinels.
func sentinelPool(t *testing.T, tp *testutil.Topology, sentinels []*testutil.Server) (*Proxy, string) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "alpha:\n  listen: 127.0.0.1:{{port}}\n  redis: true\n  timeout: 500\n  sentinel_heartbeat: 200\n")
	if tp.Password != "" {
		fmt.Fprintf(&b, "  redis_auth: %s\n", tp.Password)
	}
	b.WriteString("  sentinels:\n")
	for i, s := range sentinels {
		fmt.Fprintf(&b, "   - %s s%d\n", s.Addr, i)
	}
	b.WriteString("  groups:\n")
	for _, g := range tp.Groups {
		fmt.Fprintf(&b, "   - %s\n", g)
	}
	return startProxy(t, b.String())
}

// keysOfGroup returns n keys the pool places on group.
func keysOfGroup(px *Proxy, group string, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprintf("key:%d", i)
		if px.Pools()[0].pick([]byte(k)).name == group {
			out = append(out, k)
		}
	}
	return out
}

// groupAddr is the address the pool uses for group now ("" if none).
func groupAddr(px *Proxy, group string) string {
	if a := px.Pools()[0].serverNamed(group).addr.Load(); a != nil {
		return a.String()
	}
	return ""
}

// writeLog is what one writer saw: every write's time and outcome.
type writeLog struct {
	mu      sync.Mutex
	ok      []time.Time
	failed  []time.Time
	errs    map[string]int
	written map[string]string // key → value of each acknowledged write
}

// writer writes keys through the proxy every few milliseconds until stop,
// one request at a time, and records each outcome.
func writer(t *testing.T, addr string, keys []string, stop <-chan struct{}, wg *sync.WaitGroup) *writeLog {
	wl := &writeLog{errs: map[string]int{}, written: map[string]string{}}
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(conn)
	roundTrip := func(req string) (string, error) {
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write([]byte(req)); err != nil {
			return "", err
		}
		var b strings.Builder
		err := readRESP(r, &b)
		return b.String(), err
	}
	if got, err := roundTrip(cmd("AUTH", sentinelPassword)); got != "+OK\r\n" {
		t.Fatalf("AUTH: %q %v", got, err)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer conn.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			k, v := keys[i%len(keys)], fmt.Sprintf("v%d", i)
			got, err := roundTrip(cmd("SET", k, v))
			now := time.Now()
			wl.mu.Lock()
			switch {
			case err != nil:
				wl.failed = append(wl.failed, now)
				wl.errs["transport: "+err.Error()]++
			case got == "+OK\r\n":
				wl.ok = append(wl.ok, now)
				wl.written[k] = v
			default:
				wl.failed = append(wl.failed, now)
				wl.errs[strings.TrimSpace(got)]++
			}
			wl.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return wl
}

// TestSentinelFailover is the end-to-end failover test: two groups, each a
// master and a replica, three Sentinels (quorum 2, down-after 1 s), writes
// through the proxy to both groups while one master is killed. Writes to
// that group fail for at most down-after + the failover + 2 s and then
// succeed on the promoted replica; the other group is never interrupted;
// keys never change group. Then the Sentinel the proxy talks to is killed
// and a second failover is still followed.
func TestSentinelFailover(t *testing.T) {
	tp := testutil.StartSentinelTopology(t, []string{"shard-b", "shard-a"}, 3, testutil.WithPassword(sentinelPassword))
	px, addr := sentinelPool(t, tp, tp.Sentinels)
	pool := px.Pools()[0]
	if !waitFor(5*time.Second, func() bool {
		return groupAddr(px, "shard-a") == tp.MasterAddr("shard-a") && groupAddr(px, "shard-b") == tp.MasterAddr("shard-b")
	}) {
		t.Fatalf("masters not found: shard-a %q shard-b %q", groupAddr(px, "shard-a"), groupAddr(px, "shard-b"))
	}
	// Groups are the ring's servers, sorted, weight 1.
	if pool.servers[0].name != "shard-a" || pool.servers[1].name != "shard-b" {
		t.Errorf("ring servers %s, %s", pool.servers[0].name, pool.servers[1].name)
	}

	keysA, keysB := keysOfGroup(px, "shard-a", 50), keysOfGroup(px, "shard-b", 50)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	logA := writer(t, addr, keysA, stop, &wg)
	logB := writer(t, addr, keysB, stop, &wg)
	time.Sleep(300 * time.Millisecond)

	oldMaster := tp.Master("shard-a")
	killed := time.Now()
	oldMaster.Kill()
	// When the Sentinels promote the replica, as they report it.
	var switched time.Time
	if !waitFor(15*time.Second, func() bool { return tp.MasterAddr("shard-a") != oldMaster.Addr }) {
		close(stop)
		wg.Wait()
		t.Fatal("the sentinels did not fail shard-a over")
	}
	switched = time.Now()
	newMaster := tp.MasterAddr("shard-a")
	if !waitFor(5*time.Second, func() bool { return groupAddr(px, "shard-a") == newMaster }) {
		t.Errorf("the proxy still uses %s for shard-a, the sentinels say %s", groupAddr(px, "shard-a"), newMaster)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	failover := switched.Sub(killed)
	budget := failover + 2*time.Second
	logA.mu.Lock()
	var lastFail time.Time
	for _, f := range logA.failed {
		if f.After(lastFail) {
			lastFail = f
		}
	}
	outage := time.Duration(0)
	if !lastFail.IsZero() {
		outage = lastFail.Sub(killed)
	}
	okAfter := 0
	for _, o := range logA.ok {
		if o.After(lastFail) {
			okAfter++
		}
	}
	t.Logf("shard-a: failover took %v (down-after %v included); writes failed for %v (%d failures: %v); %d writes succeeded after",
		failover.Round(time.Millisecond), testutil.TopologyDownAfter, outage.Round(time.Millisecond), len(logA.failed), logA.errs, okAfter)
	if outage > budget {
		t.Errorf("writes to shard-a failed for %v, more than the failover (%v) + 2 s", outage, failover)
	}
	if okAfter == 0 {
		t.Error("no write to shard-a succeeded after the failover")
	}
	logA.mu.Unlock()
	logB.mu.Lock()
	if len(logB.failed) > 0 || len(logB.ok) == 0 {
		t.Errorf("shard-b was interrupted: %d failures %v, %d successes", len(logB.failed), logB.errs, len(logB.ok))
	}
	logB.mu.Unlock()

	// Keys never change group: what the proxy acknowledged last is on the
	// group's current master.
	for group, wl := range map[string]*writeLog{"shard-a": logA, "shard-b": logB} {
		master := tp.MasterAddr(group)
		for k, v := range wl.written {
			got, err := testutil.RedisDo(master, sentinelPassword, "GET", k)
			if err != nil || got != v {
				t.Errorf("%s on %s's master %s: %v %v, want %q", k, group, master, got, err, v)
				break
			}
		}
	}
	if got := pool.serverNamed("shard-a").stats.failovers.Load(); got != 1 {
		t.Errorf("shard-a server_failover = %d, want 1", got)
	}
	if got := pool.serverNamed("shard-b").stats.failovers.Load(); got != 0 {
		t.Errorf("shard-b server_failover = %d, want 0", got)
	}

	// The proxy's Sentinel goes away mid-run; a later failover is still
	// followed through another one.
	tp.Sentinels[0].Kill()
	before := tp.MasterAddr("shard-b")
	tp.Failover("shard-b")
	if !waitFor(15*time.Second, func() bool {
		a := tp.MasterAddr("shard-b")
		return a != before && groupAddr(px, "shard-b") == a
	}) {
		t.Fatalf("second failover not followed: sentinels say %s, proxy uses %s", tp.MasterAddr("shard-b"), groupAddr(px, "shard-b"))
	}
	c := dialRaw(t, addr)
	c.roundTrip(cmd("AUTH", sentinelPassword))
	if !waitFor(5*time.Second, func() bool { return c.roundTrip(cmd("SET", keysB[0], "after")) == "+OK\r\n" }) {
		t.Error("writes to shard-b fail after the second failover")
	}
}

// TestSentinelStartsWithASentinelDown: the first Sentinel of the list is
// down when the proxy starts; the next one names the masters. Until a
// group's master is known, its requests get a clear error.
func TestSentinelStartsWithASentinelDown(t *testing.T) {
	tp := testutil.StartSentinelTopology(t, []string{"solo"}, 2, testutil.WithPassword(sentinelPassword))
	tp.Sentinels[0].Kill()
	px, addr := sentinelPool(t, tp, tp.Sentinels)
	if !waitFor(10*time.Second, func() bool { return groupAddr(px, "solo") == tp.MasterAddr("solo") }) {
		t.Fatalf("master not found with the first sentinel down: %q", groupAddr(px, "solo"))
	}
	c := dialRaw(t, addr)
	c.roundTrip(cmd("AUTH", sentinelPassword))
	if got := c.roundTrip(cmd("SET", "k", "v")); got != "+OK\r\n" {
		t.Errorf("SET: %q", got)
	}
	info := c.roundTrip(cmd("INFO", "shardproxy"))
	if !strings.Contains(info, "server0:name=solo,addr="+tp.MasterAddr("solo")+",state=up") {
		t.Errorf("INFO:\n%s", info)
	}
}

// TestSentinelNoMasterYet: a group no Sentinel knows is never served, with
// an error that names it, while the other groups work.
func TestSentinelNoMasterYet(t *testing.T) {
	tp := testutil.StartSentinelTopology(t, []string{"known"}, 1)
	yaml := fmt.Sprintf("alpha:\n  listen: 127.0.0.1:{{port}}\n  redis: true\n  sentinel_heartbeat: 100\n  sentinels:\n   - %s\n  groups:\n   - known\n   - unknown\n", tp.Sentinels[0].Addr)
	px, addr := startProxy(t, yaml)
	if !waitFor(5*time.Second, func() bool { return groupAddr(px, "known") != "" }) {
		t.Fatal("known group not served")
	}
	c := dialRaw(t, addr)
	for _, k := range []string{keysOfGroup(px, "unknown", 1)[0], keysOfGroup(px, "known", 1)[0]} {
		got := c.roundTrip(cmd("SET", k, "v"))
		if px.Pools()[0].pick([]byte(k)).name == "unknown" {
			if got != "-ERR No master known for Sentinel group 'unknown' yet\r\n" {
				t.Errorf("SET to the unknown group: %q", got)
			}
		} else if got != "+OK\r\n" {
			t.Errorf("SET to the known group: %q", got)
		}
	}
	if got := px.Pools()[0].serverNamed("unknown").stats.err.Load(); got != 0 {
		t.Errorf("an unknown master counted as %d server errors", got)
	}
}
