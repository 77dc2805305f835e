package proxy

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// tagsOnServers returns n hash tags ("{t0}", …) whose keys pool p places
// on n different servers, in the order found.
func tagsOnServers(t *testing.T, p *Pool, n int) []string {
	t.Helper()
	seen := map[*server]bool{}
	var tags []string
	for i := 0; len(tags) < n && i < 10000; i++ {
		tag := fmt.Sprintf("{t%d}", i)
		if srv := p.pick([]byte(tag)); !seen[srv] {
			seen[srv] = true
			tags = append(tags, tag)
		}
	}
	if len(tags) < n {
		t.Fatalf("no %d hash tags on different servers", n)
	}
	return tags
}

// blockedOnServers returns the clients blocked on each server (INFO's
// blocked_clients), summed.
func blockedOnServers(t *testing.T, servers ...*testutil.Server) int {
	t.Helper()
	total := 0
	for _, s := range servers {
		info, err := testutil.RedisDo(s.Addr, "", "INFO", "clients")
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info.(string), "\r\n") {
			if v, ok := strings.CutPrefix(line, "blocked_clients:"); ok {
				n, _ := strconv.Atoi(v)
				total += n
			}
		}
	}
	return total
}

// waitBlocked waits until want clients are blocked on the servers.
func waitBlocked(t *testing.T, want int, servers ...*testutil.Server) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := blockedOnServers(t, servers...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clients blocked on the servers, want %d", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBlockingMatchesRedis: the blocking commands give a lone
// redis-server's replies, byte for byte, with the keys on three servers.
func TestBlockingMatchesRedis(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "  hash_tag: \"{}\"\n  timeout: 100\n", servers...)
	tags := tagsOnServers(t, px.Pools()[0], 3)
	a, b, c := tags[0]+"a", tags[1]+"b", tags[2]+"c"
	a2 := tags[0] + "a2"
	lone := startRedises(t, 1)[0]
	for _, target := range []struct{ name, addr string }{{"redis-server", lone.Addr}, {"proxy", addr}} {
		t.Run(target.name, func(t *testing.T) {
			cl := dialRaw(t, target.addr)
			steps := []struct{ req, want string }{
				{cmd("BLPOP", a, b, c, "0.05"), "*-1\r\n"},
				{cmd("RPUSH", b, "x", "y"), ":2\r\n"},
				{cmd("BLPOP", a, b, c, "0"), fmt.Sprintf("*2\r\n$%d\r\n%s\r\n$1\r\nx\r\n", len(b), b)},
				{cmd("BRPOP", a, b, c, "0"), fmt.Sprintf("*2\r\n$%d\r\n%s\r\n$1\r\ny\r\n", len(b), b)},
				{cmd("ZADD", c, "1", "m1", "2", "m2"), ":2\r\n"},
				{cmd("BZPOPMIN", a, c, "0"), fmt.Sprintf("*3\r\n$%d\r\n%s\r\n$2\r\nm1\r\n$1\r\n1\r\n", len(c), c)},
				{cmd("BZPOPMAX", a, b, c, "0"), fmt.Sprintf("*3\r\n$%d\r\n%s\r\n$2\r\nm2\r\n$1\r\n2\r\n", len(c), c)},
				{cmd("BZPOPMIN", a, c, "0.01"), "*-1\r\n"},
				{cmd("RPUSH", a, "1", "2", "3"), ":3\r\n"},
				{cmd("BLMPOP", "0", "2", b, a, "LEFT", "COUNT", "2"), fmt.Sprintf("*2\r\n$%d\r\n%s\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n", len(a), a)},
				{cmd("BLMPOP", "0", "2", b, a, "RIGHT"), fmt.Sprintf("*2\r\n$%d\r\n%s\r\n*1\r\n$1\r\n3\r\n", len(a), a)},
				{cmd("BLMPOP", "0.01", "2", b, a, "RIGHT"), "*-1\r\n"},
				{cmd("ZADD", b, "5", "z"), ":1\r\n"},
				{cmd("BZMPOP", "0", "3", a, c, b, "MIN"), fmt.Sprintf("*2\r\n$%d\r\n%s\r\n*1\r\n*2\r\n$1\r\nz\r\n$1\r\n5\r\n", len(b), b)},
				{cmd("BLPOP", a, b, c, "-1"), "-ERR timeout is negative\r\n"},
				{cmd("BLPOP", a, b, c, "x"), "-ERR timeout is not a float or out of range\r\n"},
				{cmd("SET", b, "s"), "+OK\r\n"},
				{cmd("BLPOP", a, b, c, "0"), "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"},
				{cmd("DEL", b), ":1\r\n"},
				// BRPOPLPUSH and BLMOVE: both keys on one server.
				{cmd("RPUSH", a, "m"), ":1\r\n"},
				{cmd("BRPOPLPUSH", a, a2, "0"), "$1\r\nm\r\n"},
				{cmd("BLMOVE", a2, a, "LEFT", "RIGHT", "0"), "$1\r\nm\r\n"},
				{cmd("BLMOVE", a2, a, "LEFT", "RIGHT", "0.01"), "*-1\r\n"},
				{cmd("LPOP", a), "$1\r\nm\r\n"},
				// Inside MULTI a blocking command does not block.
				{cmd("MULTI"), "+OK\r\n"},
				{cmd("BLPOP", a, "0"), "+QUEUED\r\n"},
				{cmd("EXEC"), "*1\r\n*-1\r\n"},
				// XREAD with BLOCK.
				{cmd("XADD", a2+"s", "1-1", "f", "v"), "$3\r\n1-1\r\n"},
				{cmd("XREAD", "BLOCK", "20", "STREAMS", a2+"s", "1-1"), "*-1\r\n"},
				{cmd("XREAD", "BLOCK", "0", "STREAMS", a2+"s", "0"), fmt.Sprintf("*1\r\n*2\r\n$%d\r\n%ss\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*2\r\n$1\r\nf\r\n$1\r\nv\r\n", len(a2)+1, a2)},
				{cmd("XREAD", "BLOCK", "x", "STREAMS", a2+"s", "0"), "-ERR timeout is not an integer or out of range\r\n"},
			}
			for i, st := range steps {
				if got := cl.roundTrip(st.req); got != st.want {
					t.Errorf("step %d %q: %q, want %q", i, st.req, got, st.want)
				}
			}
			// Requests pipelined after a blocking command run after it,
			// in order.
			cl.send(cmd("BLPOP", a, b, "0.05") + cmd("SET", a2+"k", "v") + cmd("GET", a2+"k"))
			for i, want := range []string{"*-1\r\n", "+OK\r\n", "$1\r\nv\r\n"} {
				if got := cl.readReply(); got != want {
					t.Errorf("pipelined reply %d: %q, want %q", i, got, want)
				}
			}
		})
	}
	if n := blockedOnServers(t, servers...); n != 0 {
		t.Errorf("%d clients still blocked on the servers", n)
	}
}

