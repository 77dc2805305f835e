package proxy

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// clientScripts are requests whose replies through the proxy must be
// byte-identical to a lone redis-server 7.0's: CLIENT's errors and the
// connection state the proxy keeps (name, reply mode, RESET). Each script
// is sent in one write, then ECHO end, and every reply up to end's is
// compared.
var clientScripts = []struct {
	name string
	cmds [][]string
}{
	{"setname", [][]string{{"CLIENT", "GETNAME"}, {"CLIENT", "SETNAME", "a b"}, {"CLIENT", "SETNAME", "a\nb"},
		{"CLIENT", "SETNAME", "caf\xc3\xa9"}, {"client", "setname", "worker-1"}, {"CLIENT", "GETNAME"},
		{"CLIENT", "SETNAME", ""}, {"CLIENT", "GETNAME"}, {"CLIENT", "SETNAME"}, {"CLIENT", "SETNAME", "a", "b"}}},
	{"arity and unknown", [][]string{{"CLIENT"}, {"CLIENT", "nosuch"}, {"CLIENT", "ID", "x"}, {"CLIENT", "KILL"},
		{"CLIENT", "INFO", "x"}, {"CLIENT", "REPLY"}, {"TIME", "x"}, {"ROLE", "x"}, {"RESET", "x"}, {"LASTSAVE", "x"}}},
	{"kill errors", [][]string{{"CLIENT", "KILL", "1.2.3.4:5"}, {"CLIENT", "KILL", "ID", "999999"},
		{"CLIENT", "KILL", "ID", "abc"}, {"CLIENT", "KILL", "ID", "0"}, {"CLIENT", "KILL", "ID", "-1"},
		{"CLIENT", "KILL", "TYPE", "foo"}, {"CLIENT", "KILL", "TYPE", "master", "ID", "1"},
		{"CLIENT", "KILL", "USER", "nobody"}, {"CLIENT", "KILL", "ADDR", "1.2.3.4:5", "SKIPME", "maybe"},
		{"CLIENT", "KILL", "foo", "bar"}, {"CLIENT", "KILL", "ADDR", "1.2.3.4:5", "ID"},
		{"CLIENT", "KILL", "addr", "1.2.3.4:5", "laddr", "5.6.7.8:9"}, {"CLIENT", "KILL", "foo"}}},
	{"list errors", [][]string{{"CLIENT", "LIST", "TYPE", "foo"}, {"CLIENT", "LIST", "ID", "abc"},
		{"CLIENT", "LIST", "ID", "1", "x"}, {"CLIENT", "LIST", "foo"}, {"CLIENT", "LIST", "ID", "999999"},
		{"CLIENT", "LIST", "TYPE", "pubsub"}, {"CLIENT", "LIST", "TYPE", "replica"}, {"CLIENT", "LIST", "TYPE"}}},
	{"flags", [][]string{{"CLIENT", "NO-EVICT", "on"}, {"CLIENT", "NO-EVICT", "OFF"}, {"CLIENT", "NO-EVICT", "maybe"},
		{"CLIENT", "REPLY", "maybe"}}},
	{"reply off and on", [][]string{{"CLIENT", "REPLY", "OFF"}, {"SET", "{r}k", "1"}, {"GET", "{r}k"}, {"NOSUCH"},
		{"GET"}, {"CLIENT", "REPLY", "SKIP"}, {"CLIENT", "REPLY", "ON"}, {"GET", "{r}k"}}},
	{"reply skip", [][]string{{"CLIENT", "REPLY", "SKIP"}, {"GET", "{r}k"}, {"PING"}, {"CLIENT", "REPLY", "SKIP"},
		{"CLIENT", "REPLY", "SKIP"}, {"PING", "a"}, {"PING", "b"}, {"CLIENT", "REPLY", "SKIP"}, {"CLIENT", "REPLY", "ON"},
		{"PING", "c"}}},
	{"reply off in a transaction", [][]string{{"CLIENT", "REPLY", "OFF"}, {"MULTI"}, {"SET", "{r}k", "2"}, {"EXEC"},
		{"CLIENT", "REPLY", "ON"}, {"GET", "{r}k"}}},
	{"reset", [][]string{{"CLIENT", "SETNAME", "n"}, {"CLIENT", "NO-EVICT", "on"}, {"RESET"}, {"CLIENT", "GETNAME"},
		{"CLIENT", "REPLY", "OFF"}, {"PING"}, {"RESET"}, {"PING"}, {"MULTI"}, {"SET", "{r}k", "3"}, {"RESET"},
		{"EXEC"}, {"GET", "{r}k"}}},
}

