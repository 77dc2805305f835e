package proxy

// Smoke tests with the real Redis tools: redis-cli (arguments, stdin,
// --pipe with multibulk and inline data) and redis-benchmark run against an
// in-process proxy over three redis-servers, and what they wrote is then
// checked on the servers themselves.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// smokeFixture is a proxy over three redis-servers and a raw connection to
// each server, for checking what the tools did.
type smokeFixture struct {
	px         *Proxy
	host, port string
	servers    []*testutil.Server
	direct     map[string]*rawClient // by server address
}

func newSmokeFixture(t *testing.T) *smokeFixture {
	t.Helper()
	servers := startRedises(t, 3)
	px, addr := redisPool(t, "", servers...)
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &smokeFixture{px: px, host: host, port: port, servers: servers, direct: map[string]*rawClient{}}
	for _, s := range servers {
		f.direct[s.Addr] = dialRaw(t, s.Addr)
	}
	return f
}

// runTool runs bin with args, stdin as its input, bounded by ctx. A
// non-zero exit fails the test, quoting the output.
func runTool(t *testing.T, ctx context.Context, stdin io.Reader, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	return runToolExit(t, ctx, 0, stdin, bin, args...)
}

// runToolExit is runTool for a tool expected to exit with wantExit.
func runToolExit(t *testing.T, ctx context.Context, wantExit int, stdin io.Reader, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	c := exec.CommandContext(ctx, bin, args...)
	c.Stdin, c.Stdout, c.Stderr = stdin, &out, &errOut
	c.WaitDelay = 5 * time.Second
	err := c.Run()
	var exitErr *exec.ExitError
	switch {
	case ctx.Err() != nil:
		err = fmt.Errorf("%w (timed out)", err)
	case err == nil && wantExit == 0:
		return out.String(), errOut.String()
	case errors.As(err, &exitErr) && exitErr.ExitCode() == wantExit:
		return out.String(), errOut.String()
	case err == nil:
		err = fmt.Errorf("exit status 0, want %d", wantExit)
	}
	t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", bin, strings.Join(args, " "), err, outputTail(out.String()), outputTail(errOut.String()))
	return "", ""
}

// outputTail shortens a tool's output for a failure message.
func outputTail(s string) string {
	const max = 4 << 10
	if len(s) > max {
		return "[...]" + s[len(s)-max:]
	}
	return s
}

// cli runs redis-cli against the proxy with args and returns its output
// without the final newline.
func (f *smokeFixture) cli(t *testing.T, ctx context.Context, stdin io.Reader, args ...string) string {
	t.Helper()
	bin := testutil.Binary(t, "redis-cli")
	out, _ := runTool(t, ctx, stdin, bin, append([]string{"-h", f.host, "-p", f.port}, args...)...)
	return strings.TrimSuffix(out, "\n")
}

// backendValue returns the string value of key on the server the ring puts
// it on, checking that no other server has the key. exists is false when
// no server has it.
func (f *smokeFixture) backendValue(t *testing.T, key string) (value string, exists bool) {
	t.Helper()
	want := backendOf(f.px, key)
	for addr, c := range f.direct {
		got := c.roundTrip(cmd("GET", key))
		if addr != want {
			if got != "$-1\r\n" {
				t.Errorf("key %q is on %s, but the ring puts it on %s (GET: %q)", key, addr, want, got)
			}
			continue
		}
		if got == "$-1\r\n" {
			continue
		}
		v, ok := parseBulkReply(got)
		if !ok {
			t.Fatalf("GET %q on %s: %q", key, addr, got)
		}
		value, exists = v, true
	}
	return value, exists
}

// parseBulkReply returns the string of a bulk reply.
func parseBulkReply(reply string) (string, bool) {
	head, rest, ok := strings.Cut(reply, "\r\n")
	if !ok || !strings.HasPrefix(head, "$") {
		return "", false
	}
	n, err := strconv.Atoi(head[1:])
	if err != nil || n < 0 || len(rest) != n+2 {
		return "", false
	}
	return rest[:n], true
}

