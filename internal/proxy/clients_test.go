package proxy

// Client libraries and job-queue frameworks driven with their own code and
// default options, as an application runs them, through the proxy and
// against one lone redis-server; the same code must see the same results.
// The Python and Ruby code is in testdata/clients/, run with Debian's
// interpreter (testutil.Library) and printing one JSON object.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// clientRunTimeout bounds one run of a client script or program; a run
// normally takes well under a second.
const clientRunTimeout = 60 * time.Second

// clientPools starts one proxy with three Redis pools over the same three
// servers: "tagged" (hash_tag {}), "plain" (no tag; a transaction over
// several servers is refused) and "split" (split_transactions). The
// servers are named s1, s2, s3, so keys are placed the same way whatever
// ports the servers got. It returns the pools by name.
func clientPools(t *testing.T, servers []*testutil.Server) map[string]*Pool {
	t.Helper()
	var lines strings.Builder
	for i, s := range servers {
		fmt.Fprintf(&lines, "   - %s:1 s%d\n", s.Addr, i+1)
	}
	var yaml strings.Builder
	for _, p := range []struct{ name, extra string }{
		{"tagged", "  hash_tag: \"{}\"\n"},
		{"plain", ""},
		{"split", "  split_transactions: true\n"},
	} {
		fmt.Fprintf(&yaml, "%s:\n  listen: 127.0.0.1:{{port}}\n  redis: true\n  hash: fnv1a_64\n  distribution: ketama\n%s  servers:\n%s",
			p.name, p.extra, lines.String())
	}
	px, _ := startProxy(t, yaml.String())
	pools := map[string]*Pool{}
	for _, p := range px.Pools() {
		pools[p.Name()] = p
	}
	return pools
}

// serverOf returns the address of the server that pool p places key on.
func serverOf(p *Pool, key string) string { return p.pick([]byte(key)).cfg.Address.String() }

// flushAll empties every server.
func flushAll(t *testing.T, servers ...*testutil.Server) {
	t.Helper()
	for _, s := range servers {
		if _, err := testutil.RedisDo(s.Addr, "", "FLUSHALL"); err != nil {
			t.Fatalf("FLUSHALL %s: %v", s.Addr, err)
		}
	}
}

// runClient runs script (a file of testdata/clients) with the interpreter
// interp and decodes the one JSON object it prints. A failed run fails the
// test with its output.
func runClient(t *testing.T, interp, script string, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientRunTimeout)
	defer cancel()
	path := filepath.Join("testdata", "clients", script)
	c := exec.CommandContext(ctx, interp, append([]string{path}, args...)...)
	// Python would write __pycache__ into testdata when a script imports
	// its helper module.
	c.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var stdout, stderr bytes.Buffer
	c.Stdout, c.Stderr = &stdout, &stderr
	start := time.Now()
	err := c.Run()
	if err != nil {
		t.Fatalf("%s %s %s: %v (after %v)\nstdout:\n%s\nstderr:\n%s", interp, path, strings.Join(args, " "),
			err, time.Since(start).Round(time.Millisecond), stdout.Bytes(), stderr.Bytes())
	}
	var out map[string]any
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); err != nil {
		t.Fatalf("%s %s: output is not one JSON object: %v\nstdout:\n%s\nstderr:\n%s", interp, path, err, stdout.Bytes(), stderr.Bytes())
	}
	return out
}

// sameJSON fails the test if got (through the proxy) differs from want
// (the lone redis-server).
func sameJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("%s through the proxy:\n  %s\nwith a lone redis-server:\n  %s", what, g, w)
	}
}

// keysOnTwoServers returns four keys without hash tags, the second on
// another server of pool p than the first, so that a transaction over
// them spans servers from its second command on.
func keysOnTwoServers(t *testing.T, p *Pool) []string {
	t.Helper()
	keys := []string{"order:1"}
	for i := 2; len(keys) < 4 && i < 1000; i++ {
		k := fmt.Sprintf("order:%d", i)
		if len(keys) > 1 || serverOf(p, k) != serverOf(p, keys[0]) {
			keys = append(keys, k)
		}
	}
	if len(keys) < 4 {
		t.Fatalf("found no keys on two servers: %v", keys)
	}
	return keys
}