func TestClientCommandsMatchRedis(t *testing.T) {
	lone := testutil.StartRedis(t)
	servers := startRedises(t, 2)
	_, addr := redisPool(t, "  hash_tag: \"{}\"\n", servers...)
	for _, sc := range clientScripts {
		t.Run(sc.name, func(t *testing.T) {
			// A connection each: the scripts change its state.
			direct, proxied := dialRaw(t, lone.Addr), dialRaw(t, addr)
			var req strings.Builder
			for _, c := range sc.cmds {
				req.WriteString(cmd(c...))
			}
			req.WriteString(cmd("ECHO", "end"))
			direct.send(req.String())
			proxied.send(req.String())
			want, got := readUntilEnd(direct), readUntilEnd(proxied)
			if strings.Join(got, "") != strings.Join(want, "") {
				t.Errorf("replies differ:\n proxy %q\n redis %q", got, want)
			}
		})
	}
}

// readUntilEnd reads replies up to and including ECHO end's.
func readUntilEnd(c *rawClient) []string {
	var out []string
	for {
		r := c.readReply()
		out = append(out, r)
		if r == "$3\r\nend\r\n" {
			return out
		}
	}
}

// TestClientCommands checks what redis-server 7.0 cannot be compared on:
// the replies about the proxy's own clients, Redis 7.2's subcommands, and
// the commands the proxy answers or refuses itself.
func TestClientCommands(t *testing.T) {
	servers := startRedises(t, 2)
	_, addr := redisPool(t, "", servers...)
	c := dialRaw(t, addr)

	id := c.roundTrip(cmd("CLIENT", "ID"))
	if !regexp.MustCompile(`^:[1-9]\d*\r\n$`).MatchString(id) {
		t.Fatalf("CLIENT ID = %q", id)
	}
	unsupported := "-ERR unknown or unsupported command "
	tests := []struct{ req, want string }{
		{cmd("CLIENT", "SETINFO", "lib-name", "mylib"), "+OK\r\n"},
		{cmd("CLIENT", "SETINFO", "LIB-VER", "1.2.3"), "+OK\r\n"},
		{cmd("CLIENT", "SETINFO", "LIB-NAME", "a b"), "-ERR LIB-NAME cannot contain spaces, newlines or special characters.\r\n"},
		{cmd("CLIENT", "SETINFO", "lib-foo", "x"), "-ERR Unrecognized option 'lib-foo'\r\n"},
		{cmd("CLIENT", "SETINFO", "lib-name"), "-ERR wrong number of arguments for 'client|setinfo' command\r\n"},
		{cmd("CLIENT", "NO-TOUCH", "on"), "+OK\r\n"},
		{cmd("CLIENT", "NO-TOUCH", "maybe"), "-ERR syntax error\r\n"},
		{cmd("CLIENT", "NO-EVICT", "on"), "+OK\r\n"},
		{cmd("CLIENT", "SETNAME", "me"), "+OK\r\n"},
		{cmd("CLIENT", "PAUSE", "10"), unsupported + "'client|pause': server administration is not supported through the proxy; connect to the server directly\r\n"},
		{cmd("CLIENT", "UNPAUSE"), unsupported + "'client|unpause': server administration is not supported through the proxy; connect to the server directly\r\n"},
		{cmd("CLIENT", "TRACKING", "on"), unsupported + "'client|tracking': client-side caching (tracking) needs a server connection of the client's own, which the proxy does not give\r\n"},
		{cmd("CLIENT", "CACHING", "yes"), unsupported + "'client|caching': client-side caching (tracking) needs a server connection of the client's own, which the proxy does not give\r\n"},
		{cmd("CLIENT", "GETREDIR"), unsupported + "'client|getredir': client-side caching (tracking) needs a server connection of the client's own, which the proxy does not give\r\n"},
		{cmd("CLIENT", "TRACKINGINFO"), unsupported + "'client|trackinginfo': client-side caching (tracking) needs a server connection of the client's own, which the proxy does not give\r\n"},
		{cmd("CLIENT", "UNBLOCK", "1"), ":0\r\n"}, // nobody blocked
		{cmd("DEBUG", "SLEEP", "0"), unsupported + "'debug': server administration is not supported through the proxy; connect to the server directly\r\n"},
		{cmd("ROLE"), "*3\r\n$6\r\nmaster\r\n:0\r\n*0\r\n"},
		{cmd("CLIENT", "KILL", "ID", id[1:len(id)-2]), ":0\r\n"}, // SKIPME yes
	}
	for _, tt := range tests {
		if got := c.roundTrip(tt.req); got != tt.want {
			t.Errorf("%q:\n got %q\nwant %q", tt.req, got, tt.want)
		}
	}

	info := c.roundTrip(cmd("CLIENT", "INFO"))
	line := bulkBody(t, info)
	want := fmt.Sprintf(`^id=%s addr=127\.0\.0\.1:\d+ laddr=%s fd=\d+ name=me age=\d+ idle=0 flags=eT db=0 sub=0 psub=0 ssub=0 `+
		`multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r `+
		`cmd=client\|info user=default redir=-1 resp=2 lib-name=mylib lib-ver=1\.2\.3\n$`, id[1:len(id)-2], regexp.QuoteMeta(addr))
	if !regexp.MustCompile(want).MatchString(line) {
		t.Errorf("CLIENT INFO = %q, want %s", line, want)
	}
	if got := c.roundTrip(cmd("CLIENT", "LIST")); got != strings.Replace(info, "cmd=client|info", "cmd=client|list", 1) {
		t.Errorf("CLIENT LIST alone = %q, want CLIENT INFO's %q", got, info)
	}
	help := c.roundTrip(cmd("CLIENT", "HELP"))
	if !strings.HasPrefix(help, "*") || !strings.Contains(help, "+SETNAME <name>\r\n") {
		t.Errorf("CLIENT HELP = %q", help)
	}

	// TIME is the proxy's clock.
	tm := c.roundTrip(cmd("TIME"))
	m := regexp.MustCompile(`^\*2\r\n\$\d+\r\n(\d+)\r\n\$\d+\r\n(\d+)\r\n$`).FindStringSubmatch(tm)
	if m == nil {
		t.Fatalf("TIME = %q", tm)
	}
	sec, _ := strconv.ParseInt(m[1], 10, 64)
	usec, _ := strconv.ParseInt(m[2], 10, 64)
	if d := time.Since(time.Unix(sec, usec*1000)); d < 0 || d > 5*time.Second || usec >= 1e6 {
		t.Errorf("TIME = %q: %v from now", tm, d)
	}

	// LASTSAVE and COMMAND go to the server of "placeholder".
	place := backendOfAddr(t, addr, servers)
	for _, req := range [][]string{{"LASTSAVE"}, {"COMMAND", "COUNT"}, {"COMMAND", "INFO", "get", "set"}, {"COMMAND", "DOCS", "get"}} {
		direct := dialRaw(t, place).roundTrip(cmd(req...))
		if got := c.roundTrip(cmd(req...)); got != direct {
			t.Errorf("%q: proxy %q, server %q", req, got, direct)
		}
	}
	if got := c.roundTrip(cmd("COMMAND")); !strings.HasPrefix(got, "*2") || len(got) < 10000 {
		t.Errorf("COMMAND: %d bytes, %.40q…", len(got), got)
	}

	// Inside MULTI, CLIENT is refused and discards the transaction.
	for _, tt := range []struct{ req, want string }{
		{cmd("MULTI"), "+OK\r\n"},
		{cmd("CLIENT", "SETNAME", "tx"), "-ERR CLIENT inside MULTI is not supported through the proxy: the proxy answers CLIENT itself, and a transaction runs on a server\r\n"},
		{cmd("CLIENT", "ID"), "-ERR CLIENT inside MULTI is not supported through the proxy: the proxy answers CLIENT itself, and a transaction runs on a server\r\n"},
		{cmd("EXEC"), "-EXECABORT Transaction discarded because of previous errors.\r\n"},
		{cmd("CLIENT", "GETNAME"), "$2\r\nme\r\n"},
	} {
		if got := c.roundTrip(tt.req); got != tt.want {
			t.Errorf("%q:\n got %q\nwant %q", tt.req, got, tt.want)
		}
	}
}