// TestBlockingTimeoutNotCut: the pool's timeout does not cut a block short;
// the command's own timeout ends it.
func TestBlockingTimeoutNotCut(t *testing.T) {
	servers := startRedises(t, 2)
	px, addr := redisPool(t, "  hash_tag: \"{}\"\n  timeout: 100\n", servers...)
	tags := tagsOnServers(t, px.Pools()[0], 2)
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ctx := context.Background()
	for _, keys := range [][]string{{tags[0] + "q"}, {tags[0] + "q", tags[1] + "q"}} {
		start := time.Now()
		_, err := rc.BLPop(ctx, time.Second, keys...).Result()
		took := time.Since(start)
		if err != redis.Nil {
			t.Errorf("BLPOP %v: %v, want redis.Nil", keys, err)
		}
		if took < 950*time.Millisecond || took > 2*time.Second {
			t.Errorf("BLPOP %v with timeout 1 s took %v", keys, took)
		}
	}
}

// TestBlockingWakeup: a client blocked on keys of three servers gets the
// element pushed to any of them, with the latency from push to pop, and no
// block is left on any server.
func TestBlockingWakeup(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "  hash_tag: \"{}\"\n", servers...)
	tags := tagsOnServers(t, px.Pools()[0], 3)
	keys := []string{tags[0] + "q", tags[1] + "q", tags[2] + "q"}
	ctx := context.Background()
	consumer := redis.NewClient(&redis.Options{Addr: addr})
	producer := redis.NewClient(&redis.Options{Addr: addr})
	defer consumer.Close()
	defer producer.Close()
	for round := range 30 {
		key := keys[round%3]
		got := make(chan []string, 1)
		go func() {
			v, err := consumer.BRPop(ctx, 0, keys...).Result()
			if err != nil {
				v = []string{"error", err.Error()}
			}
			got <- v
		}()
		waitBlocked(t, 3, servers...)
		pushed := time.Now()
		if err := producer.LPush(ctx, key, round).Err(); err != nil {
			t.Fatal(err)
		}
		v := <-got
		if round%10 == 0 {
			t.Logf("push to pop: %v", time.Since(pushed))
		}
		if len(v) != 2 || v[0] != key || v[1] != strconv.Itoa(round) {
			t.Fatalf("round %d: BRPOP %v, want [%s %d]", round, v, key, round)
		}
		waitBlocked(t, 0, servers...)
	}
	for _, k := range keys {
		if n := producer.LLen(ctx, k).Val(); n != 0 {
			t.Errorf("%s has %d elements left", k, n)
		}
	}
}

