package proxy

// Job-queue frameworks' own workers, from Debian's packages and with
// their default options, process jobs through the proxy as they do with a
// lone redis-server: Sidekiq's processors (BRPOP over its queues, timeout
// 2 s), RQ's workers (BLPOP) and kombu's consumer (one BRPOP over every
// list of its queues), over queues whose keys are on several servers.
// Each job appends its number to the list done, so that the test sees it
// ran exactly once.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

const (
	// workerJobs is how many jobs each run feeds the workers, in
	// workerRounds batches: before each batch the feeding script waits
	// until the queues are empty and 0.2 s more, so that the workers are
	// blocked when it comes.
	workerJobs, workerRounds = 1000, 10
	// workerTimeout bounds a worker's start-up, the processing of all the
	// jobs, and its stop; with a lone redis-server a run takes 3 s
	// (Sidekiq, kombu) to 11 s (RQ, which forks a process per job).
	workerTimeout = 60 * time.Second
	// workerStall ends the wait for the jobs when none was done for
	// so long: the workers are stuck.
	workerStall = 5 * time.Second
)

// jobQueue is one framework's run: its workers, its queues and the script
// that feeds them.
type jobQueue struct {
	// start starts the workers through addr.
	start func(t *testing.T, addr string) []*testutil.Server
	// registry is the set where the workers register themselves while
	// they run; they remove themselves when stopped by SIGTERM. If empty,
	// the workers are ready when ready holds.
	registry string
	// ready reports whether the workers started through addr are ready;
	// used when there is no registry.
	ready func(addr string) (bool, error)
	// interp and feed run the script that feeds the queues, with
	// arguments ADDR COUNT ROUNDS QUEUE....
	interp, feed string
	// queues are the queues' names, keys their lists.
	queues []string
	key    func(queue string) string
	// books are the commands that read the framework's own bookkeeping
	// after the run (counters, registries of finished and failed jobs,
	// unacked messages): their replies are part of the outcome.
	books [][]string
}

// keys returns the lists of q's queues.
func (q jobQueue) keys() []string {
	var keys []string
	for _, name := range q.queues {
		keys = append(keys, q.key(name))
	}
	return keys
}

// onServers fails the test unless pool p places the lists of q's queues
// on at least two servers.
func (q jobQueue) onServers(t *testing.T, p *Pool) {
	t.Helper()
	where := map[string][]string{}
	for _, k := range q.keys() {
		where[serverOf(p, k)] = append(where[serverOf(p, k)], k)
	}
	if len(where) < 2 {
		t.Errorf("the queues %q are all on %v: the test no longer spans servers", q.keys(), where)
	}
	t.Logf("queues by server in pool %s: %v", p.Name(), where)
}

// redisInt runs a command whose reply is an integer.
func redisInt(addr string, args ...string) (int64, error) {
	v, err := testutil.RedisDo(addr, "", args...)
	if err != nil {
		return 0, err
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("%s: reply %v, want an integer", strings.Join(args, " "), v)
	}
	return n, nil
}

// errExited and errStalled end a wait for workers that no longer run or
// no longer process jobs.
var (
	errExited  = errors.New("the workers exited")
	errStalled = errors.New("no job done for a while")
)