// backendOfAddr returns the address of the server the proxy at addr
// places the key "placeholder" on.
func backendOfAddr(t *testing.T, addr string, servers []*testutil.Server) string {
	t.Helper()
	c := dialRaw(t, addr)
	c.roundTrip(cmd("SET", "placeholder", "here"))
	for _, s := range servers {
		if dialRaw(t, s.Addr).roundTrip(cmd("EXISTS", "placeholder")) == ":1\r\n" {
			return s.Addr
		}
	}
	t.Fatal("no server holds the key placeholder")
	return ""
}

// clientLines parses CLIENT LIST's text into one map per line, and checks
// that every line has Redis 7.2's fields in Redis's order.
func clientLines(t *testing.T, text string) []map[string]string {
	t.Helper()
	order := "id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free argv-mem multi-mem rbs rbp " +
		"obl oll omem tot-mem events cmd user redir resp lib-name lib-ver"
	var out []map[string]string
	for _, ln := range strings.SplitAfter(text, "\n") {
		if ln == "" {
			continue
		}
		if !strings.HasSuffix(ln, "\n") {
			t.Fatalf("line without LF: %q", ln)
		}
		m := map[string]string{}
		var keys []string
		for _, kv := range strings.Split(strings.TrimSuffix(ln, "\n"), " ") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("field %q of %q", kv, ln)
			}
			m[k] = v
			keys = append(keys, k)
		}
		if got := strings.Join(keys, " "); got != order {
			t.Errorf("fields %q, want %q", got, order)
		}
		out = append(out, m)
	}
	return out
}