// TestBlockingNoLossNoDuplicate: consumers blocking over keys on three
// servers and producers pushing to them at random: every element is
// popped exactly once, whichever server's block wins.
func TestBlockingNoLossNoDuplicate(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "  hash_tag: \"{}\"\n", servers...)
	tags := tagsOnServers(t, px.Pools()[0], 3)
	keys := []string{tags[0] + "q", tags[1] + "q", tags[2] + "q"}
	const consumers, producers, perProducer = 20, 4, 500
	ctx := context.Background()
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc := redis.NewClient(&redis.Options{Addr: addr})
			defer rc.Close()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := rc.BLPop(ctx, time.Second, keys...).Result()
				if err == redis.Nil {
					continue
				}
				if err != nil {
					t.Errorf("BLPOP: %v", err)
					return
				}
				mu.Lock()
				seen[v[1]]++
				mu.Unlock()
			}
		}()
	}
	var pwg sync.WaitGroup
	for p := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			rc := redis.NewClient(&redis.Options{Addr: addr})
			defer rc.Close()
			for i := range perProducer {
				if err := rc.RPush(ctx, keys[(i*7+p)%3], fmt.Sprintf("%d-%d", p, i)).Err(); err != nil {
					t.Errorf("RPUSH: %v", err)
					return
				}
			}
		}()
	}
	pwg.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n == producers*perProducer || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(seen) != producers*perProducer {
		t.Errorf("%d elements popped, want %d", len(seen), producers*perProducer)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s popped %d times", v, n)
		}
	}
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	for _, k := range keys {
		if n := rc.LLen(ctx, k).Val(); n != 0 {
			t.Errorf("%s has %d elements left", k, n)
		}
	}
	t.Logf("pushed back: %d", px.Pools()[0].stats.pushedBack.Load())
	waitBlocked(t, 0, servers...)
}

// TestBlockingClientGone: a client that leaves while blocked, on one
// server or on three, does not swallow the next element pushed.
func TestBlockingClientGone(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "  hash_tag: \"{}\"\n", servers...)
	tags := tagsOnServers(t, px.Pools()[0], 3)
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	ctx := context.Background()
	for _, keys := range [][]string{{tags[0] + "g"}, {tags[0] + "g", tags[1] + "g", tags[2] + "g"}} {
		for _, kill := range []bool{false, true} {
			cl := dialRaw(t, addr)
			id := strings.TrimSpace(strings.TrimPrefix(cl.roundTrip(cmd("CLIENT", "ID")), ":"))
			cl.send(cmd(append(append([]string{"BLPOP"}, keys...), "0")...))
			waitBlocked(t, len(keys), servers...)
			if kill {
				if err := rc.ClientKillByFilter(ctx, "ID", id).Err(); err != nil {
					t.Fatal(err)
				}
			} else {
				cl.conn.Close()
			}
			waitBlocked(t, 0, servers...)
		}
		if err := rc.RPush(ctx, keys[len(keys)-1], "kept").Err(); err != nil {
			t.Fatal(err)
		}
		if v := rc.LRange(ctx, keys[len(keys)-1], 0, -1).Val(); len(v) != 1 || v[0] != "kept" {
			t.Errorf("%v after the blocked client left: %v", keys, v)
		}
		rc.Del(ctx, keys...)
	}
}

