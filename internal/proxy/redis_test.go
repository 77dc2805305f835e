package proxy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

func redisPool(t testing.TB, extra string, servers ...*testutil.Server) (*Proxy, string) {
	t.Helper()
	return startProxy(t, "alpha:\n  listen: 127.0.0.1:{{port}}\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n"+
		extra+"  servers:\n"+serverLines(servers...))
}

func startRedises(t testing.TB, n int, extra ...string) []*testutil.Server {
	t.Helper()
	var out []*testutil.Server
	for range n {
		out = append(out, testutil.StartRedis(t, extra...))
	}
	return out
}

// backendOf returns the server the proxy's first pool places key on.
func backendOf(px *Proxy, key string) string {
	return px.Pools()[0].pick([]byte(key)).cfg.Address.String()
}

func TestRedisBasicCommands(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)

	tests := []struct{ req, want string }{
		{"PING\r\n", "+PONG\r\n"},
		{"*1\r\n$4\r\nPING\r\n", "+PONG\r\n"},
		{"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n", "$2\r\nhi\r\n"},
		{"*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n", "$3\r\nabc\r\n"},
		{"*3\r\n$3\r\nSET\r\n$3\r\nfoo\r\n$3\r\nbar\r\n", "+OK\r\n"},
		{"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n", "$3\r\nbar\r\n"},
		{"GET foo\r\n", "$3\r\nbar\r\n"},
		{"get missing\r\n", "$-1\r\n"},
		{"SET \"a b\" 'c d'\r\n", "+OK\r\n"},
		{"GET \"a b\"\r\n", "$3\r\nc d\r\n"},
		{"FOO bar\r\n", "-ERR unknown command 'FOO', with args beginning with: 'bar' \r\n"},
		{"GET\r\n", "-ERR wrong number of arguments for 'get' command\r\n"},
		{"SELECT 0\r\n", "+OK\r\n"},
		{"INCR counter\r\n", ":1\r\n"},
		{"INCRBY counter 41\r\n", ":42\r\n"},
		{"LPUSH list a b c\r\n", ":3\r\n"},
		{"LRANGE list 0 -1\r\n", "*3\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n"},
		{"HSET h f v\r\n", ":1\r\n"},
		{"HGETALL h\r\n", "*2\r\n$1\r\nf\r\n$1\r\nv\r\n"},
		{"EXPIRE foo 100\r\n", ":1\r\n"},
	}
	for _, tt := range tests {
		if got := c.roundTrip(tt.req); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.req, got, tt.want)
		}
	}
	if got := c.roundTrip("SELECT 16\r\n"); got != "-ERR DB index is out of range\r\n" {
		t.Errorf("SELECT 16: %q", got)
	}

	// Each key is on exactly the server the ring says, and only there.
	for _, key := range []string{"foo", "a b", "counter", "list", "h"} {
		want := backendOf(px, key)
		for _, s := range servers {
			n := dialRaw(t, s.Addr).roundTrip(fmt.Sprintf("EXISTS %q\r\n", key))
			has := n == ":1\r\n"
			if has != (s.Addr == want) {
				t.Errorf("key %q on %s: %v (ring says %s)", key, s.Addr, has, want)
			}
		}
	}
}

