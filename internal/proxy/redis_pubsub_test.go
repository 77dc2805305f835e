package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// TestPubSubMatchesRedis: subscribe, publish, the messages, PING and the
// refused commands in subscribe mode, the unsubscribes and RESET, byte for
// byte as with a lone redis-server, through a pool of three servers.
func TestPubSubMatchesRedis(t *testing.T) {
	servers := startRedises(t, 3)
	_, addr := redisPool(t, "", servers...)
	lone := startRedises(t, 1)[0]
	for _, target := range []struct{ name, addr string }{{"redis-server", lone.Addr}, {"proxy", addr}} {
		t.Run(target.name, func(t *testing.T) {
			a, b := dialRaw(t, target.addr), dialRaw(t, target.addr)
			steps := []struct {
				c    *rawClient
				req  string
				want []string // the replies, in order
			}{
				{a, cmd("UNSUBSCRIBE"), []string{"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"}},
				{a, cmd("PUNSUBSCRIBE", "nothing"), []string{"*3\r\n$12\r\npunsubscribe\r\n$7\r\nnothing\r\n:0\r\n"}},
				{a, cmd("SUBSCRIBE", "ch1", "ch2", "ch1"), []string{
					"*3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:1\r\n",
					"*3\r\n$9\r\nsubscribe\r\n$3\r\nch2\r\n:2\r\n",
					"*3\r\n$9\r\nsubscribe\r\n$3\r\nch1\r\n:2\r\n"}},
				{b, cmd("PUBLISH", "ch1", "hello"), []string{":1\r\n"}},
				{a, "", []string{"*3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n"}},
				{a, cmd("PSUBSCRIBE", "ch*"), []string{"*3\r\n$10\r\npsubscribe\r\n$3\r\nch*\r\n:3\r\n"}},
				{b, cmd("PUBLISH", "ch2", "x"), []string{":2\r\n"}},
				{a, "", []string{"*3\r\n$7\r\nmessage\r\n$3\r\nch2\r\n$1\r\nx\r\n", "*4\r\n$8\r\npmessage\r\n$3\r\nch*\r\n$3\r\nch2\r\n$1\r\nx\r\n"}},
				{b, cmd("PUBLISH", "ch9", "y"), []string{":1\r\n"}},
				{a, "", []string{"*4\r\n$8\r\npmessage\r\n$3\r\nch*\r\n$3\r\nch9\r\n$1\r\ny\r\n"}},
				{b, cmd("PUBLISH", "other", "z"), []string{":0\r\n"}},
				{a, cmd("PING"), []string{"*2\r\n$4\r\npong\r\n$0\r\n\r\n"}},
				{a, cmd("PING", "hi"), []string{"*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"}},
				{a, cmd("GET", "k"), []string{"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"}},
				{a, cmd("PUBLISH", "ch1", "v"), []string{"-ERR Can't execute 'publish': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"}},
				{a, cmd("CLIENT", "LIST"), []string{"-ERR Can't execute 'client|list': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"}},
				{a, cmd("KEYS", "*"), []string{"-ERR Can't execute 'keys': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n"}},
				{a, cmd("GET"), []string{"-ERR wrong number of arguments for 'get' command\r\n"}},
				{a, cmd("UNSUBSCRIBE", "ch1", "nope"), []string{
					"*3\r\n$11\r\nunsubscribe\r\n$3\r\nch1\r\n:2\r\n",
					"*3\r\n$11\r\nunsubscribe\r\n$4\r\nnope\r\n:2\r\n"}},
				{b, "settle NUMSUB ch1", nil},
				{b, cmd("PUBLISH", "ch1", "gone"), []string{":1\r\n"}}, // the pattern still matches
				{a, "", []string{"*4\r\n$8\r\npmessage\r\n$3\r\nch*\r\n$3\r\nch1\r\n$4\r\ngone\r\n"}},
				{a, cmd("UNSUBSCRIBE"), []string{"*3\r\n$11\r\nunsubscribe\r\n$3\r\nch2\r\n:1\r\n"}},
				{a, cmd("UNSUBSCRIBE"), []string{"*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:1\r\n"}},
				{a, cmd("PUNSUBSCRIBE"), []string{"*3\r\n$12\r\npunsubscribe\r\n$3\r\nch*\r\n:0\r\n"}},
				{a, cmd("GET", "k"), []string{"$-1\r\n"}},
				{a, cmd("PING"), []string{"+PONG\r\n"}},
				{a, cmd("SSUBSCRIBE", "s1", "s2"), []string{
					"*3\r\n$10\r\nssubscribe\r\n$2\r\ns1\r\n:1\r\n",
					"*3\r\n$10\r\nssubscribe\r\n$2\r\ns2\r\n:2\r\n"}},
				{a, cmd("SUBSCRIBE", "c"), []string{"*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n"}},
				{b, cmd("SPUBLISH", "s1", "v"), []string{":1\r\n"}},
				{a, "", []string{"*3\r\n$8\r\nsmessage\r\n$2\r\ns1\r\n$1\r\nv\r\n"}},
				{b, cmd("PUBSUB", "NUMSUB", "c", "s1", "none"), []string{"*6\r\n$1\r\nc\r\n:1\r\n$2\r\ns1\r\n:0\r\n$4\r\nnone\r\n:0\r\n"}},
				{b, cmd("PUBSUB", "SHARDNUMSUB", "s1"), []string{"*2\r\n$2\r\ns1\r\n:1\r\n"}},
				{b, cmd("PUBSUB", "CHANNELS"), []string{"*1\r\n$1\r\nc\r\n"}},
				{b, cmd("PUBSUB", "SHARDCHANNELS", "s1*"), []string{"*1\r\n$2\r\ns1\r\n"}},
				{b, cmd("PUBSUB", "NUMPAT"), []string{":0\r\n"}},
				{b, cmd("PUBSUB", "NOSUCH"), []string{"-ERR unknown subcommand 'NOSUCH'. Try PUBSUB HELP.\r\n"}},
				{a, cmd("SUNSUBSCRIBE", "s1"), []string{"*3\r\n$12\r\nsunsubscribe\r\n$2\r\ns1\r\n:1\r\n"}},
				{a, cmd("RESET"), []string{"+RESET\r\n"}},
				{a, cmd("GET", "k"), []string{"$-1\r\n"}},
				{b, "settle NUMSUB c", nil},
				{b, "settle SHARDNUMSUB s2", nil},
				{b, cmd("PUBLISH", "c", "after reset"), []string{":0\r\n"}},
				{b, cmd("SPUBLISH", "s2", "after reset"), []string{":0\r\n"}},
				{a, cmd("SUBSCRIBE", "q"), []string{"*3\r\n$9\r\nsubscribe\r\n$1\r\nq\r\n:1\r\n"}},
				{a, cmd("QUIT"), []string{"+OK\r\n"}},
			}
			for i, st := range steps {
				if sub, ch, ok := strings.Cut(strings.TrimPrefix(st.req, "settle "), " "); ok && strings.HasPrefix(st.req, "settle ") {
					// The servers hear the proxy's unsubscribes a round
					// trip after the client's reply (redis.md): wait
					// until the channel's server no longer counts it.
					want := fmt.Sprintf("*2\r\n$%d\r\n%s\r\n:0\r\n", len(ch), ch)
					if !waitFor(5*time.Second, func() bool { return st.c.roundTrip(cmd("PUBSUB", sub, ch)) == want }) {
						t.Errorf("step %d: the servers still count a subscription to %s", i, ch)
					}
					continue
				}
				if st.req != "" {
					st.c.send(st.req)
				}
				for j, want := range st.want {
					if got := st.c.readReply(); got != want {
						t.Errorf("step %d %q reply %d: %q, want %q", i, st.req, j, got, want)
					}
				}
			}
			a.expectClosed()
			// The subscription of the client that quit is gone.
			var got string
			if !waitFor(5*time.Second, func() bool {
				got = b.roundTrip(cmd("PUBLISH", "q", "x"))
				return got == ":0\r\n"
			}) {
				t.Fatalf("PUBLISH after the subscriber quit: %q", got)
			}
		})
	}
}