// TestRedisPyPipeline: redis-py's default pipeline() is a MULTI/EXEC
// transaction. With hash-tagged keys it gives what a lone redis-server
// gives, an error at EXEC inside the transaction included. Over keys on
// two servers it raises the refused command's error, nothing is applied
// and the client goes on working; with split_transactions the same code
// gives what a lone redis-server gives.
func TestRedisPyPipeline(t *testing.T) {
	py := testutil.Library(t, "python3:redis")
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	pools := clientPools(t, servers)
	addr := func(name string) string { return pools[name].Addr().String() }
	tagged := []string{"{order}:a", "{order}:b", "{order}:c", "{order}:d"}
	spread := keysOnTwoServers(t, pools["plain"])

	direct := runClient(t, py, "redispy_pipeline.py", append([]string{lone.Addr}, tagged...)...)
	if _, ok := direct["first"].(map[string]any)["results"]; !ok {
		t.Fatalf("with a lone redis-server the pipeline failed: %v", direct)
	}

	t.Run("tagged", func(t *testing.T) {
		flushAll(t, servers...)
		got := runClient(t, py, "redispy_pipeline.py", append([]string{addr("tagged")}, tagged...)...)
		sameJSON(t, "redis-py pipeline over {order} keys", got, direct)
	})

	t.Run("split", func(t *testing.T) {
		flushAll(t, servers...)
		flushAll(t, lone)
		want := runClient(t, py, "redispy_pipeline.py", append([]string{lone.Addr}, spread...)...)
		got := runClient(t, py, "redispy_pipeline.py", append([]string{addr("split")}, spread...)...)
		sameJSON(t, fmt.Sprintf("redis-py pipeline over %v (split_transactions)", spread), got, want)
		for _, k := range spread {
			if n, err := testutil.RedisDo(serverOf(pools["split"], k), "", "EXISTS", k); err != nil || n != int64(1) {
				t.Errorf("%s is not on its server %s: EXISTS %v, %v", k, serverOf(pools["split"], k), n, err)
			}
		}
	})

	t.Run("refused across servers", func(t *testing.T) {
		flushAll(t, servers...)
		got := runClient(t, py, "redispy_pipeline.py", append([]string{addr("plain")}, spread...)...)
		// redis-py raises the first command refused when queued (a
		// ResponseError naming it), not the ExecAbortError of EXEC.
		for _, part := range []string{"first", "second"} {
			e, _ := got[part].(map[string]any)
			msg, _ := e["message"].(string)
			if e["error"] != "redis.exceptions.ResponseError" || !strings.Contains(msg, "of pipeline caused error: key '") ||
				!strings.Contains(msg, "put its keys together with a hash tag") {
				t.Errorf("%s pipeline over %v: %v, want a ResponseError naming the key on another server", part, spread, got[part])
			}
		}
		if got["exists"] != 0.0 || got["counter"] != nil {
			t.Errorf("a refused pipeline applied commands: EXISTS = %v, %s = %v", got["exists"], spread[1], got["counter"])
		}
		var keys int64
		for _, s := range servers {
			n, err := testutil.RedisDo(s.Addr, "", "DBSIZE")
			if err != nil {
				t.Fatal(err)
			}
			keys += n.(int64)
		}
		if keys != 1 {
			t.Errorf("the servers hold %d keys, want 1 (the SET after the pipelines)", keys)
		}
		sameJSON(t, "the commands after the refused pipelines", got["after"], []any{true, "after"})
	})
}

// cmdResults describes each command of a go-redis pipeline by its
// arguments and its value or error.
func cmdResults(cmds []redis.Cmder) []string {
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = c.String()
		if err := c.Err(); err != nil {
			out[i] = fmt.Sprintf("%v: error %v", c.Args(), err)
		}
	}
	return out
}

