package sentinel

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/config"
	"github.com/shardproxy/shardproxy/internal/testutil"
)

// The tests run against real redis-server and redis-sentinel processes
// (testutil.StartSentinelTopology), with a short heartbeat so that they take
// seconds; the Sentinels' own timings are testutil's. Bounds on how fast
// something happens are loose (a second where milliseconds are the rule),
// because the tests share two cores with other race-enabled test binaries;
// the measured times are logged.
const (
	testHeartbeat = 200 * time.Millisecond
	testTimeout   = DefaultTimeout
	testPool      = "test" // so the connections are named shardproxy-test
)

// sentinelServers makes config entries of "host:port" addresses.
func sentinelServers(addrs ...string) []config.Server {
	var out []config.Server
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		p, _ := strconv.Atoi(port)
		out = append(out, config.Server{Address: config.Address{Network: "tcp", Host: host, Port: p}, Weight: 1})
	}
	return out
}

// addrs returns the servers' addresses.
func addrs(servers []*testutil.Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.Addr)
	}
	return out
}

// watched is a running Watcher and the events it reported.
type watched struct {
	*Watcher
	t      *testing.T
	events chan Event
}

// watch starts a Watcher on the sentinels at addrs, closed when the test
// ends. Its onChange checks the promises made about onChange: one call at a
// time, no lock held (it calls Master), never the same address twice in a
// row for a group.
func watch(t *testing.T, sentinels []string, groups []string, modify ...func(*Config)) *watched {
	t.Helper()
	cfg := Config{
		Pool:        testPool,
		Sentinels:   sentinelServers(sentinels...),
		Groups:      groups,
		Heartbeat:   testHeartbeat,
		DialTimeout: testTimeout,
		Logger:      slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, m := range modify {
		m(&cfg)
	}
	wt := &watched{t: t, events: make(chan Event, 64)}
	var inCall atomic.Int32
	last := make(map[string]string) // owned by onChange, which is never concurrent
	w, err := New(cfg, func(e Event) {
		if inCall.Add(1) != 1 {
			t.Errorf("onChange called concurrently with itself: %+v", e)
		}
		defer inCall.Add(-1)
		if last[e.Group] == e.Addr {
			t.Errorf("%s reported twice in a row: %+v", e.Addr, e)
		}
		if e.OldAddr != last[e.Group] {
			t.Errorf("event %+v: OldAddr is not the previous address %q", e, last[e.Group])
		}
		last[e.Group] = e.Addr
		if addr, ok := wt.Watcher.Master(e.Group); !ok || addr != e.Addr {
			t.Errorf("in onChange(%+v), Master = %q, %v", e, addr, ok)
		}
		select {
		case wt.events <- e:
		default:
			t.Errorf("event channel full, dropped %+v", e)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	wt.Watcher = w
	w.Start()
	t.Cleanup(w.Close)
	return wt
}

// next returns the next event, failing the test if none comes within d.
func (wt *watched) next(d time.Duration) Event {
	wt.t.Helper()
	select {
	case e := <-wt.events:
		return e
	case <-time.After(d):
		wt.t.Fatalf("no event within %v", d)
		return Event{}
	}
}

// none fails the test if an event comes within d.
func (wt *watched) none(d time.Duration) {
	wt.t.Helper()
	select {
	case e := <-wt.events:
		wt.t.Errorf("unexpected event %+v", e)
	case <-time.After(d):
	}
}

// ready waits for Ready, failing the test after d.
func (wt *watched) ready(d time.Duration) {
	wt.t.Helper()
	select {
	case <-wt.Ready():
	case <-time.After(d):
		wt.t.Fatalf("not ready within %v", d)
	}
}

// master checks Master(group).
func (wt *watched) master(group, want string) {
	wt.t.Helper()
	if got, ok := wt.Master(group); got != want || ok != (want != "") {
		wt.t.Errorf("Master(%q) = %q, %v; want %q", group, got, ok, want)
	}
}

// subscribedTo reports whether a Watcher of testPool is subscribed on the
// Sentinel at addr, as its CLIENT LIST shows.
func subscribedTo(addr string) bool {
	v, err := testutil.RedisDo(addr, "", "CLIENT", "LIST")
	list, _ := v.(string)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(list, "\n") {
		if strings.Contains(line, " name=shardproxy-"+testPool+" ") && strings.Contains(line, " sub=1 ") {
			return true
		}
	}
	return false
}

// waitUntil polls cond until it holds, failing the test after d, and
// returns how long it took.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("gave up after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// do sends a command with testutil.RedisDo, failing the test on error.
func do(t *testing.T, addr, auth string, args ...string) any {
	t.Helper()
	v, err := testutil.RedisDo(addr, auth, args...)
	if err != nil {
		t.Fatalf("%s %q: %v", addr, args, err)
	}
	return v
}

// TestDiscovery: every group's master is found, verified, reported once
// with the Sentinel that named it, and the Watcher stays on its Sentinel
// across heartbeats (its subscription answers PING).
func TestDiscovery(t *testing.T) {
	t.Parallel()
	tp := testutil.StartSentinelTopology(t, []string{"alpha", "beta"}, 3)
	start := time.Now()
	w := watch(t, addrs(tp.Sentinels), tp.Groups)
	w.ready(5 * time.Second)
	t.Logf("ready in %v", time.Since(start))
	got := map[string]Event{}
	for range 2 {
		e := w.next(time.Second)
		got[e.Group] = e
	}
	for _, g := range tp.Groups {
		want := Event{Group: g, Addr: tp.Master(g).Addr, Reason: ReasonDiscovered, Sentinel: tp.Sentinels[0].Addr}
		if got[g] != want {
			t.Errorf("event for %s = %+v, want %+v", g, got[g], want)
		}
		w.master(g, want.Addr)
	}
	w.master("gamma", "")
	w.none(5 * testHeartbeat)
	if !subscribedTo(tp.Sentinels[0].Addr) {
		t.Errorf("after %d heartbeats the watcher is no longer subscribed on the first sentinel", 5)
	}
}

// switchAnnouncements subscribes to +switch-master on the Sentinel at addr
// and sends the time of each announcement for group.
func switchAnnouncements(t *testing.T, addr, group string) <-chan time.Time {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprint(c, "SUBSCRIBE +switch-master\r\n"); err != nil {
		t.Fatal(err)
	}
	at := make(chan time.Time, 8)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		c.Close()
		wg.Wait()
	})
	wg.Go(func() {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if strings.HasPrefix(line, group+" ") {
				select {
				case at <- time.Now():
				default:
				}
			}
		}
	})
	// The subscription is confirmed by "*3 $9 subscribe ...", read above;
	// a PING round trip would be overkill for a test that waits seconds.
	return at
}

// TestFailoverKillMaster: a SIGKILLed master is replaced by its promoted
// replica as soon as the Watcher's Sentinel announces +switch-master; the
// other group sees nothing. The heartbeat is long, so only the
// subscription can deliver the switch.
func TestFailoverKillMaster(t *testing.T) {
	t.Parallel()
	tp := testutil.StartSentinelTopology(t, []string{"alpha", "beta"}, 3)
	w := watch(t, addrs(tp.Sentinels), tp.Groups, func(c *Config) { c.Heartbeat = time.Minute })
	w.ready(5 * time.Second)
	w.next(time.Second)
	w.next(time.Second)
	oldMaster, replica := tp.Master("alpha"), tp.Replica("alpha")
	betaMaster := tp.Master("beta").Addr
	announced := switchAnnouncements(t, tp.Sentinels[0].Addr, "alpha")

	killed := time.Now()
	oldMaster.Kill()
	// down-after, agreement, election and promotion take 2 to 3 s; an
	// election that fails (a split vote) is retried after twice the
	// failover-timeout, which happens in a few runs out of ten (~6 s).
	e := w.next(testutil.TopologyDownAfter + 3*testutil.TopologyFailoverTimeout + 5*time.Second)
	got := time.Now()
	want := Event{Group: "alpha", Addr: replica.Addr, OldAddr: oldMaster.Addr, Reason: ReasonSwitch, Sentinel: tp.Sentinels[0].Addr}
	if e != want {
		t.Fatalf("event %+v, want %+v", e, want)
	}
	select {
	case at := <-announced:
		t.Logf("master killed → sentinel announced in %v → watcher reported %v later", at.Sub(killed), got.Sub(at))
		if got.Sub(at) > time.Second {
			t.Errorf("watcher reported the switch %v after its sentinel announced it", got.Sub(at))
		}
	case <-time.After(time.Second):
		t.Errorf("the test's own subscription saw no +switch-master for alpha")
	}
	w.master("alpha", replica.Addr)
	w.master("beta", betaMaster)
	w.none(500 * time.Millisecond)
}

// TestSentinelLost: the Watcher leaves a SIGKILLed Sentinel at once and a
// SIGSTOPped one within a heartbeat and a timeout, each time for the next
// of the list, and follows a failover through the third.
func TestSentinelLost(t *testing.T) {
	t.Parallel()
	tp := testutil.StartSentinelTopology(t, []string{"g"}, 3)
	s := tp.Sentinels
	replica := tp.Replica("g").Addr
	w := watch(t, addrs(s), tp.Groups)
	w.ready(5 * time.Second)
	w.next(time.Second)
	waitUntil(t, 2*time.Second, "a subscription on sentinel 0", func() bool { return subscribedTo(s[0].Addr) })

	s[0].Kill()
	d := waitUntil(t, 5*time.Second, "a subscription on sentinel 1", func() bool { return subscribedTo(s[1].Addr) })
	t.Logf("moved from the killed sentinel in %v", d)

	s[1].Pause()
	d = waitUntil(t, 5*time.Second, "a subscription on sentinel 2", func() bool { return subscribedTo(s[2].Addr) })
	t.Logf("moved from the paused sentinel in %v (heartbeat %v, timeout %v)", d, testHeartbeat, testTimeout)

	start := time.Now()
	do(t, s[2].Addr, "", "SENTINEL", "FAILOVER", "g")
	e := w.next(10 * time.Second)
	t.Logf("SENTINEL FAILOVER → event in %v: %+v", time.Since(start), e)
	// If the heartbeat asks between the promotion and the announcement,
	// it finds the switch first: both are right.
	if e.Group != "g" || e.Addr != replica || e.Sentinel != s[2].Addr || (e.Reason != ReasonSwitch && e.Reason != ReasonHeartbeat) {
		t.Errorf("event %+v, want the switch of g to %s through %s", e, replica, s[2].Addr)
	}
	w.master("g", replica)
	s[1].Resume()
}

// TestFirstSentinelDown: a dead Sentinel at the head of the list does not
// delay discovery through the next one.
func TestFirstSentinelDown(t *testing.T) {
	t.Parallel()
	tp := testutil.StartSentinelTopology(t, []string{"a", "b"}, 2)
	tp.Sentinels[0].Kill()
	start := time.Now()
	w := watch(t, addrs(tp.Sentinels), tp.Groups)
	w.ready(2 * time.Second)
	t.Logf("ready in %v", time.Since(start))
	for range 2 {
		e := w.next(time.Second)
		if e.Sentinel != tp.Sentinels[1].Addr || e.Reason != ReasonDiscovered {
			t.Errorf("event %+v, want one discovered through %s", e, tp.Sentinels[1].Addr)
		}
	}
	w.master("a", tp.Master("a").Addr)
	w.master("b", tp.Master("b").Addr)
}

// TestAuth: with the pool's redis_auth the masters of a password-protected
// deployment are verified; without it, or with a wrong one, they are not,
// and the group stays unserved.
func TestAuth(t *testing.T) {
	t.Parallel()
	tp := testutil.StartSentinelTopology(t, []string{"g"}, 1, testutil.WithPassword("s3cret"))
	master := tp.Master("g").Addr
	good := watch(t, addrs(tp.Sentinels), tp.Groups, func(c *Config) { c.Auth = "s3cret" })
	none := watch(t, addrs(tp.Sentinels), tp.Groups)
	wrong := watch(t, addrs(tp.Sentinels), tp.Groups, func(c *Config) { c.Auth = "nope" })
	good.ready(3 * time.Second)
	if e := good.next(time.Second); e.Addr != master || e.Reason != ReasonDiscovered {
		t.Errorf("event %+v, want %s discovered", e, master)
	}
	none.none(3 * testHeartbeat)
	wrong.none(testHeartbeat)
	none.master("g", "")
	wrong.master("g", "")
}

// TestCheckMaster: the ROLE check accepts a master and nothing else.
func TestCheckMaster(t *testing.T) {
	t.Parallel()
	tp := testutil.StartSentinelTopology(t, []string{"g"}, 1, testutil.WithPassword("s3cret"))
	master, replica := tp.Master("g").Addr, tp.Replica("g").Addr
	ctx := t.Context()
	for _, tc := range []struct {
		name, addr, auth, err string
	}{
		{"master", master, "s3cret", ""},
		{"replica", replica, "s3cret", `not a master: ROLE says "slave"`},
		{"sentinel", tp.Sentinels[0].Addr, "", `not a master: ROLE says "sentinel"`},
		{"no password", master, "", "ROLE: NOAUTH Authentication required."},
		{"wrong password", master, "nope", "AUTH: WRONGPASS invalid username-password pair or user is disabled.; ROLE: NOAUTH Authentication required."},
	} {
		err := checkMaster(ctx, tc.addr, tc.auth, testTimeout)
		if errText(err) != tc.err {
			t.Errorf("%s: checkMaster = %v, want %q", tc.name, err, tc.err)
		}
	}
	// A password the server does not need is harmless, as for the proxy's
	// own connections.
	plain := testutil.StartRedis(t)
	if err := checkMaster(ctx, plain.Addr, "unneeded", testTimeout); err != nil {
		t.Errorf("master without requirepass, with Auth: %v", err)
	}
	plain.Kill()
	if err := checkMaster(ctx, plain.Addr, "", testTimeout); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("dead server: %v, want connection refused", err)
	}
}