// TestClientListMatchesRedisFields: the proxy's CLIENT LIST has the fields
// of redis-server 7.0's, in the same order, plus Redis 7.2's lib-name and
// lib-ver at the end.
func TestClientListMatchesRedisFields(t *testing.T) {
	lone := testutil.StartRedis(t)
	line := bulkBody(t, dialRaw(t, lone.Addr).roundTrip(cmd("CLIENT", "INFO")))
	var keys []string
	for _, kv := range strings.Split(strings.TrimSuffix(line, "\n"), " ") {
		k, _, _ := strings.Cut(kv, "=")
		keys = append(keys, k)
	}
	want := strings.Join(keys, " ") + " lib-name lib-ver"
	servers := startRedises(t, 1)
	_, addr := redisPool(t, "", servers...)
	var got []string
	for _, kv := range strings.Split(strings.TrimSuffix(bulkBody(t, dialRaw(t, addr).roundTrip(cmd("CLIENT", "INFO"))), "\n"), " ") {
		k, _, _ := strings.Cut(kv, "=")
		got = append(got, k)
	}
	if strings.Join(got, " ") != want {
		t.Errorf("fields:\n proxy %s\n redis %s", strings.Join(got, " "), want)
	}
}

// TestClientListAndKill: two clients see each other in CLIENT LIST, with
// their own names and last commands, and kill each other by every filter.
func TestClientListAndKill(t *testing.T) {
	servers := startRedises(t, 2)
	_, addr := redisPool(t, "", servers...)
	_, other := redisPool(t, "", servers...) // another pool's clients are not listed
	dialRaw(t, other).roundTrip(cmd("PING"))

	a, b := dialRaw(t, addr), dialRaw(t, addr)
	idOf := func(c *rawClient) string { r := c.roundTrip(cmd("CLIENT", "ID")); return r[1 : len(r)-2] }
	ida, idb := idOf(a), idOf(b)
	a.roundTrip(cmd("CLIENT", "SETNAME", "alpha"))
	b.roundTrip(cmd("CLIENT", "SETNAME", "beta"))
	b.roundTrip(cmd("SET", "k", "v"))
	b.send(cmd("MULTI") + cmd("SET", "k", "w") + cmd("GET", "k"))
	for range 3 {
		b.readReply()
	}
	// b's state is published once its read burst is handled: CLIENT LIST
	// may run first.
	var lines []map[string]string
	if !waitFor(2*time.Second, func() bool {
		lines = clientLines(t, bulkBody(t, a.roundTrip(cmd("CLIENT", "LIST"))))
		return len(lines) == 2 && lines[1]["multi"] == "2"
	}) {
		t.Fatalf("CLIENT LIST = %v", lines)
	}
	if lines[0]["id"] != ida || lines[1]["id"] != idb || lines[0]["name"] != "alpha" || lines[1]["name"] != "beta" ||
		lines[0]["cmd"] != "client|list" || lines[1]["cmd"] != "get" || lines[1]["flags"] != "x" ||
		lines[0]["multi"] != "-1" || lines[0]["flags"] != "N" || lines[0]["laddr"] != addr {
		t.Errorf("CLIENT LIST = %v", lines)
	}
	bAddr := b.conn.LocalAddr().String()
	if lines[1]["addr"] != bAddr {
		t.Errorf("b's addr %s, want %s", lines[1]["addr"], bAddr)
	}
	byID := clientLines(t, bulkBody(t, a.roundTrip(cmd("CLIENT", "LIST", "ID", idb, "999", ida, idb))))
	if len(byID) != 3 || byID[0]["id"] != idb || byID[1]["id"] != ida || byID[2]["id"] != idb {
		t.Errorf("CLIENT LIST ID %s 999 %s %s = %v", idb, ida, idb, byID)
	}
	if got := clientLines(t, bulkBody(t, a.roundTrip(cmd("CLIENT", "LIST", "TYPE", "normal")))); len(got) != 2 {
		t.Errorf("CLIENT LIST TYPE normal = %v", got)
	}

	// Filters that match nobody, then ID.
	for _, req := range [][]string{{"CLIENT", "KILL", "ID", idb, "TYPE", "pubsub"}, {"CLIENT", "KILL", "ID", idb, "ADDR", "1.2.3.4:5"},
		{"CLIENT", "KILL", "ID", idb, "LADDR", "1.2.3.4:5"}, {"CLIENT", "KILL", "ADDR", a.conn.LocalAddr().String()}} {
		if got := a.roundTrip(cmd(req...)); got != ":0\r\n" {
			t.Errorf("%q = %q", req, got)
		}
	}
	if got := a.roundTrip(cmd("CLIENT", "KILL", "ID", idb, "USER", "default", "TYPE", "normal", "LADDR", addr)); got != ":1\r\n" {
		t.Errorf("CLIENT KILL ID %s = %q", idb, got)
	}
	b.expectClosed()
	if got := clientLines(t, bulkBody(t, a.roundTrip(cmd("CLIENT", "LIST")))); len(got) != 1 {
		t.Errorf("after KILL, CLIENT LIST = %v", got)
	}

	// The old form, by address.
	c := dialRaw(t, addr)
	c.roundTrip(cmd("PING"))
	cAddr := c.conn.LocalAddr().String()
	if got := a.roundTrip(cmd("CLIENT", "KILL", cAddr)); got != "+OK\r\n" {
		t.Errorf("CLIENT KILL %s = %q", cAddr, got)
	}
	c.expectClosed()
	if got := a.roundTrip(cmd("CLIENT", "KILL", cAddr)); got != "-ERR No such client\r\n" {
		t.Errorf("CLIENT KILL %s again = %q", cAddr, got)
	}

	// LADDR with SKIPME yes: everyone else on this pool.
	d, e := dialRaw(t, addr), dialRaw(t, addr)
	d.roundTrip(cmd("PING"))
	e.roundTrip(cmd("PING"))
	if got := a.roundTrip(cmd("CLIENT", "KILL", "LADDR", addr)); got != ":2\r\n" {
		t.Errorf("CLIENT KILL LADDR = %q", got)
	}
	d.expectClosed()
	e.expectClosed()

	// A client may kill itself: the reply, then the close; what it sent
	// after is not run.
	a.send(cmd("CLIENT", "KILL", "ADDR", a.conn.LocalAddr().String(), "SKIPME", "no") + cmd("SET", "after", "1"))
	if got := a.readReply(); got != ":1\r\n" {
		t.Errorf("CLIENT KILL SKIPME no = %q", got)
	}
	a.expectClosed()
	if n, err := testutil.RedisDo(servers[0].Addr, "", "EXISTS", "after"); err != nil || n != int64(0) {
		t.Errorf("EXISTS after on %s: %v, %v", servers[0].Addr, n, err)
	}
	if n, err := testutil.RedisDo(servers[1].Addr, "", "EXISTS", "after"); err != nil || n != int64(0) {
		t.Errorf("EXISTS after on %s: %v, %v", servers[1].Addr, n, err)
	}
	// The other pool's first client was never a candidate.
	if got := dialRaw(t, other).roundTrip(cmd("CLIENT", "LIST")); strings.Count(got, "id=") != 2 {
		t.Errorf("other pool's CLIENT LIST = %q", got)
	}
}

