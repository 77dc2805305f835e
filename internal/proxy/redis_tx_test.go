package proxy

import (
	"fmt"
	"strings"
	"testing"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// txScripts are transactions and their mistakes, each sent in one write;
// the keys share the hash tag {u}, so through the proxy they are on one
// server.
var txScripts = []struct {
	name string
	cmds [][]string
}{
	{"applied", [][]string{{"MULTI"}, {"SET", "{u}:a", "1"}, {"INCRBY", "{u}:n", "5"}, {"HSET", "{u}:h", "f", "v"},
		{"LPUSH", "{u}:l", "x"}, {"GET", "{u}:a"}, {"MGET", "{u}:a", "{u}:n"}, {"EXEC"}, {"GET", "{u}:n"}}},
	{"exec-time error", [][]string{{"SET", "{u}:s", "x"}, {"MULTI"}, {"INCR", "{u}:n"}, {"LPUSH", "{u}:s", "y"},
		{"INCR", "{u}:n"}, {"EXEC"}, {"GET", "{u}:n"}}},
	{"unknown command", [][]string{{"MULTI"}, {"SET", "{u}:a", "1"}, {"NOSUCHCMD", "x", "y"}, {"EXEC"}, {"EXISTS", "{u}:a"}}},
	{"wrong arity", [][]string{{"MULTI"}, {"SET", "{u}:a", "1"}, {"SET", "{u}:b"}, {"EXEC"}, {"EXISTS", "{u}:a"}}},
	{"empty", [][]string{{"MULTI"}, {"EXEC"}}},
	{"keyless", [][]string{{"MULTI"}, {"PING"}, {"ECHO", "hi"}, {"EXEC"}}},
	{"discard", [][]string{{"MULTI"}, {"SET", "{u}:a", "1"}, {"DISCARD"}, {"EXISTS", "{u}:a"}}},
	{"without multi", [][]string{{"EXEC"}, {"DISCARD"}, {"UNWATCH"}}},
	{"nested", [][]string{{"MULTI"}, {"SET", "{u}:a", "1"}, {"MULTI"}, {"INCR", "{u}:n"}, {"EXEC"}}},
	{"watch inside", [][]string{{"MULTI"}, {"WATCH", "{u}:a"}, {"SET", "{u}:a", "2"}, {"EXEC"}}},
	{"after exec", [][]string{{"MULTI"}, {"SET", "{u}:a", "1"}, {"EXEC"}, {"EXEC"}, {"GET", "{u}:a"}}},
}

// TestTransactionsMatchRedis sends each script to a lone redis-server and
// through the proxy (three servers) and wants byte-identical replies.
func TestTransactionsMatchRedis(t *testing.T) {
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 3)
	_, addr := redisPool(t, "  hash_tag: \"{}\"\n", servers...)
	direct := dialRaw(t, lone.Addr)
	proxied := dialRaw(t, addr)
	for _, sc := range txScripts {
		t.Run(sc.name, func(t *testing.T) {
			direct.roundTrip(cmd("FLUSHALL"))
			for _, s := range servers {
				if _, err := testutil.RedisDo(s.Addr, "", "FLUSHALL"); err != nil {
					t.Fatal(err)
				}
			}
			var req strings.Builder
			for _, c := range sc.cmds {
				req.WriteString(cmd(c...))
			}
			direct.send(req.String())
			proxied.send(req.String())
			for i, c := range sc.cmds {
				want, got := direct.readReply(), proxied.readReply()
				if got != want {
					t.Errorf("%v: proxy %q, redis-server %q", c, got, want)
				}
				_ = i
			}
		})
	}
}

// TestTransactionAcrossServersAppliesNothing is the data-integrity case:
// a transaction whose keys are on several servers, sent in one write as
// client libraries do, gets EXECABORT and writes nothing anywhere.
func TestTransactionAcrossServersAppliesNothing(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "", servers...)
	// Four keys, the second on another server than the first.
	keys := []string{"k0"}
	for i := 1; len(keys) < 4; i++ {
		k := fmt.Sprintf("k%d", i)
		if len(keys) > 1 || backendOf(px, k) != backendOf(px, keys[0]) {
			keys = append(keys, k)
		}
	}
	c := dialRaw(t, addr)
	c.send(cmd("MULTI") + cmd("SET", keys[0], "1") + cmd("INCRBY", keys[1], "5") + cmd("HSET", keys[2], "f", "v") +
		cmd("LPUSH", keys[3], "x") + cmd("EXEC"))
	var replies []string
	for range 6 {
		replies = append(replies, c.readReply())
	}
	if replies[0] != "+OK\r\n" || replies[1] != "+QUEUED\r\n" {
		t.Errorf("MULTI, first command: %q", replies[:2])
	}
	refused := 0
	for _, r := range replies[2:5] {
		switch {
		case r == "+QUEUED\r\n":
		case strings.HasPrefix(r, "-ERR key '") && strings.Contains(r, "hash tag"):
			refused++
		default:
			t.Errorf("queued command answered %q", r)
		}
	}
	if refused == 0 {
		t.Errorf("no command refused: %q", replies)
	}
	if want := "-EXECABORT Transaction discarded because of previous errors.\r\n"; replies[5] != want {
		t.Errorf("EXEC = %q, want %q", replies[5], want)
	}
	for _, s := range servers {
		if n, err := testutil.RedisDo(s.Addr, "", "DBSIZE"); err != nil || n != int64(0) {
			t.Errorf("server %s holds keys after a refused transaction: DBSIZE %v, %v", s.Addr, n, err)
		}
	}
	// The connection is still usable, and outside a transaction.
	if got := c.roundTrip(cmd("SET", keys[0], "2")); got != "+OK\r\n" {
		t.Errorf("SET after EXECABORT = %q", got)
	}
}