// TestUnknownGroup: a group the Sentinels do not monitor gets no event and
// no master, and does not disturb the others.
func TestUnknownGroup(t *testing.T) {
	t.Parallel()
	tp := testutil.StartSentinelTopology(t, []string{"g"}, 1)
	w := watch(t, addrs(tp.Sentinels), []string{"g", "nope"})
	if e := w.next(3 * time.Second); e.Group != "g" {
		t.Errorf("event %+v, want one for g", e)
	}
	w.none(5 * testHeartbeat)
	w.master("g", tp.Master("g").Addr)
	w.master("nope", "")
	select {
	case <-w.Ready():
		t.Error("Ready with a group that has no master")
	default:
	}
}

// TestHeartbeat: an address change that no +switch-master announced is
// found by the heartbeat, and taken only once ROLE says master. The
// Sentinel is made to name the replica by re-monitoring the group, which
// publishes nothing.
func TestHeartbeat(t *testing.T) {
	t.Parallel()
	tp := testutil.StartSentinelTopology(t, []string{"g"}, 1)
	s := tp.Sentinels[0].Addr
	master, replica := tp.Master("g"), tp.Replica("g")
	w := watch(t, []string{s}, tp.Groups)
	w.ready(3 * time.Second)
	w.next(time.Second)

	do(t, s, "", "SENTINEL", "REMOVE", "g")
	w.none(3 * testHeartbeat) // a group the sentinel forgot keeps its master
	w.master("g", master.Addr)
	do(t, s, "", "SENTINEL", "MONITOR", "g", "127.0.0.1", strconv.Itoa(replica.Port), "1")
	w.none(3 * testHeartbeat) // the replica is not a master
	w.master("g", master.Addr)
	late := watch(t, []string{s}, tp.Groups) // started while the sentinel names a replica
	late.none(3 * testHeartbeat)
	late.master("g", "")

	start := time.Now()
	do(t, replica.Addr, "", "REPLICAOF", "NO", "ONE")
	e := w.next(2 * time.Second)
	t.Logf("promotion seen by the heartbeat in %v", time.Since(start))
	if want := (Event{Group: "g", Addr: replica.Addr, OldAddr: master.Addr, Reason: ReasonHeartbeat, Sentinel: s}); e != want {
		t.Errorf("event %+v, want %+v", e, want)
	}
	if e := late.next(2 * time.Second); e.Addr != replica.Addr || e.Reason != ReasonDiscovered {
		t.Errorf("late watcher: event %+v, want %s discovered", e, replica.Addr)
	}
}