// waitUntil polls cond every 50 ms until it holds, the deadline, or cond
// returns errExited or errStalled; it fails the test with what and
// reports false if the condition never held.
func waitUntil(t *testing.T, deadline time.Time, what string, cond func() (bool, error)) bool {
	t.Helper()
	start := time.Now()
	for {
		ok, err := cond()
		if ok {
			return true
		}
		if errors.Is(err, errExited) || errors.Is(err, errStalled) || !time.Now().Before(deadline) {
			t.Errorf("%s: not after %v (last error: %v)", what, time.Since(start).Round(time.Millisecond), err)
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runJobQueue starts q's workers through addr, feeds them workerJobs jobs,
// waits until the list done holds as many entries, stops the workers with
// SIGTERM and returns what happened: how many entries done holds, the job
// numbers in it more than once, how many are missing, what is left in the
// queues, how many workers are still registered, and the replies to
// q.books.
func runJobQueue(t *testing.T, addr string, q jobQueue) map[string]any {
	t.Helper()
	start := time.Now()
	deadline := start.Add(workerTimeout)
	workers := q.start(t, addr)
	running := func() bool {
		for _, w := range workers {
			if w.Running() {
				return true
			}
		}
		return false
	}
	ready := q.ready
	if q.registry != "" {
		ready = func(addr string) (bool, error) {
			n, err := redisInt(addr, "SCARD", q.registry)
			return n == int64(len(workers)), err
		}
	}
	if waitUntil(t, deadline, fmt.Sprintf("workers through %s ready", addr), func() (bool, error) {
		if !running() {
			return false, errExited
		}
		return ready(addr)
	}) {
		booted := time.Since(start)
		out := runClient(t, q.interp, q.feed, append([]string{addr, strconv.Itoa(workerJobs), strconv.Itoa(workerRounds)}, q.queues...)...)
		t.Logf("through %s: workers ready after %v; the feeding script: %v", addr, booted.Round(time.Millisecond), out)
		last, lastChange := int64(-1), time.Now()
		if waitUntil(t, deadline, fmt.Sprintf("%d jobs done through %s", workerJobs, addr), func() (bool, error) {
			n, err := redisInt(addr, "LLEN", "done")
			switch {
			case err != nil:
				return false, err
			case n >= workerJobs:
				return true, nil
			case n != last:
				last, lastChange = n, time.Now()
			case !running():
				return false, fmt.Errorf("%w after %d jobs", errExited, n)
			case time.Since(lastChange) > workerStall:
				return false, fmt.Errorf("%w: %d jobs done, none in the last %v", errStalled, n, workerStall)
			}
			return false, nil
		}) {
			t.Logf("through %s: %d jobs done after %v", addr, workerJobs, time.Since(start).Round(time.Millisecond))
			// A job run twice late would show here.
			time.Sleep(200 * time.Millisecond)
		}
	}

	signalled := 0
	for _, w := range workers {
		if w.Running() {
			_ = w.Cmd.Process.Signal(syscall.SIGTERM)
			signalled++
		}
	}
	if signalled < len(workers) {
		t.Errorf("through %s: %d of %d workers had exited before SIGTERM", addr, len(workers)-signalled, len(workers))
	}
	waitUntil(t, time.Now().Add(15*time.Second), fmt.Sprintf("workers through %s stopped by SIGTERM", addr),
		func() (bool, error) { return !running(), nil })
	for _, w := range workers {
		w.Stop() // kills what SIGTERM did not stop, and what a worker left in its process group
	}
	t.Logf("through %s: workers stopped after %v", addr, time.Since(start).Round(time.Millisecond))
	for i, w := range workers {
		if errs := errorLines(w.Log()); len(errs) > 0 {
			t.Logf("through %s: worker %d's errors (%d lines):\n%s", addr, i+1, len(errs), strings.Join(errs, "\n"))
		}
	}

	result := map[string]any{}
	v, err := testutil.RedisDo(addr, "", "LRANGE", "done", "0", "-1")
	if err != nil {
		t.Fatalf("LRANGE done through %s: %v", addr, err)
	}
	done, _ := v.([]any)
	seen := map[string]int{}
	for _, e := range done {
		seen[fmt.Sprint(e)]++
	}
	var dups []string
	missing := 0
	for n := range workerJobs {
		switch seen[strconv.Itoa(n)] {
		case 0:
			missing++
		case 1:
		default:
			dups = append(dups, strconv.Itoa(n))
		}
	}
	result["done"], result["duplicates"], result["missing"] = len(done), dups, missing
	left := map[string]int64{}
	for _, k := range q.keys() {
		if left[k], err = redisInt(addr, "LLEN", k); err != nil {
			t.Errorf("LLEN %q through %s: %v", k, addr, err)
		}
	}
	result["left"] = left
	if q.registry != "" {
		if result["registered"], err = redisInt(addr, "SCARD", q.registry); err != nil {
			t.Errorf("SCARD %s through %s: %v", q.registry, addr, err)
		}
	}
	books := map[string]any{}
	for _, cmd := range q.books {
		if books[strings.Join(cmd, " ")], err = testutil.RedisDo(addr, "", cmd...); err != nil {
			t.Errorf("%s through %s: %v", strings.Join(cmd, " "), addr, err)
		}
	}
	result["books"] = books
	return result
}

// errorLines returns the lines of a worker's output that report an error,
// at most 20, without the repeated ones.
func errorLines(log string) []string {
	var out []string
	seen := map[string]bool{}
	for _, ln := range strings.Split(log, "\n") {
		if !strings.Contains(ln, "Error") && !strings.Contains(ln, "ERROR") && !strings.Contains(ln, "Traceback") {
			continue
		}
		// Sidekiq's and RQ's lines start with the time.
		key := ln
		if i := strings.Index(ln, " ERROR"); i >= 0 {
			key = ln[i:]
		}
		if !seen[key] && len(out) < 20 {
			seen[key] = true
			out = append(out, ln)
		}
	}
	return out
}

// infoField returns field of section of server s's INFO.
func infoField(t *testing.T, s *testutil.Server, section, field string) string {
	t.Helper()
	v, err := testutil.RedisDo(s.Addr, "", "INFO", section)
	if err != nil {
		t.Fatalf("INFO %s %s: %v", section, s.Addr, err)
	}
	for _, ln := range strings.Split(fmt.Sprint(v), "\n") {
		if val, ok := strings.CutPrefix(ln, field+":"); ok {
			return strings.TrimSpace(val)
		}
	}
	return ""
}

// blockingCalls returns how many times servers ran the command cmd (a
// blocking pop), from INFO commandstats.
func blockingCalls(t *testing.T, cmd string, servers ...*testutil.Server) int64 {
	t.Helper()
	var calls int64
	for _, s := range servers {
		v, err := testutil.RedisDo(s.Addr, "", "INFO", "commandstats")
		if err != nil {
			t.Fatalf("INFO commandstats %s: %v", s.Addr, err)
		}
		for _, ln := range strings.Split(fmt.Sprint(v), "\n") {
			if rest, ok := strings.CutPrefix(ln, "cmdstat_"+cmd+":calls="); ok {
				n, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
				calls += n
			}
		}
	}
	return calls
}

// checkJobQueue runs q with a lone redis-server, where every job must run
// exactly once and the workers must have blocked with cmd, then through
// pool p of servers, which must give the same outcome and leave nothing
// blocked, in the proxy or on a server; nor must new workers killed
// while they wait for a job.
func checkJobQueue(t *testing.T, q jobQueue, cmd string, lone *testutil.Server, p *Pool, servers []*testutil.Server) {
	t.Helper()
	q.onServers(t, p)
	want := runJobQueue(t, lone.Addr, q)
	ideal := map[string]any{"done": workerJobs, "duplicates": []string(nil), "missing": 0, "left": want["left"], "books": want["books"]}
	if q.registry != "" {
		ideal["registered"] = int64(0)
	}
	for k, n := range want["left"].(map[string]int64) {
		if n != 0 {
			t.Errorf("with a lone redis-server, %d jobs are left in %q", n, k)
		}
	}
	sameJSON(t, "the jobs run with a lone redis-server (want: each once)", want, ideal)
	t.Logf("with a lone redis-server, the framework's books: %v", want["books"])
	if n := blockingCalls(t, cmd, lone); n < workerJobs {
		t.Errorf("with a lone redis-server the workers ran %s %d times, want one per job at least", strings.ToUpper(cmd), n)
	}
	if t.Failed() {
		t.FailNow()
	}

	got := runJobQueue(t, p.Addr().String(), q)
	sameJSON(t, "the jobs run", got, want)
	// A blocking pop over several servers that got elements on more than
	// one pushes the extra ones back.
	t.Logf("through the proxy the servers ran %s %d times; the proxy pushed back %d elements",
		strings.ToUpper(cmd), blockingCalls(t, cmd, servers...), p.stats.pushedBack.Load())
	// The workers are gone: no client is blocked in the proxy, and no
	// connection of the proxy is left blocked on a server.
	unblocked := func() (bool, error) {
		var where []string
		if n := p.stats.blocked.Load(); n != 0 {
			where = append(where, fmt.Sprintf("the pool's blocked_clients %d", n))
		}
		for _, s := range servers {
			if n := infoField(t, s, "clients", "blocked_clients"); n != "0" {
				where = append(where, fmt.Sprintf("%s blocked_clients %s", s.Addr, n))
			}
		}
		return len(where) == 0, errors.New(strings.Join(where, ", "))
	}
	waitUntil(t, time.Now().Add(3*time.Second), "nothing blocked once the workers stopped", unblocked)

	// Workers killed (SIGKILL) while they wait for a job leave nothing
	// blocked either: the proxy cancels their blocking pops.
	workers := q.start(t, p.Addr().String())
	waitUntil(t, time.Now().Add(10*time.Second), "new workers blocked in the proxy", func() (bool, error) {
		for _, w := range workers {
			if !w.Running() {
				return false, errExited
			}
		}
		return p.stats.blocked.Load() >= int64(len(workers)), nil
	})
	for _, w := range workers {
		w.Kill()
	}
	waitUntil(t, time.Now().Add(3*time.Second), "nothing blocked once the workers were killed", unblocked)
}

// workerPools starts a lone redis-server, and three servers behind the
// proxy's pools; it returns the lone server, the servers and the pool
// "split" (split_transactions: the frameworks' bookkeeping is MULTI/EXEC
// over keys they cannot tag).
func workerPools(t *testing.T) (*testutil.Server, []*testutil.Server, *Pool) {
	t.Helper()
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	return lone, servers, clientPools(t, servers)["split"]
}

// clientScript returns the absolute path of a file of testdata/clients.
func clientScript(t *testing.T, name string) string {
	t.Helper()
	path, err := filepath.Abs(filepath.Join("testdata", "clients", name))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSidekiqWorker: the sidekiq CLI (`sidekiq -r sidekiq_worker.rb -q
// critical -q default -q low`, REDIS_URL, concurrency 10) processes 1,000 jobs
// that Sidekiq::Client pushes to its three queues, whose lists are on two
// servers: each of its 10 processors fetches with `BRPOP queue:critical
// queue:default queue:low 2`. Each job runs once and is counted
// processed, as with a lone redis-server, and SIGTERM stops the process,
// which unregisters itself.
func TestSidekiqWorker(t *testing.T) {
	rb := testutil.Library(t, "ruby:sidekiq")
	worker := clientScript(t, "sidekiq_worker.rb")
	lone, servers, split := workerPools(t)
	q := jobQueue{
		start: func(t *testing.T, addr string) []*testutil.Server {
			t.Setenv("REDIS_URL", "redis://"+addr+"/0")
			return []*testutil.Server{testutil.StartProcess(t, "sidekiq", []string{"-r", worker, "-q", "critical", "-q", "default", "-q", "low"})}
		},
		registry: "processes",
		interp:   rb,
		feed:     "sidekiq_push_many.rb",
		queues:   []string{"critical", "default", "low"},
		key:      func(q string) string { return "queue:" + q },
		// Each process's counters are added to the totals at its
		// heartbeat and when it exits; failed jobs go to the sorted set
		// retry.
		books: [][]string{{"GET", "stat:processed"}, {"GET", "stat:failed"}, {"ZCARD", "retry"}, {"ZCARD", "dead"}},
	}
	checkJobQueue(t, q, "brpop", lone, split, servers)
}

// TestRQWorker: two `rq worker high default low` (not in burst mode: they
// wait for a job with BLPOP rq:queue:high rq:queue:default rq:queue:low
// and a timeout of 405 s, and fork a work horse per job) run 1,000 jobs
// that Queue.enqueue puts in the three queues, whose lists are on three
// servers. Each job runs once and is recorded finished, as with a lone
// redis-server, and SIGTERM stops the workers, which unregister
// themselves. Through the proxy too: its worker records a success in one
// MULTI/EXEC under WATCH rq:job:ID:dependents (handle_job_success), over
// keys on several servers, which the split pool runs as a split
// transaction guarded by the watch (execWatchedSplit).
func TestRQWorker(t *testing.T) {
	py := testutil.Library(t, "python3:rq")
	dir := filepath.Dir(clientScript(t, "rqjobs.py"))
	lone, servers, split := workerPools(t)
	// The workers import rqjobs from dir: Python would write its
	// __pycache__ there.
	t.Setenv("PYTHONDONTWRITEBYTECODE", "1")
	q := jobQueue{
		start: func(t *testing.T, addr string) []*testutil.Server {
			var workers []*testutil.Server
			for range 2 {
				workers = append(workers, testutil.StartProcess(t, "rq", []string{"worker", "-u", "redis://" + addr + "/0", "-P", dir, "high", "default", "low"}))
			}
			return workers
		},
		registry: "rq:workers",
		interp:   py,
		feed:     "rq_enqueue_many.py",
		queues:   []string{"high", "default", "low"},
		key:      func(q string) string { return "rq:queue:" + q },
	}
	// A job is in its queue's registry of started jobs (rq:wip:QUEUE)
	// while it runs, then in that of the finished or failed jobs.
	for _, name := range q.queues {
		for _, reg := range []string{"wip", "finished", "failed"} {
			q.books = append(q.books, []string{"ZCARD", "rq:" + reg + ":" + name})
		}
	}
	checkJobQueue(t, q, "blpop", lone, split, servers)
}

// TestKombuWorker: a kombu Consumer over four queues bound to a direct
// exchange, draining its Connection's events as Celery's worker does,
// gets 1,000 messages that a Producer publishes to them round robin. The
// transport waits with one BRPOP over the 16 lists of the queues (one per
// priority), on all three servers, with a timeout of 1 s. Each message
// is handled once and acked, as with a lone redis-server.
func TestKombuWorker(t *testing.T) {
	py := testutil.Library(t, "python3:kombu")
	consumer := clientScript(t, "kombu_consume.py")
	lone, servers, split := workerPools(t)
	t.Setenv("PYTHONDONTWRITEBYTECODE", "1")
	queues := []string{"celery", "emails", "billing", "images"}
	q := jobQueue{
		start: func(t *testing.T, addr string) []*testutil.Server {
			return []*testutil.Server{testutil.StartProcess(t, py, append([]string{consumer, addr}, queues...))}
		},
		// The consumer has declared its queues: their bindings are in the
		// exchange's set.
		ready: func(addr string) (bool, error) {
			n, err := redisInt(addr, "SCARD", "_kombu.binding.jobs")
			return n == int64(len(queues)), err
		},
		interp: py,
		feed:   "kombu_publish_many.py",
		queues: queues,
		key:    func(q string) string { return q },
		// A message delivered and not yet acked is in the hash unacked
		// and the sorted set unacked_index.
		books: [][]string{{"HLEN", "unacked"}, {"ZCARD", "unacked_index"}},
	}
	checkJobQueue(t, q, "brpop", lone, split, servers)
}