func TestRedisMultiKey(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)

	var keys []string
	spread := map[string]bool{}
	for i := 0; len(spread) < 3 || len(keys) < 10; i++ {
		k := fmt.Sprintf("k%d", i)
		keys = append(keys, k)
		spread[backendOf(px, k)] = true
	}
	var mset strings.Builder
	fmt.Fprintf(&mset, "*%d\r\n$4\r\nMSET\r\n", 1+2*len(keys))
	for _, k := range keys {
		fmt.Fprintf(&mset, "$%d\r\n%s\r\n$%d\r\nv-%s\r\n", len(k), k, len(k)+2, k)
	}
	if got := c.roundTrip(mset.String()); got != "+OK\r\n" {
		t.Fatalf("MSET: %q", got)
	}
	// MGET in key order, with a missing key in the middle.
	mkeys := append([]string{}, keys[:5]...)
	mkeys = append(mkeys, "nope")
	mkeys = append(mkeys, keys[5:]...)
	var want strings.Builder
	fmt.Fprintf(&want, "*%d\r\n", len(mkeys))
	for _, k := range mkeys {
		if k == "nope" {
			want.WriteString("$-1\r\n")
			continue
		}
		fmt.Fprintf(&want, "$%d\r\nv-%s\r\n", len(k)+2, k)
	}
	if got := c.roundTrip("MGET " + strings.Join(mkeys, " ") + "\r\n"); got != want.String() {
		t.Errorf("MGET:\n got %q\nwant %q", got, want.String())
	}
	n := len(keys)
	if got := c.roundTrip("EXISTS " + strings.Join(mkeys, " ") + " " + keys[0] + "\r\n"); got != fmt.Sprintf(":%d\r\n", n+1) {
		t.Errorf("EXISTS: %q", got)
	}
	if got := c.roundTrip("TOUCH " + strings.Join(mkeys, " ") + "\r\n"); got != fmt.Sprintf(":%d\r\n", n) {
		t.Errorf("TOUCH: %q", got)
	}
	if got := c.roundTrip("DEL " + strings.Join(keys[:4], " ") + " nope\r\n"); got != ":4\r\n" {
		t.Errorf("DEL: %q", got)
	}
	if got := c.roundTrip("UNLINK " + strings.Join(keys, " ") + "\r\n"); got != fmt.Sprintf(":%d\r\n", n-4) {
		t.Errorf("UNLINK: %q", got)
	}
	// One fragment per server, not per key: each server saw one MGET.
	for _, s := range servers {
		stats := dialRaw(t, s.Addr).roundTrip("INFO commandstats\r\n")
		if !strings.Contains(stats, "cmdstat_mget:calls=1,") {
			t.Errorf("server %s: want exactly one MGET call:\n%s", s.Addr, stats)
		}
	}
	// A failed fragment fails the whole request with its real error.
	if got := c.roundTrip("SET " + keys[0] + " plain\r\n"); got != "+OK\r\n" {
		t.Fatal(got)
	}
	if got := c.roundTrip("LPUSH " + keys[1] + " x\r\n"); got != ":1\r\n" {
		t.Fatal(got)
	}
	if got := c.roundTrip("MGET " + keys[0] + " " + keys[1] + "\r\n"); !strings.HasPrefix(got, "*2\r\n") {
		t.Errorf("MGET over a list (Redis answers nil for the wrong type): %q", got)
	}
}

func TestRedisProtocolErrorCloses(t *testing.T) {
	servers := startRedises(t, 1)
	_, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)
	if got := c.roundTrip("*1\r\n$x\r\n"); got != "-ERR Protocol error: invalid bulk length\r\n" {
		t.Errorf("got %q", got)
	}
	c.expectClosed()

	// Requests before the bad one are still answered, in order.
	c = dialRaw(t, addr)
	c.send("SET a 1\r\nGET a\r\n*2\r\n$3\r\nGET\r\n:1\r\n")
	for _, want := range []string{"+OK\r\n", "$1\r\n1\r\n", "-ERR Protocol error: expected '$', got ':'\r\n"} {
		if got := c.readReply(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	c.expectClosed()
}

func TestRedisQuit(t *testing.T) {
	servers := startRedises(t, 1)
	_, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)
	c.send("SET q 1\r\nQUIT\r\nGET q\r\n")
	if got := c.readReply(); got != "+OK\r\n" {
		t.Errorf("SET: %q", got)
	}
	if got := c.readReply(); got != "+OK\r\n" {
		t.Errorf("QUIT: %q", got)
	}
	c.expectClosed()
}

func TestRedisAuthAndDB(t *testing.T) {
	servers := startRedises(t, 2, "requirepass s3cret")
	_, addr := redisPool(t, "  redis_auth: s3cret\n  redis_db: 3\n", servers...)
	c := dialRaw(t, addr)
	for _, tt := range []struct{ req, want string }{
		{"GET a\r\n", "-NOAUTH Authentication required\r\n"},
		{"PING\r\n", "-NOAUTH Authentication required\r\n"},
		{"AUTH wrong\r\n", "-ERR invalid password\r\n"},
		{"GET a\r\n", "-NOAUTH Authentication required\r\n"},
		{"AUTH s3cret\r\n", "+OK\r\n"},
		{"SET a 1\r\n", "+OK\r\n"},
		{"GET a\r\n", "$1\r\n1\r\n"},
		{"PING\r\n", "+PONG\r\n"},
		{"AUTH wrong\r\n", "-ERR invalid password\r\n"},
		{"GET a\r\n", "-NOAUTH Authentication required\r\n"},
	} {
		if got := c.roundTrip(tt.req); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.req, got, tt.want)
		}
	}
	// The key is in database 3 on its server.
	found := 0
	for _, s := range servers {
		d := dialRaw(t, s.Addr)
		d.roundTrip("AUTH s3cret\r\n")
		if d.roundTrip("SELECT 3\r\n") != "+OK\r\n" {
			t.Fatal("select")
		}
		if d.roundTrip("EXISTS a\r\n") == ":1\r\n" {
			found++
		}
	}
	if found != 1 {
		t.Errorf("key a found in db 3 on %d servers, want 1", found)
	}

	// A pool without redis_auth refuses AUTH as twemproxy does.
	plain := startRedises(t, 1)
	_, addr2 := redisPool(t, "", plain...)
	if got := dialRaw(t, addr2).roundTrip("AUTH x\r\n"); got != "-ERR Client sent AUTH, but no password is set\r\n" {
		t.Errorf("AUTH without redis_auth: %q", got)
	}
}