// goRedisTx runs one transaction of go-redis's TxPipelined over keys,
// the last command failing when EXEC runs it.
func goRedisTx(ctx context.Context, rc *redis.Client, k []string) ([]string, error) {
	cmds, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k[0], "v0", 0)
		p.Incr(ctx, k[1])
		p.IncrBy(ctx, k[1], 10)
		p.Get(ctx, k[0])
		p.RPush(ctx, k[2], "a", "b")
		p.LRange(ctx, k[2], 0, -1)
		p.HSet(ctx, k[3], "f", "1")
		p.HGetAll(ctx, k[3])
		p.LPush(ctx, k[0], "x") // WRONGTYPE when EXEC runs it
		return nil
	})
	return cmdResults(cmds), err
}

// TestGoRedisTransactions: go-redis v9 with its default options (HELLO 3,
// refused, then RESP2 and CLIENT SETINFO): TxPipelined over hash-tagged
// keys and Pipelined over keys on every server give what a lone
// redis-server gives; a TxPipelined over two servers is refused whole
// without split_transactions and applied with it; and 20 goroutines'
// TxPipelined INCRs on one key end at the exact total, each transaction
// seeing its own increments together.
func TestGoRedisTransactions(t *testing.T) {
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	pools := clientPools(t, servers)
	ctx := context.Background()
	client := func(addr string) *redis.Client {
		rc := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { rc.Close() })
		return rc
	}
	direct := client(lone.Addr)
	tagged := client(pools["tagged"].Addr().String())

	// The handshake of the default options: HELLO 3 is refused, go-redis
	// goes on in RESP2 and names itself with CLIENT SETINFO.
	if info, err := tagged.Do(ctx, "CLIENT", "INFO").Text(); err != nil || !strings.Contains(info, " resp=2 ") ||
		!strings.Contains(info, " lib-name=go-redis(") {
		t.Errorf("CLIENT INFO after go-redis connected: %q, %v", info, err)
	}

	t.Run("TxPipelined", func(t *testing.T) {
		keys := []string{"{cart}:a", "{cart}:b", "{cart}:c", "{cart}:d"}
		want, wantErr := goRedisTx(ctx, direct, keys)
		got, err := goRedisTx(ctx, tagged, keys)
		sameJSON(t, "TxPipelined results", got, want)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Errorf("TxPipelined error %v, with a lone redis-server %v", err, wantErr)
		}
	})

	t.Run("Pipelined", func(t *testing.T) {
		run := func(rc *redis.Client) []string {
			var keys []string
			cmds, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i := range 200 {
					k := fmt.Sprintf("item:%d", i)
					keys = append(keys, k)
					p.Set(ctx, k, fmt.Sprintf("v%d", i), 0)
					p.Incr(ctx, "count:"+k)
				}
				for _, k := range keys {
					p.Get(ctx, k)
				}
				p.MGet(ctx, keys...)
				p.Del(ctx, keys[:50]...)
				p.Exists(ctx, keys...)
				return nil
			})
			if err != nil {
				t.Errorf("Pipelined on %s: %v", rc.Options().Addr, err)
			}
			return cmdResults(cmds)
		}
		sameJSON(t, "Pipelined results", run(tagged), run(direct))
	})

	t.Run("across servers", func(t *testing.T) {
		flushAll(t, servers...)
		flushAll(t, lone)
		keys := keysOnTwoServers(t, pools["plain"])
		want, wantErr := goRedisTx(ctx, direct, keys)
		got, err := goRedisTx(ctx, client(pools["split"].Addr().String()), keys)
		sameJSON(t, "TxPipelined over two servers (split_transactions)", got, want)
		if fmt.Sprint(err) != fmt.Sprint(wantErr) {
			t.Errorf("TxPipelined error %v, with a lone redis-server %v", err, wantErr)
		}

		flushAll(t, servers...)
		plain := client(pools["plain"].Addr().String())
		// go-redis returns EXEC's EXECABORT, and each command refused
		// when queued keeps its own error.
		got, err = goRedisTx(ctx, plain, keys)
		if err == nil || !strings.HasPrefix(err.Error(), "EXECABORT ") || !strings.Contains(got[1], "put its keys together with a hash tag") {
			t.Errorf("TxPipelined over two servers without split_transactions: error %v, results %q; want EXECABORT, the second command refused", err, got)
		}
		if n, err := plain.Exists(ctx, keys...).Result(); err != nil || n != 0 {
			t.Errorf("a refused transaction applied commands: EXISTS = %d, %v", n, err)
		}
		if v, err := plain.Incr(ctx, keys[1]).Result(); err != nil || v != 1 {
			t.Errorf("INCR after the refused transaction: %d, %v", v, err)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		const workers, rounds = 20, 50
		key := "{hits}:n"
		type result struct {
			values []int64 // what the worker's INCRs returned
			err    error
		}
		results := make(chan result, workers)
		for range workers {
			go func() {
				var r result
				defer func() { results <- r }()
				for range rounds {
					var a, b *redis.IntCmd
					if _, r.err = tagged.TxPipelined(ctx, func(p redis.Pipeliner) error {
						a = p.Incr(ctx, key)
						b = p.Incr(ctx, key)
						return nil
					}); r.err != nil {
						return
					}
					// One transaction's two INCRs run together.
					if b.Val() != a.Val()+1 {
						r.err = fmt.Errorf("INCR, INCR in one transaction = %d, %d", a.Val(), b.Val())
						return
					}
					r.values = append(r.values, a.Val(), b.Val())
				}
			}()
		}
		values := map[int64]bool{}
		for range workers {
			r := <-results
			if r.err != nil {
				t.Error(r.err)
			}
			for _, v := range r.values {
				values[v] = true
			}
		}
		const total = 2 * workers * rounds
		if n, err := tagged.Get(ctx, key).Int64(); err != nil || n != total || len(values) != total {
			t.Errorf("after %d INCRs: %s = %d (%v), %d distinct values seen", total, key, n, err, len(values))
		}
	})
}