// TestPubSubInsideMulti: the pub/sub commands are refused inside MULTI,
// which discards the transaction.
func TestPubSubInsideMulti(t *testing.T) {
	servers := startRedises(t, 2)
	_, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)
	for _, st := range []struct{ req, want string }{
		{cmd("MULTI"), "+OK\r\n"},
		{cmd("SUBSCRIBE", "a"), "-ERR 'subscribe' inside MULTI is not supported through the proxy: pub/sub is served by the proxy's subscriber connections, outside any transaction\r\n"},
		{cmd("PUBLISH", "a", "b"), "-ERR 'publish' inside MULTI is not supported through the proxy: pub/sub is served by the proxy's subscriber connections, outside any transaction\r\n"},
		{cmd("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{cmd("PING"), "+PONG\r\n"},
	} {
		if got := c.roundTrip(st.req); got != st.want {
			t.Errorf("%q: %q, want %q", st.req, got, st.want)
		}
	}
}

// clientsWithSubscriptions counts a server's connections that hold
// subscriptions (CLIENT LIST: sub, psub or ssub above 0).
func clientsWithSubscriptions(t testing.TB, srv *testutil.Server) int {
	t.Helper()
	v, err := testutil.RedisDo(srv.Addr, "", "CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(v.(string), "\n") {
		for _, f := range strings.Fields(line) {
			k, val, _ := strings.Cut(f, "=")
			if (k == "sub" || k == "psub" || k == "ssub") && val != "0" {
				n++
				break
			}
		}
	}
	return n
}

// pubsubPlan is the scenario of the client library tests: 100 subscribers
// over 16 channels, two patterns and keyspace notifications (a keyspace
// channel of each of 4 keys, the keyevent channel of INCRBY, a pattern of
// keyspace channels); 10,000 messages published in turn to the 16
// channels, and 200 INCRs of the 4 keys.
type pubsubPlan struct {
	channels [100][]string
	patterns [100][]string
}

const (
	planMessages = 10000
	planIncrs    = 200
)

func newPubsubPlan() *pubsubPlan {
	p := new(pubsubPlan)
	for i := range 100 {
		p.channels[i] = []string{fmt.Sprintf("news.%d", i%16)}
		if other := fmt.Sprintf("news.%d", (i*7+3)%16); other != p.channels[i][0] {
			p.channels[i] = append(p.channels[i], other)
		}
		switch {
		case i%10 == 5:
			p.channels[i] = append(p.channels[i], fmt.Sprintf("__keyspace@0__:kv%d", i%4))
		case i%10 == 7:
			p.channels[i] = append(p.channels[i], "__keyevent@0__:incrby")
		}
		if i%4 == 0 {
			p.patterns[i] = append(p.patterns[i], "news.1*")
		}
		if i%25 == 3 {
			p.patterns[i] = append(p.patterns[i], "__key*__:kv1")
		}
	}
	return p
}

// planMsg is one message as a subscriber sees it.
type planMsg struct{ pattern, channel, payload string }

// want returns what subscriber i must receive, per (pattern, channel) in
// order: the channels' messages are ordered on their server; across
// servers only per channel.
func (p *pubsubPlan) want(i int) map[[2]string][]string {
	out := make(map[[2]string][]string)
	add := func(ch, payload string) {
		for _, c := range p.channels[i] {
			if c == ch {
				out[[2]string{"", ch}] = append(out[[2]string{"", ch}], payload)
			}
		}
		for _, pat := range p.patterns[i] {
			if ok, _ := path.Match(strings.ReplaceAll(pat, "__key*__", "__key*"), ch); ok {
				out[[2]string{pat, ch}] = append(out[[2]string{pat, ch}], payload)
			}
		}
	}
	for j := range planMessages {
		add(fmt.Sprintf("news.%d", j%16), fmt.Sprintf("m%d", j))
	}
	for j := range planIncrs {
		add(fmt.Sprintf("__keyspace@0__:kv%d", j%4), "incrby")
		add("__keyevent@0__:incrby", fmt.Sprintf("kv%d", j%4))
	}
	return out
}

// check compares what subscriber i received with what it must.
func (p *pubsubPlan) check(i int, got []planMsg) error {
	want := p.want(i)
	have := make(map[[2]string][]string)
	for _, m := range got {
		k := [2]string{m.pattern, m.channel}
		have[k] = append(have[k], m.payload)
	}
	for k, w := range want {
		if !slices.Equal(have[k], w) {
			return fmt.Errorf("subscriber %d, %q: %d messages, want %d (first differences: %v)", i, k, len(have[k]), len(w), firstDiff(have[k], w))
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			return fmt.Errorf("subscriber %d: %d unexpected messages on %q", i, len(have[k]), k)
		}
	}
	return nil
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: %q vs %q", i, a[i], b[i])
		}
	}
	return "one is a prefix of the other"
}