// TestClientKillBusyClient: a client with requests in flight on a stalled
// server, blocked on the in-flight limit and not reading its replies, is
// killed at once; its connection closes once the server has answered.
func TestClientKillBusyClient(t *testing.T) {
	servers := startRedises(t, 1)
	_, addr := redisPool(t, "", servers...)
	a, busy := dialRaw(t, addr), dialRaw(t, addr)
	id := busy.roundTrip(cmd("CLIENT", "ID"))
	servers[0].Pause()
	var req strings.Builder
	for i := range maxQueued + 100 {
		req.WriteString(cmd("GET", fmt.Sprintf("k%d", i)))
	}
	go func() { _, _ = busy.conn.Write([]byte(req.String())) }()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if got := a.roundTrip(cmd("CLIENT", "KILL", "ID", id[1:len(id)-2])); got != ":1\r\n" {
		t.Errorf("CLIENT KILL = %q", got)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("CLIENT KILL took %v", d)
	}
	servers[0].Resume()
	_ = busy.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1<<16)
	for {
		if _, err := busy.conn.Read(buf); err != nil {
			break // closed (replies before the kill may come first)
		}
	}
	if got := a.roundTrip(cmd("CLIENT", "LIST")); strings.Count(got, "id=") != 1 {
		t.Errorf("CLIENT LIST after the kill = %q", got)
	}
}