// checkValues checks that every key has its value on its ring server only
// (an empty want means the key must not exist anywhere).
func (f *smokeFixture) checkValues(t *testing.T, want map[string]string) {
	t.Helper()
	for k, w := range want {
		got, ok := f.backendValue(t, k)
		switch {
		case w == "" && ok:
			t.Errorf("key %q: %q on the server, want no key", k, got)
		case w != "" && !ok:
			t.Errorf("key %q missing on its server %s", k, backendOf(f.px, k))
		case got != w:
			t.Errorf("key %q = %q on the server, want %q", k, got, w)
		}
	}
}

// checkPlacement lists every key of every server and checks that each is
// on the server the ring says; it returns the keys.
func (f *smokeFixture) checkPlacement(t *testing.T) []string {
	t.Helper()
	var all []string
	for addr, c := range f.direct {
		keys := arrayReplyStrings(c.roundTrip(cmd("KEYS", "*")))
		misplaced := 0
		for _, k := range keys {
			if want := backendOf(f.px, k); want != addr {
				if misplaced++; misplaced <= 5 {
					t.Errorf("key %q is on %s, but the ring puts it on %s", k, addr, want)
				}
			}
		}
		if misplaced > 5 {
			t.Errorf("%d keys misplaced on %s", misplaced, addr)
		}
		all = append(all, keys...)
	}
	return all
}

// arrayReplyStrings returns the bulk strings of an array reply.
func arrayReplyStrings(reply string) []string {
	var out []string
	head, rest, _ := strings.Cut(reply, "\r\n")
	n, _ := strconv.Atoi(strings.TrimPrefix(head, "*"))
	for range n {
		var h string
		h, rest, _ = strings.Cut(rest, "\r\n")
		size, _ := strconv.Atoi(strings.TrimPrefix(h, "$"))
		out = append(out, rest[:size])
		rest = rest[size+2:]
	}
	return out
}

// spread returns n keys "prefix:i" that cover every server.
func (f *smokeFixture) spread(t *testing.T, prefix string, n int) []string {
	t.Helper()
	pf := &pathFixture{px: f.px, servers: f.servers}
	return pf.spreadKeys(t, prefix, n)
}

func TestSmokeRedisCLI(t *testing.T) {
	f := newSmokeFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	run := func(want string, args ...string) {
		t.Helper()
		if got := f.cli(t, ctx, nil, args...); got != want {
			t.Errorf("redis-cli %s: got %q, want %q", strings.Join(args, " "), got, want)
		}
	}

	run("PONG", "PING")
	run("hello", "PING", "hello")
	run("OK", "SET", "foo", "bar")
	run("bar", "GET", "foo")
	run("", "GET", "missing")

	keys := f.spread(t, "cli", 6)
	mset := []string{"MSET"}
	for _, k := range keys {
		mset = append(mset, k, "v-"+k)
	}
	run("OK", mset...)
	// MGET in key order across the servers; a missing key prints an empty line.
	mget := append([]string{"MGET"}, keys[:3]...)
	mget = append(mget, "nope")
	mget = append(mget, keys[3:]...)
	run("v-"+strings.Join(keys[:3], "\nv-")+"\n\nv-"+strings.Join(keys[3:], "\nv-"), mget...)
	run("3", "DEL", keys[0], keys[1], keys[2], "nope")
	run("2", "EXISTS", keys[3], keys[4], keys[0])

	// -r repeats the command: five INCRs.
	run("1\n2\n3\n4\n5", "-r", "5", "INCR", "cli:counter")
	run("15", "INCRBY", "cli:counter", "10")

	// -x takes the last argument from stdin: binary-safe, large values.
	blob := make([]byte, 200<<10)
	for i := range blob {
		blob[i] = byte(rand.IntN(256))
	}
	copy(blob[1000:], "\r\n$5\r\nhello\r\n*1\r\n")
	if got := f.cli(t, ctx, bytes.NewReader(blob), "-x", "SET", "cli:blob"); got != "OK" {
		t.Errorf("redis-cli -x SET: %q", got)
	}
	if got := f.cli(t, ctx, nil, "GET", "cli:blob"); got != string(blob) {
		t.Errorf("GET cli:blob: %d bytes, not the %d sent", len(got), len(blob))
	}

	// A refused command is an error reply; the proxy stays usable.
	if got := f.cli(t, ctx, nil, "KEYS", "*"); !strings.HasPrefix(got, "ERR unknown or unsupported command 'keys'") {
		t.Errorf("KEYS: %q", got)
	}
	run("PONG", "PING")

	want := map[string]string{
		"foo":         "bar",
		"cli:counter": "15",
		"cli:blob":    string(blob),
		keys[0]:       "", keys[1]: "", keys[2]: "",
	}
	for _, k := range keys[3:] {
		want[k] = "v-" + k
	}
	f.checkValues(t, want)
	if got := len(f.checkPlacement(t)); got != len(want)-3 {
		t.Errorf("%d keys on the servers, want %d", got, len(want)-3)
	}
}