func (p *pubsubPlan) total(i int) int {
	n := 0
	for _, w := range p.want(i) {
		n += len(w)
	}
	return n
}

// TestPubSubGoRedis: go-redis v9's PubSub, 100 subscribers, the plan's
// messages: each subscriber gets exactly its channels' and patterns'
// messages, in publish order per channel, and each server carries them on
// one subscriber connection.
func TestPubSubGoRedis(t *testing.T) {
	servers := startRedises(t, 3)
	for _, srv := range servers {
		if _, err := testutil.RedisDo(srv.Addr, "", "CONFIG", "SET", "notify-keyspace-events", "KEA"); err != nil {
			t.Fatal(err)
		}
	}
	// With a timeout, the subscriber connections are pinged while the
	// messages flow (every half of it). Not shorter: under the race
	// detector, on two busy cores, a pipelined burst of PUBLISHes has
	// waited over 100 ms for its first reply.
	_, addr := redisPool(t, "  timeout: 1000\n", servers...)
	plan := newPubsubPlan()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4})
	defer rdb.Close()

	var subs [100]*redis.PubSub
	for i := range subs {
		ps := rdb.Subscribe(ctx, plan.channels[i]...)
		if len(plan.patterns[i]) > 0 {
			if err := ps.PSubscribe(ctx, plan.patterns[i]...); err != nil {
				t.Fatal(err)
			}
		}
		defer ps.Close()
		subs[i] = ps
		// Every confirmation, before anything is published.
		for n := 0; n < len(plan.channels[i])+len(plan.patterns[i]); n++ {
			v, err := ps.Receive(ctx)
			if err != nil {
				t.Fatalf("subscriber %d: %v", i, err)
			}
			if _, ok := v.(*redis.Subscription); !ok {
				t.Fatalf("subscriber %d: %T %v before its confirmations", i, v, v)
			}
		}
	}
	for _, srv := range servers {
		if n := clientsWithSubscriptions(t, srv); n != 1 {
			t.Errorf("server %s: %d connections with subscriptions, want 1", srv.Addr, n)
		}
	}

	var wg sync.WaitGroup
	got := make([][]planMsg, 100)
	errs := make([]error, 100)
	for i := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			total := plan.total(i)
			for len(got[i]) < total {
				m, err := subs[i].ReceiveMessage(ctx)
				if err != nil {
					errs[i] = err
					return
				}
				got[i] = append(got[i], planMsg{m.Pattern, m.Channel, m.Payload})
			}
		}()
	}
	for start := 0; start < planMessages; start += 500 {
		pipe := rdb.Pipeline()
		for j := start; j < start+500; j++ {
			pipe.Publish(ctx, fmt.Sprintf("news.%d", j%16), fmt.Sprintf("m%d", j))
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for j := range planIncrs {
		if err := rdb.Incr(ctx, fmt.Sprintf("kv%d", j%4)).Err(); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i := range subs {
		if errs[i] != nil {
			t.Errorf("subscriber %d after %d of %d messages: %v", i, len(got[i]), plan.total(i), errs[i])
			continue
		}
		if err := plan.check(i, got[i]); err != nil {
			t.Error(err)
		}
	}
}

// TestPubSubSlowSubscriberDropped: a subscriber that stops reading is
// disconnected once client_pubsub_limit bytes of messages wait for it,
// and counted; another subscriber of the same channel gets every message.
func TestPubSubSlowSubscriberDropped(t *testing.T) {
	servers := startRedises(t, 1)
	px, addr := redisPool(t, "  client_pubsub_limit: 65536\n", servers...)
	pool := px.Pools()[0]

	stalled, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	if _, err := stalled.Write([]byte(cmd("SUBSCRIBE", "ch"))); err != nil {
		t.Fatal(err)
	}
	good := dialRaw(t, addr)
	if got := good.roundTrip(cmd("SUBSCRIBE", "ch")); got != "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n" {
		t.Fatal(got)
	}
	pub := dialRaw(t, addr)
	payload := strings.Repeat("x", 10000)
	const n = 2000 // 20 MB: more than the kernel's buffers hold for the stalled client
	received := make(chan error, 1)
	go func() {
		for i := range n {
			want := fmt.Sprintf("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$%d\r\n%d%s\r\n", len(payload)+len(fmt.Sprint(i)), i, payload)
			_ = good.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			var b strings.Builder
			if err := readRESP(good.r, &b); err != nil {
				received <- fmt.Errorf("message %d: %v", i, err)
				return
			}
			if b.String() != want {
				received <- fmt.Errorf("message %d: %.60q", i, b.String())
				return
			}
		}
		received <- nil
	}()
	for i := range n {
		pub.send(cmd("PUBLISH", "ch", fmt.Sprint(i)+payload))
		if got := pub.readReply(); got != ":1\r\n" {
			t.Fatalf("PUBLISH %d: %q", i, got)
		}
	}
	if err := <-received; err != nil {
		t.Fatal(err)
	}
	if got := pool.stats.pubsubDropped.Load(); got != 1 {
		t.Errorf("pubsub_dropped = %d, want 1", got)
	}
	// The stalled client's connection was closed: reading drains what the
	// kernel held, then ends (a reset is an end too).
	_ = stalled.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, stalled); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("stalled subscriber: %v, want the connection closed", err)
	}
	if got := pub.roundTrip(cmd("PUBSUB", "NUMSUB", "ch")); got != "*2\r\n$2\r\nch\r\n:1\r\n" {
		t.Errorf("NUMSUB after the drop: %q", got)
	}
}

