package proxy

import (
	"strings"
	"testing"
	"time"

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
				{b, cmd("PUBLISH", "c", "after reset"), []string{":0\r\n"}},
				{b, cmd("SPUBLISH", "s2", "after reset"), []string{":0\r\n"}},
				{a, cmd("SUBSCRIBE", "q"), []string{"*3\r\n$9\r\nsubscribe\r\n$1\r\nq\r\n:1\r\n"}},
				{a, cmd("QUIT"), []string{"+OK\r\n"}},
			}
			for i, st := range steps {
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
			deadline := time.Now().Add(5 * time.Second)
			for {
				got := b.roundTrip(cmd("PUBLISH", "q", "x"))
				if got == ":0\r\n" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("PUBLISH after the subscriber quit: %q", got)
				}
				time.Sleep(10 * time.Millisecond)
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