// TestSmokeRedisCLIStdin: redis-cli with no command reads commands from
// stdin, one a line, with the inline quoting rules.
func TestSmokeRedisCLIStdin(t *testing.T) {
	f := newSmokeFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	keys := f.spread(t, "in", 3)
	script := fmt.Sprintf(`PING
SET %[1]s a
GET %[1]s
SET "with space" 'c d'
GET "with space"
SET "quoted\r\nvalue" "x\x41y"
GET "quoted\r\nvalue"
KEYS *
INCR %[2]s
INCRBY %[2]s 41
MSET %[1]s one %[2]s two %[3]s three
MGET %[3]s %[2]s %[1]s
DEL %[2]s
EXISTS %[1]s %[2]s %[3]s
LPUSH list:in a b c
LRANGE list:in 0 -1
HSET hash:in f1 v1 f2 v2
HGET hash:in f2
PING
`, keys[0], keys[1], keys[2])
	out := f.cli(t, ctx, strings.NewReader(script))
	// Empty lines are left out: redis-cli follows an error with one.
	var got []string
	for _, line := range strings.Split(out, "\n") {
		if line != "" {
			got = append(got, line)
		}
	}
	want := []string{
		"PONG",
		"OK", "a",
		"OK", "c d",
		"OK", "xAy",
		"ERR unknown or unsupported command 'keys'",
		"1", "42",
		"OK", "three", "two", "one",
		"1",
		"2",
		"3", "c", "b", "a",
		"2", "v2",
		"PONG",
	}
	ok := len(got) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = got[i] == want[i] || strings.HasPrefix(want[i], "ERR ") && strings.HasPrefix(got[i], want[i])
	}
	if !ok {
		t.Errorf("redis-cli with commands on stdin:\n got %q\nwant %q", got, want)
	}
	f.checkValues(t, map[string]string{
		keys[0]:            "one",
		keys[1]:            "",
		keys[2]:            "three",
		"with space":       "c d",
		"quoted\r\nvalue":  "xAy",
		"no such key here": "",
	})
}

// pipeSummary is the last line redis-cli --pipe prints.
var pipeSummary = regexp.MustCompile(`errors: (\d+), replies: (\d+)`)

func checkPipe(t *testing.T, out string, wantErrors, wantReplies int) {
	t.Helper()
	m := pipeSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("redis-cli --pipe: no summary in its output:\n%s", out)
	}
	if m[1] != strconv.Itoa(wantErrors) || m[2] != strconv.Itoa(wantReplies) {
		t.Errorf("redis-cli --pipe: %q, want errors: %d, replies: %d", m[0], wantErrors, wantReplies)
	}
}