// TestRQEnqueue: RQ enqueues a job (the job hash, the queue list and the
// set of queues in one MULTI/EXEC, keys it cannot tag) through a pool with
// split_transactions and reads back what it reads with a lone
// redis-server; each key is on the server the proxy places it on.
func TestRQEnqueue(t *testing.T) {
	py := testutil.Library(t, "python3:rq")
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	pools := clientPools(t, servers)
	split := pools["split"]

	want := runClient(t, py, "rq_enqueue.py", lone.Addr)
	got := runClient(t, py, "rq_enqueue.py", split.Addr().String())
	sameJSON(t, "RQ enqueue", got["result"], want["result"])

	// The queue and the set of queues are on two servers (s1 and s3):
	// the enqueue's transaction was split.
	if serverOf(split, "rq:queue:default") == serverOf(split, "rq:queues") {
		t.Errorf("rq:queue:default and rq:queues are on one server: the test no longer spans servers")
	}
	id, _ := got["id"].(string)
	for key, typ := range map[string]string{"rq:job:" + id: "hash", "rq:queue:default": "list", "rq:queues": "set"} {
		owner := serverOf(split, key)
		if v, err := testutil.RedisDo(owner, "", "TYPE", key); err != nil || v != typ {
			t.Errorf("%s on its server %s: TYPE %v, %v; want %s", key, owner, v, err, typ)
		}
	}
	if v, err := testutil.RedisDo(split.Addr().String(), "", "LRANGE", "rq:queue:default", "0", "-1"); err != nil ||
		!reflect.DeepEqual(v, []any{id}) {
		t.Errorf("LRANGE rq:queue:default through the proxy = %v, %v; want [%s]", v, err, id)
	}
}

// TestKombuQueue: kombu's Redis transport (Celery's) puts, gets without
// blocking, acks, declares and publishes through a pool with
// split_transactions (its sizes and its unacked index are MULTI/EXEC
// pipelines over one list per priority) as with a lone redis-server.
func TestKombuQueue(t *testing.T) {
	py := testutil.Library(t, "python3:kombu")
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	pools := clientPools(t, servers)
	split := pools["split"]
	want := runClient(t, py, "kombu_queue.py", lone.Addr)
	got := runClient(t, py, "kombu_queue.py", split.Addr().String())
	sameJSON(t, "kombu", got, want)
	if want["llen_after_put"] != 2.0 || want["llen_emails"] != 1.0 {
		t.Errorf("with a lone redis-server the messages did not land: %v", want)
	}
	// The lists of the queues' priorities are on two servers: the
	// transport's pipelines were split.
	for _, q := range []string{"messages", "emails"} {
		if serverOf(split, q) == serverOf(split, q+"\x06\x163") {
			t.Errorf("the lists of queue %s are on one server: the test no longer spans servers", q)
		}
	}
}

