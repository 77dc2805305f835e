package proxy

// client_output_limit: a client that sends requests without reading its
// replies is stopped (its session reads no more) once the replies the proxy
// holds for it, plus those it expects for its requests in flight, reach the
// limit; nothing is lost, and other clients keep their latency.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// sessionOf returns the session of the client connected from local.
func sessionOf(t *testing.T, px *Proxy, local net.Addr) *session {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		p := px.Pools()[0]
		p.mu.Lock()
		for s := range p.sessions {
			if s.conn.RemoteAddr().String() == local.String() {
				p.mu.Unlock()
				return s
			}
		}
		p.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("no session for %s", local)
	return nil
}

// counts returns what s holds for its client.
func (s *session) counts() (held, waiting, queued int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held, s.waiting, s.queue.len()
}

// TestBackpressureLossless: a client pipelines GETs of 256 KiB values
// without reading. The proxy stops reading from it near the limit (so its
// writes block), holds no more than the limit and one reply, and once the
// client reads, every reply comes, in order, and nothing is left held.
func TestBackpressureLossless(t *testing.T) {
	const (
		limit = 1 << 20
		size  = 256 << 10
		keys  = 8
		gets  = 400 // 100 MiB of replies
	)
	srv := startRedises(t, 1)
	px, addr := redisPool(t, fmt.Sprintf("  client_output_limit: %d\n", limit), srv...)
	c := dialRaw(t, addr)
	var replies []string
	for k := range keys {
		key := fmt.Sprintf("v%d", k)
		v := bigValue(key, size)
		if got := c.roundTrip(cmd("SET", key, v)); got != "+OK\r\n" {
			t.Fatalf("SET: %q", got)
		}
		replies = append(replies, fmt.Sprintf("$%d\r\n%s\r\n", len(v), v))
	}
	s := sessionOf(t, px, c.conn.LocalAddr())

	var req strings.Builder
	for i := range gets {
		req.WriteString(cmd("GET", fmt.Sprintf("v%d", i%keys)))
	}
	done := writePieces(t, c, req.String(), 0)

	// The requests are tiny: without the limit they would all be read and
	// sent at once, and 100 MiB of replies held.
	time.Sleep(300 * time.Millisecond)
	maxHeld := 0
	for range 20 {
		held, _, _ := s.counts()
		maxHeld = max(maxHeld, held)
		time.Sleep(5 * time.Millisecond)
	}
	held, waiting, queued := s.counts()
	t.Logf("client not reading: %d bytes held, %d requests waiting, %d queued", held, waiting, queued)
	if maxHeld > limit+size+size/2 {
		t.Errorf("the proxy holds %d bytes for a client that reads nothing, limit %d", maxHeld, limit)
	}
	// The requests themselves fit the socket's buffers: what shows that
	// the proxy stopped reading them is how few it has queued.
	if queued > limit/size+2 {
		t.Errorf("%d requests queued: the proxy did not stop reading", queued)
	}

	for i := range gets {
		if got := c.readReply(); got != replies[i%keys] {
			t.Fatalf("reply %d: %d bytes %.40q", i, len(got), got)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := c.roundTrip(cmd("PING")); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	// The client can read PONG before the writer has counted it written.
	if !waitFor(2*time.Second, func() bool {
		held, waiting, queued = s.counts()
		return held == 0 && waiting == 0 && queued == 0
	}) {
		t.Errorf("after every reply was read: %d bytes held, %d waiting, %d queued", held, waiting, queued)
	}
	s.mu.Lock()
	if s.sent != s.answered {
		t.Errorf("request bytes sent %d, answered %d", s.sent, s.answered)
	}
	s.mu.Unlock()
}

// TestBackpressureLargeRequests: a client pipelining large SETs without
// reading has at most the limit of request bytes unanswered at a time (one
// SET larger than the limit still goes).
func TestBackpressureLargeRequests(t *testing.T) {
	const (
		limit = 1 << 20
		size  = 3 << 20
		sets  = 12
	)
	srv := startRedises(t, 1)
	px, addr := redisPool(t, fmt.Sprintf("  client_output_limit: %d\n", limit), srv...)
	c := dialRaw(t, addr)
	if got := c.roundTrip(cmd("PING")); got != "+PONG\r\n" {
		t.Fatalf("PING: %q", got)
	}
	// This client is the only one: what its server connection has queued
	// and in flight is what the client has unanswered.
	b := px.Pools()[0].servers[0].conns[0]
	var req strings.Builder
	for i := range sets {
		k := fmt.Sprintf("big%d", i)
		req.WriteString(cmd("SET", k, bigValue(k, size)))
	}
	done := writePieces(t, c, req.String(), 0)
	maxUnanswered := 0
	for range 50 {
		b.mu.Lock()
		maxUnanswered = max(maxUnanswered, int(b.counts.inQueueBytes+b.counts.outQueueBytes))
		b.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	t.Logf("at most %d request bytes unanswered", maxUnanswered)
	for i := range sets {
		if got := c.readReply(); got != "+OK\r\n" {
			t.Fatalf("SET %d: %q", i, got)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if maxUnanswered > size+size/2 {
		t.Errorf("%d request bytes unanswered at once, want one %d-byte SET at most", maxUnanswered, size)
	}
	for i := range sets {
		k := fmt.Sprintf("big%d", i)
		if got := c.roundTrip(cmd("STRLEN", k)); got != fmt.Sprintf(":%d\r\n", size) {
			t.Fatalf("STRLEN %s: %q", k, got)
		}
	}
}

// latencies runs n clients doing PING and GET round trips for d and returns
// every round trip's duration.
func latencies(t *testing.T, addr string, n int, d time.Duration) []time.Duration {
	t.Helper()
	var (
		mu   sync.Mutex
		all  []time.Duration
		wg   sync.WaitGroup
		errs atomic.Value
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				errs.Store(err)
				return
			}
			defer c.Close()
			r := bufio.NewReader(c)
			reqs := []string{cmd("PING"), cmd("GET", "small")}
			want := []string{"+PONG\r\n", "$5\r\nhello\r\n"}
			var own []time.Duration
			end := time.Now().Add(d)
			_ = c.SetDeadline(end.Add(10 * time.Second))
			for k := i; time.Now().Before(end); k++ {
				start := time.Now()
				if _, err := io.WriteString(c, reqs[k%2]); err != nil {
					errs.Store(err)
					return
				}
				var b strings.Builder
				if err := readRESP(r, &b); err != nil || b.String() != want[k%2] {
					errs.Store(fmt.Errorf("reply %q, %v", b.String(), err))
					return
				}
				own = append(own, time.Since(start))
			}
			mu.Lock()
			all = append(all, own...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if err, ok := errs.Load().(error); ok {
		t.Fatal(err)
	}
	return all
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[int(float64(len(d)-1)*p)]
}

// TestFloodingClientLatency: one client pipelines 1 KB SETs and GETs of a
// 1 MiB value without reading its replies for 3 s, on the same server
// connection as four clients doing round trips. The flooder is stopped at
// client_output_limit, and the others' p99 stays within twice what it was
// just before (or 2 ms, whichever is larger: tiny baselines are noise).
func TestFloodingClientLatency(t *testing.T) {
	const (
		limit   = 16 << 20
		value   = 1 << 20
		victims = 4
	)
	srv := startRedises(t, 1)
	px, addr := redisPool(t, fmt.Sprintf("  client_output_limit: %d\n", limit), srv...)
	setup := dialRaw(t, addr)
	for _, kv := range [][2]string{{"small", "hello"}, {"big", bigValue("big", value)}} {
		if got := setup.roundTrip(cmd("SET", kv[0], kv[1])); got != "+OK\r\n" {
			t.Fatalf("SET %s: %q", kv[0], got)
		}
	}

	base := latencies(t, addr, victims, time.Second)

	flooder, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer flooder.Close()
	chunk := floodChunk()
	const flood = 3 * time.Second
	var sent atomic.Int64
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		_ = flooder.SetWriteDeadline(time.Now().Add(flood))
		for {
			n, err := io.WriteString(flooder, chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()
	s := sessionOf(t, px, flooder.LocalAddr())
	var maxHeld atomic.Int64
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			held, _, _ := s.counts()
			if int64(held) > maxHeld.Load() {
				maxHeld.Store(int64(held))
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
	}()
	loaded := latencies(t, addr, victims, flood)
	<-floodDone
	close(stopWatch)
	<-watchDone

	bp99, lp99 := percentile(base, .99), percentile(loaded, .99)
	t.Logf("round trips of %d clients: before the flood n=%d p50=%v p99=%v; during it n=%d p50=%v p99=%v max=%v",
		victims, len(base), percentile(base, .5), bp99, len(loaded), percentile(loaded, .5), lp99, percentile(loaded, 1))
	t.Logf("flooder: %d KiB of requests taken in %v, at most %d KiB of replies held for it (limit %d KiB)",
		sent.Load()>>10, flood, maxHeld.Load()>>10, limit>>10)
	if bound := max(2*bp99, 2*time.Millisecond); lp99 > bound {
		t.Errorf("p99 during the flood %v, want at most %v", lp99, bound)
	}
	if held := maxHeld.Load(); held > limit+2*value {
		t.Errorf("%d bytes held for the flooder, limit %d", held, limit)
	}
	// Each 1 MiB reply comes with a 1 KB SET: the request bytes the
	// proxy forwarded count the replies it fetched. Some MiB of replies
	// fit the sockets' buffers besides the limit.
	s.mu.Lock()
	answered := s.answered
	s.mu.Unlock()
	t.Logf("flooder: %d KiB of requests forwarded", answered>>10)
	if answered > 256<<10 {
		t.Errorf("%d bytes of the flooder's requests forwarded: the proxy kept reading from it", answered)
	}
}

// floodChunk is what a flooding client sends, again and again, without
// reading: 16 SETs of 1 KB and 16 GETs of the large value "big".
func floodChunk() string {
	var b strings.Builder
	for range 16 {
		b.WriteString(cmd("SET", "flood", strings.Repeat("f", 1000)))
		b.WriteString(cmd("GET", "big"))
	}
	return b.String()
}