// TestPubSubServerRestart: the server of a channel restarts; the proxy
// subscribes again and the subscribers receive what is published once it
// is back (what was published while it was down is lost, as with Redis).
func TestPubSubServerRestart(t *testing.T) {
	servers := startRedises(t, 2)
	px, addr := redisPool(t, "", servers...)
	// A channel on each server.
	var chans [2]string
	for i := 0; chans[0] == "" || chans[1] == ""; i++ {
		ch := fmt.Sprintf("c%d", i)
		for j, srv := range servers {
			if chans[j] == "" && backendOf(px, ch) == srv.Addr {
				chans[j] = ch
			}
		}
	}
	sub := dialRaw(t, addr)
	sub.send(cmd("SUBSCRIBE", chans[0], chans[1]))
	sub.readReply()
	sub.readReply()
	if got := sub.roundTrip(cmd("PSUBSCRIBE", "c*")); got != "*3\r\n$10\r\npsubscribe\r\n$2\r\nc*\r\n:3\r\n" {
		t.Fatal(got)
	}
	pub := dialRaw(t, addr)
	servers[0].Kill()
	servers[0].Restart(t)
	// Until the proxy has subscribed again, the channel has no receiver.
	deadline := time.Now().Add(10 * time.Second)
	var probe string
	for i := 0; ; i++ {
		probe = fmt.Sprintf("probe%d", i)
		got := pub.roundTrip(cmd("PUBLISH", chans[0], probe))
		if got == ":2\r\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("PUBLISH after the restart: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	msg := func(ch, payload string) string {
		return fmt.Sprintf("*3\r\n$7\r\nmessage\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(ch), ch, len(payload), payload)
	}
	pmsg := func(ch, payload string) string {
		return fmt.Sprintf("*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(ch), ch, len(payload), payload)
	}
	// Messages published while the subscriptions were coming back may or
	// may not arrive; the probe that reached both does, and so does
	// everything after it.
	for {
		got := sub.readReply()
		if got == msg(chans[0], probe) {
			break
		}
	}
	for _, want := range []string{pmsg(chans[0], probe)} {
		if got := sub.readReply(); got != want {
			t.Fatalf("after the probe: %q, want %q", got, want)
		}
	}
	for _, ch := range chans {
		if got := pub.roundTrip(cmd("PUBLISH", ch, "after")); got != ":2\r\n" {
			t.Errorf("PUBLISH %s: %q", ch, got)
		}
		for _, want := range []string{msg(ch, "after"), pmsg(ch, "after")} {
			if got := sub.readReply(); got != want {
				t.Errorf("%q, want %q", got, want)
			}
		}
	}
	for _, srv := range servers {
		if n := clientsWithSubscriptions(t, srv); n != 1 {
			t.Errorf("server %s: %d connections with subscriptions, want 1", srv.Addr, n)
		}
	}
}

// TestPubSubRedisPy: redis-py's pubsub(), the same plan, through a pool of
// three servers and with a lone redis-server: the same result, every
// subscriber correct.
func TestPubSubRedisPy(t *testing.T) {
	py := testutil.Library(t, "python3:redis")
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	for _, srv := range append([]*testutil.Server{lone}, servers...) {
		if _, err := testutil.RedisDo(srv.Addr, "", "CONFIG", "SET", "notify-keyspace-events", "KEA"); err != nil {
			t.Fatal(err)
		}
	}
	_, addr := redisPool(t, "", servers...)
	want := runClient(t, py, "redispy_pubsub.py", lone.Addr)
	if want["correct"] != 100.0 {
		t.Fatalf("with a lone redis-server: %v", want)
	}
	got := runClient(t, py, "redispy_pubsub.py", addr)
	sameJSON(t, "redis-py pubsub()", got, want)
}

// clientsWithSubscriptionsAuth is clientsWithSubscriptions for a server
// with a password, not counting the Sentinels' own connections (named
// sentinel-…, subscribed to __sentinel__:hello).
func clientsWithSubscriptionsAuth(t testing.TB, addr, auth string) int {
	t.Helper()
	v, err := testutil.RedisDo(addr, auth, "CLIENT", "LIST")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(v.(string), "\n") {
		if strings.Contains(line, " sub=") && !strings.Contains(line, " sub=0 psub=0 ssub=0 ") && !strings.Contains(line, " name=sentinel-") {
			n++
		}
	}
	return n
}

// TestPubSubSentinelSwitch: after a Sentinel failover (the old master
// stays up, as a replica), the subscriptions are on the new master, with
// the pool's AUTH, and no longer on the old one.
func TestPubSubSentinelSwitch(t *testing.T) {
	tp := testutil.StartSentinelTopology(t, []string{"g"}, 3, testutil.WithPassword(sentinelPassword))
	px, addr := sentinelPool(t, tp, tp.Sentinels)
	if !waitFor(5*time.Second, func() bool { return groupAddr(px, "g") == tp.MasterAddr("g") }) {
		t.Fatal("master not found")
	}
	sub, pub := dialRaw(t, addr), dialRaw(t, addr)
	for _, c := range []*rawClient{sub, pub} {
		if got := c.roundTrip(cmd("AUTH", sentinelPassword)); got != "+OK\r\n" {
			t.Fatal(got)
		}
	}
	if got := sub.roundTrip(cmd("SUBSCRIBE", "ch")); got != "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n" {
		t.Fatal(got)
	}
	old := tp.MasterAddr("g")
	tp.Failover("g")
	if !waitFor(15*time.Second, func() bool { return tp.MasterAddr("g") != old && groupAddr(px, "g") == tp.MasterAddr("g") }) {
		t.Fatalf("no failover: sentinels %s, proxy %s", tp.MasterAddr("g"), groupAddr(px, "g"))
	}
	var probe string
	if !waitFor(10*time.Second, func() bool {
		probe = fmt.Sprint("probe", time.Now().UnixNano())
		return pub.roundTrip(cmd("PUBLISH", "ch", probe)) == ":1\r\n"
	}) {
		t.Fatal("PUBLISH on the new master finds no subscriber")
	}
	want := fmt.Sprintf("*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$%d\r\n%s\r\n", len(probe), probe)
	for {
		if got := sub.readReply(); got == want {
			break
		}
	}
	if n := clientsWithSubscriptionsAuth(t, tp.MasterAddr("g"), sentinelPassword); n != 1 {
		t.Errorf("new master: %d connections with subscriptions, want 1", n)
	}
	if !waitFor(5*time.Second, func() bool { return clientsWithSubscriptionsAuth(t, old, sentinelPassword) == 0 }) {
		t.Errorf("old master: %d connections with subscriptions, want 0", clientsWithSubscriptionsAuth(t, old, sentinelPassword))
	}
}

// TestPubSubClientLeavesWhileSubscribing: a client that closes before its
// subscription is confirmed (the server is paused) leaves nothing behind
// once the server answers: no subscription in the proxy or on the server.
func TestPubSubClientLeavesWhileSubscribing(t *testing.T) {
	servers := startRedises(t, 1)
	px, addr := redisPool(t, "", servers...)
	h := px.Pools()[0].pubsub
	keep := dialRaw(t, addr) // the subscriber connection is up first
	if got := keep.roundTrip(cmd("SUBSCRIBE", "other")); got != "*3\r\n$9\r\nsubscribe\r\n$5\r\nother\r\n:1\r\n" {
		t.Fatal(got)
	}
	servers[0].Pause()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(cmd("SUBSCRIBE", "a", "b") + cmd("PSUBSCRIBE", "p*"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	c.Close()
	time.Sleep(50 * time.Millisecond)
	servers[0].Resume()
	if !waitFor(5*time.Second, func() bool {
		h.mu.RLock()
		defer h.mu.RUnlock()
		n := 0
		for _, c := range h.conns {
			n += len(c.subs)
		}
		return len(h.entries) == 1 && n == 1
	}) {
		h.mu.RLock()
		t.Errorf("subscriptions left: %d entries", len(h.entries))
		h.mu.RUnlock()
	}
	v, err := testutil.RedisDo(servers[0].Addr, "", "PUBSUB", "NUMPAT")
	if err != nil || v != int64(0) {
		t.Errorf("NUMPAT on the server: %v %v", v, err)
	}
	v, err = testutil.RedisDo(servers[0].Addr, "", "PUBSUB", "CHANNELS")
	if err != nil || fmt.Sprint(v) != "[other]" {
		t.Errorf("channels on the server: %v %v", v, err)
	}
}

// TestPubSubHungServer: a server that takes the subscriber connection but
// never answers (hung, or the network lost) is found out by the PING sent
// every half of the pool's timeout, after a timeout but at least a second
// without a byte: the waiting SUBSCRIBE is answered, and the proxy
// connects again.
func TestPubSubHungServer(t *testing.T) {
	hung := startFakeServer(t, fakeRedisParse, func(string) fakeReply { return fakeReply{mute: true} })
	_, addr := startProxy(t, "alpha:\n  listen: 127.0.0.1:{{port}}\n  redis: true\n  timeout: 200\n  servers:\n   - "+hung.addr+":1\n")
	c := dialRaw(t, addr)
	start := time.Now()
	if got := c.roundTrip(cmd("SUBSCRIBE", "ch")); got != "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n" {
		t.Fatal(got)
	}
	if d := time.Since(start); d < subDeadMin || d > 3*time.Second {
		t.Errorf("SUBSCRIBE answered after %v, want after %v and soon", d, subDeadMin)
	}
	if !waitFor(5*time.Second, func() bool { return hung.accepted.Load() >= 2 }) {
		t.Errorf("the proxy connected %d times, want again after the timeout", hung.accepted.Load())
	}
	if got := c.roundTrip(cmd("PING")); got != "*2\r\n$4\r\npong\r\n$0\r\n\r\n" {
		t.Errorf("PING: %q", got)
	}
}

// TestPubSubClientList: CLIENT LIST through the proxy shows a subscribed
// client's own counts and P flag, and TYPE pubsub selects it, as Redis does.
func TestPubSubClientList(t *testing.T) {
	servers := startRedises(t, 2)
	_, addr := redisPool(t, "", servers...)
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	a.send(cmd("SUBSCRIBE", "x", "y"))
	a.readReply()
	a.readReply()
	a.send(cmd("PSUBSCRIBE", "z*"))
	a.readReply()
	a.send(cmd("SSUBSCRIBE", "s"))
	a.readReply()
	lines := func(req ...string) []string {
		v := b.roundTrip(cmd(req...))
		_, body, _ := strings.Cut(v, "\r\n")
		return strings.Fields(strings.ReplaceAll(strings.TrimSuffix(body, "\r\n"), " ", "_"))
	}
	got := lines("CLIENT", "LIST", "TYPE", "pubsub")
	if len(got) != 1 || !strings.Contains(got[0], "_flags=P_") || !strings.Contains(got[0], "_sub=2_psub=1_ssub=1_") {
		t.Errorf("CLIENT LIST TYPE pubsub: %q", got)
	}
	if got := lines("CLIENT", "LIST", "TYPE", "normal"); len(got) != 1 || !strings.Contains(got[0], "_cmd=client|list_") {
		t.Errorf("CLIENT LIST TYPE normal: %q", got)
	}
	a.send(cmd("RESET"))
	a.readReply()
	if got := b.roundTrip(cmd("CLIENT", "LIST", "TYPE", "pubsub")); got != "$0\r\n\r\n" {
		t.Errorf("CLIENT LIST TYPE pubsub after RESET: %q", got)
	}
}

// TestPubSubNoLeak: clients that subscribe and leave (some before their
// confirmation, some while their server restarts) leave no goroutine,
// descriptor or subscription behind.
func TestPubSubNoLeak(t *testing.T) {
	servers := startRedises(t, 2)
	px, addr := redisPool(t, "  timeout: 500\n", servers...)
	h := px.Pools()[0].pubsub
	// The subscriber connections exist from here on.
	warm := dialRaw(t, addr)
	warm.roundTrip(cmd("PSUBSCRIBE", "warm*"))
	warm.roundTrip(cmd("PUNSUBSCRIBE"))
	warm.conn.Close()
	time.Sleep(100 * time.Millisecond)
	goroutines, fds := runtime.NumGoroutine(), openFDs(t)
	for round := range 8 {
		c := dialRaw(t, addr)
		req := cmd("SUBSCRIBE", fmt.Sprint("a", round), fmt.Sprint("b", round)) + cmd("PSUBSCRIBE", "p*")
		switch round % 4 {
		case 0: // confirmed, then the client leaves
			c.send(req)
			for range 3 {
				c.readReply()
			}
		case 1: // the client leaves before its confirmation
			servers[0].Pause()
			c.send(req)
			time.Sleep(20 * time.Millisecond)
			c.conn.Close()
			servers[0].Resume()
		case 2: // the server restarts under the subscriptions
			c.send(req)
			for range 3 {
				c.readReply()
			}
			servers[round%2].Kill()
			servers[round%2].Restart(t)
		case 3: // UNSUBSCRIBE, then QUIT
			c.send(req)
			for range 3 {
				c.readReply()
			}
			c.send(cmd("UNSUBSCRIBE") + cmd("QUIT"))
			for range 3 {
				c.readReply()
			}
		}
		c.conn.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	settled := func() bool {
		h.mu.RLock()
		n := len(h.entries)
		for _, c := range h.conns {
			n += len(c.subs)
		}
		h.mu.RUnlock()
		return n == 0 && runtime.NumGoroutine() <= goroutines+2 && openFDs(t) <= fds+2
	}
	for time.Now().Before(deadline) && !settled() {
		time.Sleep(50 * time.Millisecond)
	}
	if !settled() {
		h.mu.RLock()
		t.Errorf("%d goroutines (was %d), %d descriptors (was %d), %d subscriptions left",
			runtime.NumGoroutine(), goroutines, openFDs(t), fds, len(h.entries))
		h.mu.RUnlock()
	}
}