func TestResetWithAuth(t *testing.T) {
	servers := startRedises(t, 1, "requirepass s3cret")
	_, addr := redisPool(t, "  redis_auth: s3cret\n", servers...)
	c := dialRaw(t, addr)
	for _, tt := range []struct{ req, want string }{
		{cmd("RESET"), "+RESET\r\n"}, // allowed before AUTH, as in Redis
		{cmd("CLIENT", "ID"), "-NOAUTH Authentication required\r\n"},
		{cmd("AUTH", "s3cret"), "+OK\r\n"},
		{cmd("CLIENT", "SETNAME", "x"), "+OK\r\n"},
		{cmd("SET", "a", "1"), "+OK\r\n"},
		{cmd("RESET"), "+RESET\r\n"},
		{cmd("GET", "a"), "-NOAUTH Authentication required\r\n"},
		{cmd("AUTH", "s3cret"), "+OK\r\n"},
		{cmd("CLIENT", "GETNAME"), "$-1\r\n"},
		{cmd("GET", "a"), "$1\r\n1\r\n"},
	} {
		if got := c.roundTrip(tt.req); got != tt.want {
			t.Errorf("%q:\n got %q\nwant %q", tt.req, got, tt.want)
		}
	}
}

// TestGoRedisClientCommands: go-redis v9 with its default options through
// the proxy: the handshake (HELLO 3 refused, RESP2, CLIENT SETINFO)
// succeeds, and INFO, CLIENT and TIME parse.
func TestGoRedisClientCommands(t *testing.T) {
	servers := startRedises(t, 2)
	_, addr := redisPool(t, "", servers...)
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: addr, ClientName: "gr"})
	defer rc.Close()

	if err := rc.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING: %v", err)
	}
	info, err := rc.InfoMap(ctx, "server").Result()
	if err != nil {
		t.Fatalf("INFO server: %v", err)
	}
	want := redisVersion(t, servers[0].Addr)
	if got := info["Server"]["redis_version"]; got != want {
		t.Errorf("redis_version %q, want %q (INFO: %v)", got, want, info)
	}
	if _, err := rc.Info(ctx).Result(); err != nil {
		t.Errorf("INFO: %v", err)
	}
	id, err := rc.ClientID(ctx).Result()
	if err != nil || id < 1 {
		t.Errorf("CLIENT ID: %v, %v", id, err)
	}
	ci, err := rc.ClientInfo(ctx).Result()
	if err != nil {
		t.Fatalf("CLIENT INFO: %v", err)
	}
	if ci.Name != "gr" || !strings.HasPrefix(ci.LibName, "go-redis(") || ci.LibVer != redis.Version() || ci.LastCmd != "client|info" {
		t.Errorf("CLIENT INFO = %+v: want the name and library the handshake set", ci)
	}
	if list, err := rc.ClientList(ctx).Result(); err != nil || !strings.Contains(list, "name=gr ") {
		t.Errorf("CLIENT LIST: %q, %v", list, err)
	}
	conn := rc.Conn()
	defer conn.Close()
	if err := conn.ClientSetName(ctx, "renamed").Err(); err != nil {
		t.Errorf("CLIENT SETNAME: %v", err)
	}
	if name, err := conn.ClientGetName(ctx).Result(); err != nil || name != "renamed" {
		t.Errorf("CLIENT GETNAME: %q, %v", name, err)
	}
	tm, err := rc.Time(ctx).Result()
	if err != nil || time.Since(tm).Abs() > 5*time.Second {
		t.Errorf("TIME: %v, %v", tm, err)
	}
}

// redisVersion returns the redis_version a server reports.
func redisVersion(t *testing.T, addr string) string {
	t.Helper()
	v, err := testutil.RedisDo(addr, "", "INFO", "server")
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range strings.Split(v.(string), "\r\n") {
		if ver, ok := strings.CutPrefix(ln, "redis_version:"); ok {
			return ver
		}
	}
	t.Fatalf("no redis_version in %q", v)
	return ""
}