func TestRedisServerDownAndBack(t *testing.T) {
	servers := startRedises(t, 1)
	_, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)
	if got := c.roundTrip("SET a 1\r\n"); got != "+OK\r\n" {
		t.Fatal(got)
	}
	servers[0].Kill()
	// The broken connection fails what is queued, then dialling is refused.
	for i := 0; i < 3; i++ {
		got := c.roundTrip("GET a\r\n")
		if !strings.HasPrefix(got, "-ERR ") {
			t.Errorf("GET with server down: %q", got)
		}
	}
	if got := c.roundTrip("GET a\r\n"); got != "-ERR Connection refused\r\n" {
		t.Errorf("GET with server down: %q", got)
	}
	servers[0].Restart(t)
	if got := c.roundTrip("SET a 2\r\n"); got != "+OK\r\n" {
		t.Errorf("after restart: %q", got)
	}
}

func TestRedisTimeout(t *testing.T) {
	servers := startRedises(t, 2)
	px, addr := redisPool(t, "  timeout: 200\n", servers...)
	c := dialRaw(t, addr)
	// Find a key on each server.
	keyOn := map[string]string{}
	for i := 0; len(keyOn) < 2; i++ {
		k := fmt.Sprintf("t%d", i)
		keyOn[backendOf(px, k)] = k
	}
	slow, fast := keyOn[servers[0].Addr], keyOn[servers[1].Addr]
	c.roundTrip("SET " + slow + " 1\r\n")
	servers[0].Pause()
	start := time.Now()
	c.send("GET " + slow + "\r\nGET " + slow + "\r\nGET " + fast + "\r\n")
	for i, want := range []string{"-ERR Connection timed out\r\n", "-ERR Connection timed out\r\n", "$-1\r\n"} {
		if got := c.readReply(); got != want {
			t.Errorf("reply %d: %q, want %q", i, got, want)
		}
	}
	if d := time.Since(start); d < 200*time.Millisecond || d > 2*time.Second {
		t.Errorf("timed out after %v, want 200ms..", d)
	}
	servers[0].Resume()
	// The connection is re-dialled and works again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := c.roundTrip("GET " + slow + "\r\n")
		if got == "$1\r\n1\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server never came back: %q", got)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRedisPipelineOrderAcrossServers(t *testing.T) {
	servers := startRedises(t, 3)
	_, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)
	const n = 2000
	var req, want strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&req, "SET p%d %d\r\n", i, i)
		want.WriteString("+OK\r\n")
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&req, "GET p%d\r\n", i)
		v := fmt.Sprint(i)
		fmt.Fprintf(&want, "$%d\r\n%s\r\n", len(v), v)
	}
	// One server answers late: replies still come in request order.
	servers[1].Pause()
	go func() { time.Sleep(100 * time.Millisecond); servers[1].Resume() }()
	c.send(req.String())
	var got strings.Builder
	for i := 0; i < 2*n; i++ {
		got.WriteString(c.readReply())
	}
	if got.String() != want.String() {
		t.Error("pipelined replies out of order or wrong")
	}
}

func TestRedisLargeAndBinaryValues(t *testing.T) {
	servers := startRedises(t, 2)
	_, addr := redisPool(t, "", servers...)
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	defer rc.Close()
	for _, size := range []int{0, 1, 16384, 1 << 20, 64 << 20} {
		v := make([]byte, size)
		for i := range v {
			v[i] = byte(rand.IntN(256))
		}
		if size > 4 {
			copy(v[size/2:], "\r\n$5\r\n")
		}
		key := fmt.Sprintf("big%d", size)
		if err := rc.Set(ctx, key, v, 0).Err(); err != nil {
			t.Fatalf("SET %d bytes: %v", size, err)
		}
		got, err := rc.Get(ctx, key).Bytes()
		if err != nil || string(got) != string(v) {
			t.Fatalf("GET %d bytes: len %d, %v", size, len(got), err)
		}
	}
}

