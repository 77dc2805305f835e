package rediscmd

import (
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/resp"
)

// words splits a request written with spaces into its arguments.
func words(s string) [][]byte {
	var args [][]byte
	for _, w := range strings.Fields(s) {
		args = append(args, []byte(w))
	}
	return args
}

// mustResolve looks up a request's command, failing the test if the table
// refuses it.
func mustResolve(t *testing.T, args [][]byte) *Command {
	t.Helper()
	c, err := Resolve(args)
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return c
}

func TestBlockTimeout(t *testing.T) {
	tests := []struct {
		req     string
		timeout time.Duration
		blocks  bool
		err     string
	}{
		{"blpop a b 0", 0, true, ""},
		{"blpop a 1.5", 1500 * time.Millisecond, true, ""},
		{"brpop a 0.0001", time.Millisecond, true, ""}, // rounded up, as Redis does
		{"bzpopmin a 2", 2 * time.Second, true, ""},
		{"brpoplpush a b 3", 3 * time.Second, true, ""},
		{"blmove a b left right 0.25", 250 * time.Millisecond, true, ""},
		{"blmpop 4 1 a left", 4 * time.Second, true, ""},
		{"bzmpop 0 2 a b min count 3", 0, true, ""},
		{"xread block 150 streams a 0", 150 * time.Millisecond, true, ""},
		{"xreadgroup group g c count 1 BLOCK 0 streams a >", 0, true, ""},
		{"xread count 1 streams a 0", 0, false, ""},
		{"xread streams block 0", 0, false, ""}, // "block" is a key here
		{"blpop a -1", 0, true, "ERR timeout is negative"},
		{"blpop a x", 0, true, "ERR timeout is not a float or out of range"},
		{"blpop a nan", 0, true, "ERR timeout is not a float or out of range"},
		{"blpop a 1e300", 0, true, "ERR timeout is out of range"},
		{"blpop a 1e15", maxBlockTimeout, true, ""},
		{"xread block -5 streams a 0", 0, true, "ERR timeout is negative"},
		{"xread block 1.5 streams a 0", 0, true, "ERR timeout is not an integer or out of range"},
		{"get a", 0, false, ""},
		{"wait 1 250", 250 * time.Millisecond, true, ""},
		{"wait 1 -1", 0, true, "ERR timeout is negative"},
	}
	for _, tc := range tests {
		args := words(tc.req)
		c := mustResolve(t, args)
		d, blocks, err := c.BlockTimeout(args)
		got := ""
		if err != nil {
			got = err.Error()
		}
		if d != tc.timeout || blocks != tc.blocks || got != tc.err {
			t.Errorf("%s: %v %v %q, want %v %v %q", tc.req, d, blocks, got, tc.timeout, tc.blocks, tc.err)
		}
	}
}