// TestSidekiqPush: Sidekiq's client pushes a job (LPUSH queue:default and
// SADD queues in one MULTI/EXEC) through a pool with split_transactions
// and reads back what it reads with a lone redis-server.
func TestSidekiqPush(t *testing.T) {
	rb := testutil.Library(t, "ruby:sidekiq")
	testutil.Library(t, "ruby:redis")
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	pools := clientPools(t, servers)
	split := pools["split"]

	want := runClient(t, rb, "sidekiq_push.rb", lone.Addr)
	got := runClient(t, rb, "sidekiq_push.rb", split.Addr().String())
	sameJSON(t, "Sidekiq push", got["result"], want["result"])
	// The queue and the set of queues are on two servers (s2 and s3):
	// the push's transaction was split.
	if serverOf(split, "queue:default") == serverOf(split, "queues") {
		t.Errorf("queue:default and queues are on one server: the test no longer spans servers")
	}
	if jid, _ := got["jid"].(string); len(jid) != 24 {
		t.Errorf("jid %q, want 24 hex digits", jid)
	}
	for key, typ := range map[string]string{"queue:default": "list", "queues": "set"} {
		owner := serverOf(split, key)
		if v, err := testutil.RedisDo(owner, "", "TYPE", key); err != nil || v != typ {
			t.Errorf("%s on its server %s: TYPE %v, %v; want %s", key, owner, v, err, typ)
		}
	}
}

// TestSidekiqBoot starts the sidekiq CLI (`sidekiq -r worker.rb -c 1`,
// REDIS_URL) against a lone redis-server and through a pool with
// split_transactions: it passes its boot checks (INFO redis_version), and
// its heartbeat (two MULTI/EXEC over the processes set, the process hash
// and the stat counters) registers the process, which SIGTERM removes.
// Its workers at work are TestSidekiqWorker's.
func TestSidekiqBoot(t *testing.T) {
	testutil.Library(t, "ruby:sidekiq")
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	pools := clientPools(t, servers)
	worker, err := filepath.Abs(filepath.Join("testdata", "clients", "sidekiq_worker.rb"))
	if err != nil {
		t.Fatal(err)
	}

	// boot runs sidekiq through addr with one job queued, returns what its
	// heartbeat registered and whether it fetched the job.
	boot := func(addr string) (map[string]any, bool) {
		// The job as Sidekiq::Client.push writes it.
		job := `{"class":"HardWorker","args":[1,2],"retry":false,"queue":"default","jid":"0123456789abcdef01234567"}`
		if _, err := testutil.RedisDo(addr, "", "LPUSH", "queue:default", job); err != nil {
			t.Fatal(err)
		}
		if _, err := testutil.RedisDo(addr, "", "SADD", "queues", "default"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), clientRunTimeout)
		defer cancel()
		logPath := filepath.Join(t.TempDir(), "sidekiq.log")
		logFile, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		defer logFile.Close()
		c := exec.CommandContext(ctx, testutil.Binary(t, "sidekiq"), "-r", worker, "-c", "1")
		c.Env = append(os.Environ(), "REDIS_URL=redis://"+addr+"/0")
		c.Stdout, c.Stderr = logFile, logFile
		c.WaitDelay = 5 * time.Second
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- c.Wait() }()
		stop := func() {
			_ = c.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				t.Errorf("sidekiq (pid %d) still running 15 s after SIGTERM: killed", c.Process.Pid)
				_ = c.Process.Kill()
				<-exited
			}
		}
		defer func() {
			if t.Failed() {
				out, _ := os.ReadFile(logPath)
				t.Logf("sidekiq through %s, its output:\n%s", addr, out)
			}
		}()

		// Booted: the heartbeat has added the process to the set
		// processes and written its hash.
		var identity string
		for deadline := time.Now().Add(30 * time.Second); identity == "" && time.Now().Before(deadline); {
			select {
			case err := <-exited:
				t.Fatalf("sidekiq through %s exited before its first heartbeat: %v", addr, err)
			case <-time.After(100 * time.Millisecond):
			}
			if v, err := testutil.RedisDo(addr, "", "SMEMBERS", "processes"); err == nil {
				if m, _ := v.([]any); len(m) == 1 {
					identity, _ = m[0].(string)
				}
			}
		}
		if identity == "" {
			stop()
			t.Fatalf("sidekiq through %s: no process in the set processes after 30 s", addr)
		}
		var info map[string]any
		v, err := testutil.RedisDo(addr, "", "HGET", identity, "info")
		if s, ok := v.(string); err != nil || !ok || json.Unmarshal([]byte(s), &info) != nil {
			t.Errorf("sidekiq through %s: HGET %s info = %v, %v", addr, identity, v, err)
		}
		// The job is fetched at once (by BRPOP, not served by the proxy yet).
		fetched := false
		for deadline := time.Now().Add(3 * time.Second); !fetched && time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			n, err := testutil.RedisDo(addr, "", "LLEN", "queue:default")
			fetched = err == nil && n == int64(0)
		}
		stop()
		if v, err := testutil.RedisDo(addr, "", "SMEMBERS", "processes"); err != nil || len(v.([]any)) != 0 {
			t.Errorf("sidekiq through %s stopped: processes = %v, %v; want it removed", addr, v, err)
		}
		out, _ := os.ReadFile(logPath)
		var errLines []string
		for _, ln := range strings.Split(string(out), "\n") {
			if strings.Contains(ln, " ERROR: ") || strings.Contains(ln, "current policy") {
				errLines = append(errLines, ln)
			}
		}
		t.Logf("sidekiq through %s: process %s, job fetched: %v; its errors and warnings:\n%s", addr, identity, fetched, strings.Join(errLines, "\n"))
		fields := slices.Sorted(maps.Keys(info))
		return map[string]any{"concurrency": info["concurrency"], "queues": info["queues"], "fields": fields}, fetched
	}

	want, fetched := boot(lone.Addr)
	if !fetched {
		t.Errorf("sidekiq with a lone redis-server did not fetch the queued job")
	}
	got, _ := boot(pools["split"].Addr().String())
	sameJSON(t, "the process Sidekiq registered", got, want)
}