// TestSmokeRedisCLIPipe: redis-cli --pipe (mass insertion) with thousands
// of multibulk commands, then with inline ones (the proxy parses those and
// forwards multibulk).
func TestSmokeRedisCLIPipe(t *testing.T) {
	f := newSmokeFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := testutil.Binary(t, "redis-cli")
	addr := []string{"-h", f.host, "-p", f.port, "--pipe"}

	const sets, incrs, pushes = 3000, 1000, 1000
	var data bytes.Buffer
	for i := range sets {
		data.WriteString(cmd("SET", fmt.Sprintf("pipe:%d", i), fmt.Sprintf("value-%d", i)))
	}
	for range incrs {
		data.WriteString(cmd("INCR", "pipe:counter"))
	}
	for i := range pushes {
		data.WriteString(cmd("RPUSH", "pipe:list", strconv.Itoa(i)))
	}
	out, errOut := runTool(t, ctx, &data, bin, addr...)
	checkPipe(t, out+errOut, 0, sets+incrs+pushes)

	// Inline commands, with quoting, and three the proxy refuses: the
	// stream stays in step after each error. redis-cli --pipe exits with
	// status 1 when any reply was an error.
	const inline = 2000
	data.Reset()
	for i := range inline {
		fmt.Fprintf(&data, "SET \"inline %d\" 'v %d'\r\n", i, i)
		if i%700 == 0 {
			data.WriteString("KEYS *\r\n")
		}
	}
	out, errOut = runToolExit(t, ctx, 1, &data, bin, addr...)
	checkPipe(t, out+errOut, 3, inline+3)
	if got := strings.Count(errOut, "ERR unknown or unsupported command 'keys'"); got != 3 {
		t.Errorf("redis-cli --pipe printed %d KEYS errors, want 3:\n%s", got, outputTail(errOut))
	}

	want := map[string]string{"pipe:counter": strconv.Itoa(incrs)}
	for i := 0; i < sets; i += 97 {
		want[fmt.Sprintf("pipe:%d", i)] = fmt.Sprintf("value-%d", i)
	}
	for i := 0; i < inline; i += 97 {
		want[fmt.Sprintf("inline %d", i)] = fmt.Sprintf("v %d", i)
	}
	f.checkValues(t, want)
	// The list is whole and in order on its server.
	listOn := f.direct[backendOf(f.px, "pipe:list")]
	items := arrayReplyStrings(listOn.roundTrip(cmd("LRANGE", "pipe:list", "0", "-1")))
	if len(items) != pushes || items[0] != "0" || items[pushes-1] != strconv.Itoa(pushes-1) {
		t.Errorf("pipe:list on its server: %d items, want %d in order", len(items), pushes)
	}
	if got, want := len(f.checkPlacement(t)), sets+2+inline; got != want {
		t.Errorf("%d keys on the servers, want %d", got, want)
	}
}

// benchTests are the redis-benchmark tests run through the proxy; all but
// MSET send exactly -n commands to the servers, which commandstats counts.
var benchTests = []string{"set", "get", "incr", "lpush", "rpop", "sadd", "hset", "mset"}