// TestCrossServerRewrites: the non-blocking pop, the reply it turns into,
// the per-server blocking command and the push-back of each command that
// may block on several servers.
func TestCrossServerRewrites(t *testing.T) {
	bulk := func(s ...string) string { return string(resp.AppendCommand(nil, words(strings.Join(s, " "))...)) }
	tests := []struct {
		req      string
		pop      string // NonBlockingPop for key "b"
		popReply string // what the server answers
		reply    string // BlockingReply
		subset   string // AppendBlockingWith keys "b c"
		winner   string // a blocking reply popped
		push     string // AppendPushBack of it
	}{
		{"blpop a b c 5", bulk("LPOP b"), "$1\r\nx\r\n", "*2\r\n$1\r\nb\r\n$1\r\nx\r\n", bulk("blpop b c 5"),
			"*2\r\n$1\r\nc\r\n$1\r\ny\r\n", bulk("LPUSH c y")},
		{"brpop a b c 0", bulk("RPOP b"), "$1\r\nx\r\n", "*2\r\n$1\r\nb\r\n$1\r\nx\r\n", bulk("brpop b c 0"),
			"*2\r\n$1\r\nc\r\n$1\r\ny\r\n", bulk("RPUSH c y")},
		{"bzpopmin a b c 0", bulk("ZPOPMIN b"), "*2\r\n$1\r\nm\r\n$3\r\n1.5\r\n", "*3\r\n$1\r\nb\r\n$1\r\nm\r\n$3\r\n1.5\r\n", bulk("bzpopmin b c 0"),
			"*3\r\n$1\r\nc\r\n$1\r\nm\r\n$1\r\n2\r\n", bulk("ZADD c 2 m")},
		{"bzpopmax a b c 0", bulk("ZPOPMAX b"), "*2\r\n$1\r\nm\r\n$1\r\n1\r\n", "*3\r\n$1\r\nb\r\n$1\r\nm\r\n$1\r\n1\r\n", bulk("bzpopmax b c 0"),
			"*3\r\n$1\r\nc\r\n$1\r\nm\r\n$1\r\n2\r\n", bulk("ZADD c 2 m")},
		{"blmpop 0 3 a b c left count 2", bulk("LMPOP 1 b left count 2"), "*2\r\n$1\r\nb\r\n*1\r\n$1\r\nx\r\n", "*2\r\n$1\r\nb\r\n*1\r\n$1\r\nx\r\n",
			bulk("blmpop 0 2 b c left count 2"), "*2\r\n$1\r\nc\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n", bulk("LPUSH c 2 1")},
		{"blmpop 0 3 a b c RIGHT", bulk("LMPOP 1 b RIGHT"), "*-1\r\n", "", bulk("blmpop 0 2 b c RIGHT"),
			"*2\r\n$1\r\nc\r\n*2\r\n$1\r\n3\r\n$1\r\n2\r\n", bulk("RPUSH c 2 3")},
		{"bzmpop 1 3 a b c max", bulk("ZMPOP 1 b max"), "*2\r\n$1\r\nb\r\n*1\r\n*2\r\n$1\r\nm\r\n$1\r\n1\r\n", "*2\r\n$1\r\nb\r\n*1\r\n*2\r\n$1\r\nm\r\n$1\r\n1\r\n",
			bulk("bzmpop 1 2 b c max"), "*2\r\n$1\r\nc\r\n*2\r\n*2\r\n$1\r\np\r\n$1\r\n9\r\n*2\r\n$1\r\nq\r\n$1\r\n8\r\n", bulk("ZADD c 9 p 8 q")},
	}
	for _, tc := range tests {
		args := words(tc.req)
		c := mustResolve(t, args)
		if !c.CrossServer() {
			t.Errorf("%s: not CrossServer", tc.req)
		}
		if got, err := c.NonBlockingPop(nil, args, []byte("b")); err != nil || string(got) != tc.pop {
			t.Errorf("%s: NonBlockingPop %q %v, want %q", tc.req, got, err, tc.pop)
		}
		got, ok := c.BlockingReply(nil, []byte("b"), []byte(tc.popReply))
		if string(got) != tc.reply || ok != (tc.reply != "") {
			t.Errorf("%s: BlockingReply(%q) %q %v, want %q", tc.req, tc.popReply, got, ok, tc.reply)
		}
		if got, err := c.AppendBlockingWith(nil, args, words("b c")); err != nil || string(got) != tc.subset {
			t.Errorf("%s: AppendBlockingWith %q %v, want %q", tc.req, got, err, tc.subset)
		}
		if got, ok, err := c.AppendPushBack(nil, args, []byte(tc.winner)); err != nil || !ok || string(got) != tc.push {
			t.Errorf("%s: AppendPushBack(%q) %q %v %v, want %q", tc.req, tc.winner, got, ok, err, tc.push)
		}
		for _, null := range []string{"*-1\r\n", "-ERR x\r\n"} {
			if got, ok, err := c.AppendPushBack(nil, args, []byte(null)); ok || err != nil || len(got) != 0 {
				t.Errorf("%s: AppendPushBack(%q) %q %v %v, want nothing", tc.req, null, got, ok, err)
			}
		}
	}
	// An empty ZPOPMIN and a nil LPOP pop nothing; an error is the reply.
	for _, tc := range []struct{ req, reply string }{{"bzpopmin a 0", "*0\r\n"}, {"blpop a 0", "$-1\r\n"}} {
		args := words(tc.req)
		if got, ok := mustResolve(t, args).BlockingReply(nil, []byte("a"), []byte(tc.reply)); ok || len(got) != 0 {
			t.Errorf("%s: BlockingReply(%q) %q %v, want nothing", tc.req, tc.reply, got, ok)
		}
	}
	args := words("blpop a 0")
	if got, ok := mustResolve(t, args).BlockingReply(nil, []byte("a"), []byte("-WRONGTYPE x\r\n")); !ok || string(got) != "-WRONGTYPE x\r\n" {
		t.Errorf("BlockingReply of an error: %q %v", got, ok)
	}
	for _, req := range []string{"brpoplpush a b 0", "blmove a b left left 0", "xread block 0 streams a 0"} {
		args := words(req)
		c := mustResolve(t, args)
		if c.CrossServer() {
			t.Errorf("%s: CrossServer", req)
		}
		if _, err := c.NonBlockingPop(nil, args, []byte("a")); err == nil {
			t.Errorf("%s: NonBlockingPop without an error", req)
		}
	}
}

// FuzzPushBack: AppendPushBack and BlockingReply read replies from
// servers; whatever the bytes, they neither panic nor build a command that
// is not well formed.
func FuzzPushBack(f *testing.F) {
	for _, seed := range []string{
		"*2\r\n$1\r\nc\r\n$1\r\ny\r\n",
		"*3\r\n$1\r\nc\r\n$1\r\nm\r\n$1\r\n2\r\n",
		"*2\r\n$1\r\nc\r\n*2\r\n*2\r\n$1\r\np\r\n$1\r\n9\r\n*2\r\n$1\r\nq\r\n$1\r\n8\r\n",
		"*2\r\n$1\r\nc\r\n*2\r\n$1\r\n1\r\n$1\r\n2\r\n",
		"*-1\r\n", "*2\r\n", "*3\r\n:1\r\n", "*2\r\n$1\r\nc\r\n*1\r\n*1\r\n$1\r\np\r\n",
	} {
		f.Add(seed)
	}
	reqs := []string{"blpop a b 0", "brpop a b 0", "bzpopmin a b 0", "bzpopmax a b 0", "blmpop 0 2 a b left", "bzmpop 0 2 a b min count 2"}
	f.Fuzz(func(t *testing.T, reply string) {
		for _, req := range reqs {
			args := words(req)
			c := mustResolve(t, args)
			out, ok, err := c.AppendPushBack(nil, args, []byte(reply))
			if ok {
				var r resp.Request
				if n, perr := resp.ParseRequest(out, &r); perr != nil || n != len(out) {
					t.Fatalf("%s: push-back of %q is %q: %v", req, reply, out, perr)
				}
			} else if len(out) != 0 && err == nil {
				t.Fatalf("%s: %q appended %q without pushing back", req, reply, out)
			}
			c.BlockingReply(nil, []byte("a"), []byte(reply))
		}
	})
}