// TestGoRedisScriptRun: go-redis's Script.Run sends EVALSHA and, on
// NOSCRIPT, EVAL: through the proxy both go to the server of the script's
// keys, so the first Run falls back to EVAL and later ones find the
// script cached there, as with a lone redis-server. (Script.Load, SCRIPT
// LOAD, is not served yet.)
func TestGoRedisScriptRun(t *testing.T) {
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	pools := clientPools(t, servers)
	ctx := context.Background()
	incr := redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1]) + redis.call('INCR', KEYS[2])`)
	run := func(addr string) []string {
		rc := redis.NewClient(&redis.Options{Addr: addr})
		defer rc.Close()
		var out []string
		for i := range 3 {
			v, err := incr.Run(ctx, rc, []string{"{s}:a", "{s}:b"}, i+1).Result()
			out = append(out, fmt.Sprint(v, err))
		}
		n, err := rc.Exists(ctx, "{s}:a", "{s}:b").Result()
		return append(out, fmt.Sprint(n, err))
	}
	sameJSON(t, "Script.Run", run(pools["tagged"].Addr().String()), run(lone.Addr))
}

// TestRedisPyFeatures: redis-py's database option, transaction() helper
// (WATCH), register_script and Lock give through the proxy what they give
// with a lone redis-server.
func TestRedisPyFeatures(t *testing.T) {
	py := testutil.Library(t, "python3:redis")
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	pools := clientPools(t, servers)
	want := runClient(t, py, "redispy_features.py", lone.Addr, "{feat}")
	for _, part := range []string{"db", "transaction", "script", "lock"} {
		if m, ok := want[part].(map[string]any); ok && m["error"] != nil {
			t.Fatalf("with a lone redis-server, %s failed: %v", part, m)
		}
	}
	got := runClient(t, py, "redispy_features.py", pools["tagged"].Addr().String(), "{feat}")
	sameJSON(t, "redis-py db=2, transaction(), register_script, Lock", got, want)
}