// TestBlockingLimit: past blocking_connections per server, a blocking
// command is refused at once; the blocked ones are unaffected.
func TestBlockingLimit(t *testing.T) {
	servers := startRedises(t, 1)
	_, addr := redisPool(t, "  blocking_connections: 50\n", servers...)
	const clients = 200
	ctx := context.Background()
	// 200 go-redis clients BLPOP an empty list at once: 50 block, the
	// others are refused at once with the documented error.
	type outcome struct {
		v   []string
		err error
		at  time.Duration
	}
	outcomes := make(chan outcome, clients)
	start := time.Now()
	for range clients {
		go func() {
			rc := redis.NewClient(&redis.Options{Addr: addr})
			defer rc.Close()
			v, err := rc.BLPop(ctx, 0, "lim").Result()
			outcomes <- outcome{v, err, time.Since(start)}
		}()
	}
	refused := 0
	for range clients - 50 {
		o := <-outcomes
		if o.err == nil || !strings.Contains(o.err.Error(), "has blocking_connections (50) clients blocked already") {
			t.Fatalf("BLPOP over the limit: %v %v, want the limit's error", o.v, o.err)
		}
		if o.at > 5*time.Second {
			t.Errorf("a refusal came after %v", o.at)
		}
		refused++
	}
	waitBlocked(t, 50, servers...)
	select {
	case o := <-outcomes:
		t.Fatalf("a 51st BLPOP ended: %v %v", o.v, o.err)
	case <-time.After(100 * time.Millisecond):
	}
	// The 50 blocked get one element each.
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	for i := range 50 {
		rc.RPush(ctx, "lim", i)
	}
	got := map[string]bool{}
	for range 50 {
		o := <-outcomes
		if o.err != nil || len(o.v) != 2 || got[o.v[1]] {
			t.Fatalf("blocked BLPOP: %v %v", o.v, o.err)
		}
		got[o.v[1]] = true
	}
	waitBlocked(t, 0, servers...)
	t.Logf("%d refused at once, 50 blocked then served", refused)
}

// TestBlockingServerFails: a server that dies under a blocked client
// answers it with one error.
func TestBlockingServerFails(t *testing.T) {
	servers := startRedises(t, 1)
	_, addr := redisPool(t, "", servers...)
	cl := dialRaw(t, addr)
	cl.send(cmd("BLPOP", "dead", "0"))
	waitBlocked(t, 1, servers...)
	servers[0].Kill()
	if got := cl.readReply(); !strings.HasPrefix(got, "-ERR ") {
		t.Errorf("blocked client got %q when its server died, want an error", got)
	}
}

// TestClientUnblock: CLIENT UNBLOCK with a proxy client ID, as in Redis.
func TestClientUnblock(t *testing.T) {
	servers := startRedises(t, 2)
	px, addr := redisPool(t, "  hash_tag: \"{}\"\n", servers...)
	tags := tagsOnServers(t, px.Pools()[0], 2)
	ctl := dialRaw(t, addr)
	for _, mode := range []struct{ arg, want string }{
		{"TIMEOUT", "*-1\r\n"},
		{"ERROR", "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"},
	} {
		cl := dialRaw(t, addr)
		id := strings.TrimSpace(strings.TrimPrefix(cl.roundTrip(cmd("CLIENT", "ID")), ":"))
		cl.send(cmd("BLPOP", tags[0]+"u", tags[1]+"u", "0"))
		waitBlocked(t, 2, servers...)
		if info := ctl.roundTrip(cmd("INFO", "clients")); !strings.Contains(info, "blocked_clients:1\r\n") {
			t.Errorf("INFO clients while one is blocked: %q", info)
		}
		if list := ctl.roundTrip(cmd("CLIENT", "LIST", "ID", id)); !strings.Contains(list, " flags=b ") || !strings.Contains(list, " cmd=blpop ") {
			t.Errorf("CLIENT LIST of a blocked client: %q", list)
		}
		if got := ctl.roundTrip(cmd("CLIENT", "UNBLOCK", id, mode.arg)); got != ":1\r\n" {
			t.Errorf("CLIENT UNBLOCK %s: %q", mode.arg, got)
		}
		if got := cl.readReply(); got != mode.want {
			t.Errorf("unblocked with %s: %q, want %q", mode.arg, got, mode.want)
		}
		if got := ctl.roundTrip(cmd("CLIENT", "UNBLOCK", id)); got != ":0\r\n" {
			t.Errorf("CLIENT UNBLOCK of a client not blocked: %q", got)
		}
		waitBlocked(t, 0, servers...)
	}
}

// TestCrossServerBlockingOff: with cross_server_blocking false, keys on
// several servers are refused with an error naming hash tags.
func TestCrossServerBlockingOff(t *testing.T) {
	servers := startRedises(t, 2)
	px, addr := redisPool(t, "  hash_tag: \"{}\"\n  cross_server_blocking: false\n", servers...)
	tags := tagsOnServers(t, px.Pools()[0], 2)
	cl := dialRaw(t, addr)
	got := cl.roundTrip(cmd("BLPOP", tags[0]+"x", tags[1]+"x", "0"))
	if !strings.HasPrefix(got, "-ERR ") || !strings.Contains(got, "hash tag") {
		t.Errorf("cross-server BLPOP with cross_server_blocking off: %q", got)
	}
	cl.roundTrip(cmd("RPUSH", tags[0]+"x", "v"))
	if got := cl.roundTrip(cmd("BLPOP", tags[0]+"x", tags[0]+"y", "0")); got != fmt.Sprintf("*2\r\n$%d\r\n%sx\r\n$1\r\nv\r\n", len(tags[0])+1, tags[0]) {
		t.Errorf("one-server BLPOP: %q", got)
	}
}