// TestNoBusyLoop: when no Sentinel of the list works (here a plain Redis
// server, which refuses SENTINEL, and a closed port), each is tried about
// once per heartbeat, not in a tight loop.
func TestNoBusyLoop(t *testing.T) {
	t.Parallel()
	notSentinel := testutil.StartRedis(t)
	closed := testutil.StartRedis(t)
	closed.Kill()
	connections := func() int {
		info, _ := do(t, notSentinel.Addr, "", "INFO", "stats").(string)
		_, rest, _ := strings.Cut(info, "total_connections_received:")
		n, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(rest, "\n", 2)[0]))
		return n
	}
	before := connections()
	const heartbeat = 300 * time.Millisecond
	w := watch(t, []string{notSentinel.Addr, closed.Addr}, []string{"g"}, func(c *Config) { c.Heartbeat = heartbeat })
	const span = 1500 * time.Millisecond
	time.Sleep(span)
	w.Close()
	// Two connections per attempt (commands and subscription), at most one
	// attempt per heartbeat, plus the first; and INFO's own connections.
	n := connections() - before - 1
	t.Logf("%d connections to a Redis listed as a sentinel in %v", n, span)
	if limit := 2 * (int(span/heartbeat) + 2); n > limit || n < 2 {
		t.Errorf("%d connections in %v, want 2 to %d", n, span, limit)
	}
	w.master("g", "")
}