// TestTransactionsInterleaved runs transactions from many clients at once
// on one shared server connection: each block stays whole (no other
// client's command enters it), so every EXEC sees exactly its own results.
func TestTransactionsInterleaved(t *testing.T) {
	servers := startRedises(t, 2)
	_, addr := redisPool(t, "  hash_tag: \"{}\"\n", servers...)
	const clients, rounds = 8, 50
	errs := make(chan error, clients)
	for i := range clients {
		go func() {
			c := dialRaw(t, addr)
			key := fmt.Sprintf("{t}:c%d", i)
			for j := range rounds {
				c.send(cmd("MULTI") + cmd("INCR", key) + cmd("INCR", "{t}:total") + cmd("GET", key) + cmd("EXEC"))
				for range 4 {
					c.readReply()
				}
				got := c.readReply()
				if !strings.HasPrefix(got, fmt.Sprintf("*3\r\n:%d\r\n:", j+1)) || !strings.HasSuffix(got, fmt.Sprintf("$%d\r\n%d\r\n", len(fmt.Sprint(j+1)), j+1)) {
					errs <- fmt.Errorf("client %d round %d: EXEC = %q", i, j, got)
					return
				}
			}
			errs <- nil
		}()
	}
	for range clients {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	c := dialRaw(t, addr)
	if got, want := c.roundTrip(cmd("GET", "{t}:total")), fmt.Sprintf("$3\r\n%d\r\n", clients*rounds); got != want {
		t.Errorf("total = %q, want %q", got, want)
	}
}

// TestSplitTransactions: with split_transactions, a transaction over keys
// on several servers runs as one MULTI/EXEC per server and its results
// come back in the client's order; every key is written on its own server.
func TestSplitTransactions(t *testing.T) {
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "  split_transactions: true\n", servers...)
	// Twelve keys, at least one on another server than the first.
	var keys []string
	for i := 0; len(keys) < 12; i++ {
		k := fmt.Sprintf("sk%d", i)
		if len(keys) == 11 && backendOf(px, k) == backendOf(px, keys[0]) && i < 1000 {
			spread := false
			for _, o := range keys {
				spread = spread || backendOf(px, o) != backendOf(px, keys[0])
			}
			if !spread {
				continue
			}
		}
		keys = append(keys, k)
	}
	c := dialRaw(t, addr)
	var req strings.Builder
	req.WriteString(cmd("MULTI"))
	for _, k := range keys {
		req.WriteString(cmd("SET", k, "v"+k))
		req.WriteString(cmd("GET", k))
	}
	req.WriteString(cmd("PING"))
	req.WriteString(cmd("INCR", keys[0])) // an exec-time error, inside the array
	req.WriteString(cmd("EXEC"))
	c.send(req.String())
	for i := 0; i < 1+2*len(keys)+2; i++ {
		want := "+QUEUED\r\n"
		if i == 0 {
			want = "+OK\r\n"
		}
		if got := c.readReply(); got != want {
			t.Fatalf("reply %d = %q, want %q", i, got, want)
		}
	}
	var want strings.Builder
	fmt.Fprintf(&want, "*%d\r\n", 2*len(keys)+2)
	for _, k := range keys {
		fmt.Fprintf(&want, "+OK\r\n$%d\r\nv%s\r\n", len(k)+1, k)
	}
	want.WriteString("+PONG\r\n-ERR value is not an integer or out of range\r\n")
	if got := c.readReply(); got != want.String() {
		t.Errorf("EXEC = %q\nwant  %q", got, want.String())
	}
	used := map[string]bool{}
	for _, k := range keys {
		owner := backendOf(px, k)
		used[owner] = true
		got, err := testutil.RedisDo(owner, "", "GET", k)
		if err != nil || got != "v"+k {
			t.Errorf("%s on its server %s: %v, %v", k, owner, got, err)
		}
	}
	if len(used) < 2 {
		t.Errorf("the keys used only %d server(s): the test proves nothing", len(used))
	}
}