// TestWaitReplicas: WAIT through the proxy counts the replicas that have
// the client's writes on every server: the least of the servers' counts.
func TestWaitReplicas(t *testing.T) {
	masters := startRedises(t, 2, "repl-diskless-sync-delay 0") // not Redis's 5 s wait for more replicas
	// The first master has a replica; the second one, none yet.
	replica := testutil.StartRedis(t, "replicaof "+strings.Replace(masters[0].Addr, ":", " ", 1))
	px, addr := redisPool(t, "", masters...)
	cl := dialRaw(t, addr)
	waitSynced(t, replica)
	// A key on each server (keys like w0…w19 may all land on one).
	keys := tagsOnServers(t, px.Pools()[0], 2)
	for _, k := range keys {
		if got := cl.roundTrip(cmd("SET", k, "v")); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
	}
	if got := cl.roundTrip(cmd("WAIT", "0", "0")); got != ":0\r\n" {
		t.Errorf("WAIT 0 0: %q", got)
	}
	start := time.Now()
	if got := cl.roundTrip(cmd("WAIT", "1", "200")); got != ":0\r\n" {
		t.Errorf("WAIT 1 200 with a server without replicas: %q, want :0", got)
	}
	if took := time.Since(start); took < 190*time.Millisecond || took > 2*time.Second {
		t.Errorf("WAIT 1 200 took %v", took)
	}
	// Now the second master gets a replica too: every write reaches one.
	replica2 := testutil.StartRedis(t, "replicaof "+strings.Replace(masters[1].Addr, ":", " ", 1))
	waitSynced(t, replica2)
	cl.send(cmd("SET", keys[1], "w") + cmd("WAIT", "1", "2000"))
	if got := cl.readReply(); got != "+OK\r\n" {
		t.Fatalf("SET: %q", got)
	}
	if got := cl.readReply(); got != ":1\r\n" {
		t.Errorf("WAIT 1 2000 with a replica behind each server: %q, want :1", got)
	}
	// WAIT said both replicas have every write.
	replicaOf := map[string]*testutil.Server{masters[0].Addr: replica, masters[1].Addr: replica2}
	for i, k := range keys {
		want := []string{"v", "w"}[i]
		r := replicaOf[backendOf(px, k)]
		if v, err := testutil.RedisDo(r.Addr, "", "GET", k); err != nil || v != want {
			t.Errorf("replica %s: GET %s = %v %v, want %s", r.Addr, k, v, err, want)
		}
	}
	if got := cl.roundTrip(cmd("WAIT", "x", "0")); got != "-ERR value is not an integer or out of range\r\n" {
		t.Errorf("WAIT x 0: %q", got)
	}
	if got := cl.roundTrip(cmd("WAIT", "1", "-1")); got != "-ERR timeout is negative\r\n" {
		t.Errorf("WAIT 1 -1: %q", got)
	}
}

// waitSynced waits until replica's link to its master is up.
func waitSynced(t *testing.T, replica *testutil.Server) {
	t.Helper()
	if !waitFor(10*time.Second, func() bool {
		info, err := testutil.RedisDo(replica.Addr, "", "INFO", "replication")
		return err == nil && strings.Contains(info.(string), "master_link_status:up")
	}) {
		t.Fatalf("replica %s did not sync", replica.Addr)
	}
}

// TestBlockingShutdown: a graceful shutdown does not wait for blocked
// clients: their blocks are cancelled on the servers, each gets one error,
// and nothing is left blocked or popped.
func TestBlockingShutdown(t *testing.T) {
	servers := startRedises(t, 2)
	px, addr := redisPool(t, "  hash_tag: \"{}\"\n", servers...)
	tags := tagsOnServers(t, px.Pools()[0], 2)
	one, both := dialRaw(t, addr), dialRaw(t, addr)
	one.send(cmd("BLPOP", tags[0]+"s", "0"))
	both.send(cmd("BRPOP", tags[0]+"s", tags[1]+"s", "0"))
	waitBlocked(t, 3, servers...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	if err := px.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Shutdown with blocked clients took %v", took)
	}
	for _, cl := range []*rawClient{one, both} {
		if got := cl.readReply(); got != "-ERR the proxy is shutting down: blocking command cancelled\r\n" {
			t.Errorf("blocked client at shutdown: %q", got)
		}
		cl.expectClosed()
	}
	waitBlocked(t, 0, servers...)
}