// TestSmokeRedisBenchmark runs redis-benchmark through the proxy: plain, pipelined
// (-P 16), and pipelined with random keys (-r), which spreads keys over
// every server and splits each MSET into fragments. No request may fail, and
// the servers must have seen exactly what was sent.
func TestSmokeRedisBenchmark(t *testing.T) {
	f := newSmokeFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := testutil.Binary(t, "redis-benchmark")
	const n = 20000
	runs := [][]string{
		nil,
		{"-P", "16"},
		{"-P", "16", "-r", "100000"},
	}
	names := regexp.MustCompile(`(?m)(?:^|\r)\s*([A-Z]+(?: \(10 keys\))?): ([0-9.]+) requests per second`)
	for _, extra := range runs {
		args := []string{"-h", f.host, "-p", f.port, "-t", strings.Join(benchTests, ","),
			"-n", strconv.Itoa(n), "-c", "20", "-q"}
		args = append(args, extra...)
		start := time.Now()
		out, errOut := runTool(t, ctx, nil, bin, args...)
		all := out + errOut
		if strings.Contains(all, "ERR") || strings.Contains(all, "Error") {
			t.Errorf("redis-benchmark %s reported errors:\n%s", strings.Join(extra, " "), outputTail(all))
		}
		var summary []string
		seen := map[string]bool{}
		for _, m := range names.FindAllStringSubmatch(out, -1) {
			name := strings.ToLower(strings.Fields(m[1])[0])
			seen[name] = true
			summary = append(summary, m[1]+" "+m[2])
		}
		for _, name := range benchTests {
			if !seen[name] {
				t.Errorf("redis-benchmark %s: no result for %s:\n%s", strings.Join(extra, " "), name, outputTail(out))
			}
		}
		t.Logf("redis-benchmark %v in %v (requests per second): %s", extra, time.Since(start).Round(time.Millisecond), strings.Join(summary, ", "))
	}

	// Every command reached a server, none failed there.
	calls := map[string]int{}
	for addr, c := range f.direct {
		stats := c.roundTrip(cmd("INFO", "commandstats"))
		for _, line := range strings.Split(stats, "\r\n") {
			name, rest, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
			if !ok || !strings.HasPrefix(line, "cmdstat_") {
				continue
			}
			fields := map[string]int{}
			for _, kv := range strings.Split(rest, ",") {
				k, v, _ := strings.Cut(kv, "=")
				fields[k], _ = strconv.Atoi(v)
			}
			calls[name] += fields["calls"]
			if fields["failed_calls"] != 0 || fields["rejected_calls"] != 0 {
				t.Errorf("%s: %s", addr, line)
			}
		}
		if es := c.roundTrip(cmd("INFO", "errorstats")); strings.Contains(es, "errorstat_") {
			t.Errorf("%s has errors:\n%s", addr, es)
		}
	}
	for _, name := range benchTests {
		want := len(runs) * n
		if got := calls[name]; got != want && (name != "mset" || got < want) {
			t.Errorf("servers ran %d %s, want %d", got, name, want)
		}
	}
	t.Logf("commands run by the servers: %v", calls)

	// Every key is where the ring says; the INCRs add up; LPUSH and RPOP
	// balanced out.
	keys := f.checkPlacement(t)
	total := 0
	var sample []string
	for _, k := range keys {
		if strings.HasPrefix(k, "counter:") {
			v, ok := f.backendValue(t, k)
			c, err := strconv.Atoi(v)
			if !ok || err != nil {
				t.Fatalf("%s = %q", k, v)
			}
			total += c
		}
		if strings.HasPrefix(k, "key:") && len(sample) < 20 {
			sample = append(sample, k)
		}
	}
	if total != len(runs)*n {
		t.Errorf("the counters add up to %d, want %d INCRs", total, len(runs)*n)
	}
	if _, ok := f.backendValue(t, "mylist"); ok {
		t.Error("mylist exists: the RPOPs did not match the LPUSHes")
	}
	for _, k := range []string{"myset", "myhash"} {
		if c := f.direct[backendOf(f.px, k)]; c.roundTrip(cmd("EXISTS", k)) != ":1\r\n" {
			t.Errorf("%s missing on its server", k)
		}
	}
	if len(sample) == 0 {
		t.Fatal("no key:* keys on the servers")
	}
	// The values read through the proxy are the servers'.
	pc := dialRaw(t, net.JoinHostPort(f.host, f.port))
	for _, k := range sample {
		v, ok := f.backendValue(t, k)
		if got := pc.roundTrip(cmd("GET", k)); !ok || got != string(bulkReply(v)) {
			t.Errorf("GET %s through the proxy: %q, server has %q", k, got, v)
		}
	}
}