func TestRedisUnixSockets(t *testing.T) {
	srv := testutil.StartRedisUnix(t)
	dir := t.TempDir()
	if len(dir) > 80 {
		dir = "/tmp"
	}
	sock := fmt.Sprintf("%s/sp-%d.sock", dir, testutil.FreePort(t))
	_, addr := startProxy(t, fmt.Sprintf("alpha:\n  listen: %s 0600\n  redis: true\n  servers:\n   - %s:1\n", sock, srv.Addr))
	c := dialRaw(t, addr)
	if got := c.roundTrip("SET u 1\r\n"); got != "+OK\r\n" {
		t.Fatal(got)
	}
	if got := c.roundTrip("GET u\r\n"); got != "$1\r\n1\r\n" {
		t.Fatal(got)
	}
}

func TestRedisClientConnectionsLimit(t *testing.T) {
	servers := startRedises(t, 1)
	px, addr := redisPool(t, "  client_connections: 2\n", servers...)
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	a.roundTrip("PING\r\n")
	b.roundTrip("PING\r\n")
	c := dialRaw(t, addr)
	if got := c.readReply(); got != "-ERR max number of clients reached\r\n" {
		t.Errorf("third client: %q", got)
	}
	c.expectClosed()
	if n := px.Pools()[0].stats.refused.Load(); n != 1 {
		t.Errorf("client_refused = %d, want 1", n)
	}
}

// TestRedisConcurrentGoRedis: 100 goroutines × 1,000 mixed operations with
// pipelines; every value is read back and checked.
func TestRedisConcurrentGoRedis(t *testing.T) {
	servers := startRedises(t, 3)
	_, addr := redisPool(t, "  timeout: 20000\n", servers...)
	ctx := context.Background()
	// No client-side retries: a retried DEL would count 0 and hide what
	// really happened; generous timeouts for a loaded machine.
	rc := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 100, MaxRetries: -1,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	defer rc.Close()

	const workers, ops = 100, 1000
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			model := map[string]string{}
			key := func() string { return fmt.Sprintf("w%d:k%d", w, rng.IntN(50)) }
			for i := 0; i < ops; {
				switch rng.IntN(5) {
				case 0: // SET + GET
					k, v := key(), fmt.Sprint(rng.Int())
					if err := rc.Set(ctx, k, v, 0).Err(); err != nil {
						errs <- err
						return
					}
					model[k] = v
					i++
				case 1: // pipelined SETs then MGET
					pipe := rc.Pipeline()
					var ks []string
					for j := 0; j < 10; j++ {
						k, v := key(), fmt.Sprintf("%d-%d", i, j)
						pipe.Set(ctx, k, v, 0)
						model[k] = v
						ks = append(ks, k)
					}
					mget := pipe.MGet(ctx, ks...)
					if _, err := pipe.Exec(ctx); err != nil {
						errs <- err
						return
					}
					for j, k := range ks {
						if got, _ := mget.Val()[j].(string); got != model[k] {
							errs <- fmt.Errorf("worker %d MGET %s = %q, want %q", w, k, got, model[k])
							return
						}
					}
					i += 11
				case 2: // DEL some keys
					ks := []string{key(), key(), key()}
					n, err := rc.Del(ctx, ks...).Result()
					if err != nil {
						errs <- err
						return
					}
					want := 0
					seen := map[string]bool{}
					for _, k := range ks {
						if _, ok := model[k]; ok && !seen[k] {
							want++
						}
						seen[k] = true
						delete(model, k)
					}
					if int(n) != want {
						errs <- fmt.Errorf("worker %d DEL %v = %d, want %d", w, ks, n, want)
						return
					}
					i++
				case 3: // MSET
					var kv []any
					for j := 0; j < 5; j++ {
						k, v := key(), fmt.Sprint(rng.Int())
						kv = append(kv, k, v)
						model[k] = v
					}
					if err := rc.MSet(ctx, kv...).Err(); err != nil {
						errs <- err
						return
					}
					i++
				default: // GET and check
					k := key()
					got, err := rc.Get(ctx, k).Result()
					want, ok := model[k]
					if (err == redis.Nil) == ok || (ok && got != want) {
						errs <- fmt.Errorf("worker %d GET %s = %q (%v), want %q (%v)", w, k, got, err, want, ok)
						return
					}
					i++
				}
			}
			// Every value is read back at the end.
			for k, v := range model {
				if got, err := rc.Get(ctx, k).Result(); err != nil || got != v {
					errs <- fmt.Errorf("worker %d final GET %s = %q, %v; want %q", w, k, got, err, v)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