// TestClosePrompt: Close returns at once, and leaves no goroutine behind,
// even while the Watcher waits on a stopped master (ROLE check) or a
// stopped Sentinel (heartbeat), with a timeout far longer than the test
// allows. Not parallel: it counts the process's goroutines.
func TestClosePrompt(t *testing.T) {
	tp := testutil.StartSentinelTopology(t, []string{"a", "b"}, 2)
	before := runtime.NumGoroutine()
	long := func(c *Config) { c.DialTimeout = 10 * time.Second }

	// A stopped master: the Watcher is waiting for its ROLE. Short enough
	// that the Sentinels do not fail it over (down-after is 1 s).
	m := tp.Master("a")
	m.Pause()
	w := watch(t, addrs(tp.Sentinels), tp.Groups, long)
	time.Sleep(300 * time.Millisecond)
	closeQuickly(t, w.Watcher)
	m.Resume()
	noLeak(t, before)

	// A stopped Sentinel: the Watcher is waiting for its heartbeat reply.
	w = watch(t, addrs(tp.Sentinels), tp.Groups, long)
	w.ready(3 * time.Second)
	tp.Sentinels[0].Pause()
	time.Sleep(2 * testHeartbeat)
	closeQuickly(t, w.Watcher)
	tp.Sentinels[0].Resume()
	noLeak(t, before)
}

// closeQuickly calls Close, failing the test if it takes more than a
// second: a tenth of the Watcher's timeout in TestClosePrompt.
func closeQuickly(t *testing.T, w *Watcher) {
	t.Helper()
	start := time.Now()
	w.Close()
	d := time.Since(start)
	t.Logf("Close took %v", d)
	if d > time.Second {
		t.Errorf("Close took %v", d)
	}
}

// noLeak waits up to two seconds for the number of goroutines to fall back
// to before, failing the test with every stack if it does not.
func noLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHungCandidateDelaysOnlyItsGroup: the ROLE checks of one refresh run
// in parallel, so a master candidate that accepts but never answers (here a
// stopped redis-server) does not hold back the discovery of the groups
// sorted after it, which used to wait one timeout per hung group before.
func TestHungCandidateDelaysOnlyItsGroup(t *testing.T) {
	t.Parallel()
	tp := testutil.StartSentinelTopology(t, []string{"a", "b"}, 1)
	hung := tp.Master("a")
	hung.Pause()
	resumed := false
	defer func() {
		if !resumed {
			hung.Resume()
		}
	}()
	const timeout = 3 * time.Second
	start := time.Now()
	w := watch(t, addrs(tp.Sentinels), tp.Groups, func(c *Config) { c.DialTimeout = timeout })
	e := w.next(timeout)
	took := time.Since(start)
	t.Logf("b discovered in %v while a's candidate hangs", took)
	if e.Group != "b" || e.Addr != tp.Master("b").Addr {
		t.Fatalf("event %+v, want b's master %s", e, tp.Master("b").Addr)
	}
	if took > timeout/2 {
		t.Errorf("b waited %v, as if behind a's check (timeout %v)", took, timeout)
	}
	w.master("a", "")
	hung.Resume()
	resumed = true
	// a is served once its master answers again, or once the Sentinel
	// has promoted its replica in the meantime.
	e = w.next(3 * timeout)
	if e.Group != "a" || (e.Addr != hung.Addr && e.Addr != tp.Replica("a").Addr) {
		t.Errorf("event %+v, want a's master or replica", e)
	}
}
