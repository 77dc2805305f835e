package memcache

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardproxy/shardproxy/internal/testutil"
)

// The live tests hold the parser to memcached itself: the same bytes go to
// ParseRequest and to a real memcached 1.6, and every prediction (which
// reply, or none, how many bytes are skipped, when the connection closes)
// must match what the server does.

// liveConn reads a memcached connection with the package's own framing.
type liveConn struct {
	t    *testing.T
	conn net.Conn
	buf  []byte
	eof  bool
}

func dialLive(t *testing.T, addr string) *liveConn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &liveConn{t: t, conn: conn}
}

// send writes the parts with a pause between them, so that memcached reads
// them separately.
func (c *liveConn) send(parts ...[]byte) {
	for i, p := range parts {
		if i > 0 {
			time.Sleep(50 * time.Millisecond)
		}
		// After a close, the reads tell the story; a write may fail.
		_, _ = c.conn.Write(p)
	}
}

// more reads at least one more byte, or reports false at EOF or after wait.
func (c *liveConn) more(wait time.Duration) bool {
	if c.eof {
		return false
	}
	c.conn.SetReadDeadline(time.Now().Add(wait))
	var b [64 << 10]byte
	n, err := c.conn.Read(b[:])
	c.buf = append(c.buf, b[:n]...)
	if errors.Is(err, io.EOF) {
		c.eof = true
	}
	return n > 0
}

// reply returns the next reply to a command c, framed by ReplyScanner.
func (c *liveConn) reply(cmd Command) []byte {
	c.t.Helper()
	var s ReplyScanner
	for {
		n, err := s.Scan(c.buf, cmd)
		if err == nil {
			r := c.buf[:n]
			c.buf = c.buf[n:]
			return r
		}
		if !errors.Is(err, ErrIncomplete) {
			c.t.Fatalf("reply to %v: %v in %q", cmd, err, c.buf)
		}
		if !c.more(2 * time.Second) {
			c.t.Fatalf("reply to %v: got only %q (eof=%v)", cmd, c.buf, c.eof)
		}
	}
}

// peek returns the next reply to cmd without consuming it, or nil if none
// arrives soon.
func (c *liveConn) peek(cmd Command) []byte {
	var s ReplyScanner
	for {
		n, err := s.Scan(c.buf, cmd)
		if err == nil {
			return c.buf[:n]
		}
		if !c.more(300 * time.Millisecond) {
			return nil
		}
	}
}

// nothing checks that the server sends no more bytes, and whether it closed.
func (c *liveConn) nothing(closed bool) {
	c.t.Helper()
	// Without a close, the mn sentinel's MN was the last reply: nothing
	// can follow it.
	if closed {
		for c.more(2 * time.Second) {
		}
	}
	if len(c.buf) > 0 {
		c.t.Fatalf("unexpected bytes from the server: %q", c.buf)
	}
	if c.eof != closed {
		c.t.Fatalf("server closed: %v, want %v", c.eof, closed)
	}
}

// metaCodes are the status codes each meta command answers with, to tell
// its reply from the next command's when q may have hidden it.
var metaCodes = map[Command]string{
	MetaGet:        "VA HD EN",
	MetaSet:        "HD NS EX NF",
	MetaDelete:     "HD NF EX",
	MetaArithmetic: "VA HD NF NS EX",
}

// checkLive sends in (in parts, if given, with "mn\r\n" appended) to the
// server and checks every reply against what ParseRequest predicts for the
// same bytes. serverError allows error replies to requests the parser
// accepts (refusals that depend on the server's state or build).
func checkLive(t *testing.T, addr string, in []byte, serverError bool, parts ...[]byte) {
	t.Helper()
	data := append(append([]byte(nil), in...), "mn\r\n"...)
	if len(parts) == 0 {
		parts = [][]byte{data}
	} else {
		parts = append(parts, []byte("mn\r\n"))
	}
	pred := feedRequests(t, data, nil, false)
	last := pred.items[len(pred.items)-1]
	if !pred.closed && (!last.req || last.cmd != MetaNoop) {
		t.Fatalf("the prediction does not end in the mn sentinel:\n%v", pred)
	}
	c := dialLive(t, addr)
	if pred.closed && len(parts) > 1 {
		// The first part alone must make memcached close: were it to read
		// more at once, it could find the '\n' and take the line.
		parts = parts[:1]
	}
	c.send(parts...)
	for i, it := range pred.items {
		switch {
		case it.pe != nil && it.pe.Close:
			c.nothing(true)
			return
		case it.pe != nil && it.pe.Noreply:
		case it.pe != nil:
			if got := c.reply(Unknown); string(got) != it.pe.Reply+"\r\n" {
				t.Fatalf("item %d (%s): server said %q", i, it.desc, got)
			}
		case it.noreply:
		case it.quiet:
			r := c.peek(it.cmd)
			if len(r) < 2 || !strings.Contains(metaCodes[it.cmd], string(r[:2])) {
				continue // hidden by q
			}
			if QuietSuppressed(it.cmd, r) {
				t.Fatalf("item %d (%s): q did not hide %q", i, it.desc, r)
			}
			c.buf = c.buf[len(r):]
		default:
			r := c.reply(it.cmd)
			if it.cmd == MetaNoop && string(r) != "MN\r\n" {
				t.Fatalf("item %d (%s): server said %q", i, it.desc, r)
			}
			if IsErrorReply(r) && !serverError {
				t.Fatalf("item %d (%s): server refused it: %q", i, it.desc, r)
			}
		}
	}
	c.nothing(false)
}

func TestLiveRequests(t *testing.T) {
	srv := testutil.StartMemcached(t)
	for _, tc := range requestCases() {
		if tc.noLive {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			checkLive(t, srv.Addr, []byte(tc.in), tc.serverError)
		})
	}
}

// TestLiveLongLines: memcached closes a connection once it has buffered
// more than 2048 bytes without a '\n' (unless the line starts with "get "
// or "gets "), so whether it accepts a longer line depends on how its
// reads split it. The parser limits the line instead: at most 2048 bytes
// before its terminator. Split as below, memcached agrees.
func TestLiveLongLines(t *testing.T) {
	srv := testutil.StartMemcached(t)
	long := "set k 0 0 1 " + strings.Repeat("x", MaxLineLen-12) // 2048 bytes
	cases := []struct {
		name  string
		parts []string
	}{
		{"2048 bytes then CRLF", []string{long, "\r\nx\r\n"}},
		{"2048 bytes then LF", []string{long, "\nx\r\n"}},
		{"2049 bytes then CRLF", []string{long + "x", "\r\nx\r\n"}},
		{"no LF at all", []string{strings.Repeat("x", MaxLineLen+1), "\r\nversion\r\n"}},
		{"long gat", []string{"gat 0" + strings.Repeat(" a", 1500), "\r\n"}},
		{"long get", []string{"get" + strings.Repeat(" a", 1500), "\r\n"}},
		{"long gets", []string{"gets" + strings.Repeat(" a", 1500), "\r\n"}},
		{"long get after 100 spaces", []string{strings.Repeat(" ", 100) + "get" + strings.Repeat(" a", 1500), "\r\n"}},
		{"long get after 101 spaces", []string{strings.Repeat(" ", 101) + "get" + strings.Repeat(" a", 1500), "\r\n"}},
		{"long get with a tab", []string{"get\t" + strings.Repeat(" a", 1500), "\r\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var parts [][]byte
			for _, p := range tc.parts {
				parts = append(parts, []byte(p))
			}
			checkLive(t, srv.Addr, bytes.Join(parts, nil), false, parts...)
		})
	}
	// Where memcached's answer depends on the split, the parser's does not.
	t.Run("split between CR and LF", func(t *testing.T) {
		c := dialLive(t, srv.Addr)
		c.send([]byte(long + "\r"))
		c.nothing(true) // memcached has 2049 bytes without a '\n'
		var req Request
		if _, err := ParseRequest([]byte(long+"\r\nx\r\n"), &req); err != nil {
			t.Fatalf("ParseRequest: %v", err)
		}
	})
	t.Run("long line at once", func(t *testing.T) {
		in := "set k 0 0 1 " + strings.Repeat("x", 3000) + "\r\nx\r\n"
		c := dialLive(t, srv.Addr)
		c.send([]byte(in))
		if r := c.reply(Set); string(r) != "STORED\r\n" {
			t.Fatalf("memcached answered %q to a long line read at once", r)
		}
		var req Request
		if _, err := ParseRequest([]byte(in), &req); !errors.Is(err, ErrLineTooLong) {
			t.Fatalf("ParseRequest: %v", err)
		}
	})
}

// TestLiveQuiet checks QuietSuppressed against memcached: the same meta
// request, with and without q, in the same state; the reply without q must
// be suppressed exactly when memcached sends nothing with q.
func TestLiveQuiet(t *testing.T) {
	srv := testutil.StartMemcached(t)
	cases := []struct {
		name  string
		setup string // run first; "K" is the key
		req   string // without q; q is added as the last flag
	}{
		{"mg hit", "ms K 1\r\nx\r\n", "mg K"},
		{"mg hit value", "ms K 1\r\nx\r\n", "mg K v s"},
		{"mg miss", "", "mg K v"},
		{"mg miss opaque", "", "mg K v Oab k"},
		{"ms stored", "", "ms K 1\r\nx\r\n"},
		{"ms not stored", "ms K 1\r\nx\r\n", "ms K 1 ME\r\nx\r\n"},
		{"ms exists", "ms K 1\r\nx\r\n", "ms K 1 C1\r\nx\r\n"},
		{"ms not found", "", "ms K 1 C1 MR\r\nx\r\n"},
		{"ms bad chunk", "", "ms K 1\r\nxyz\r\n"},
		{"md deleted", "ms K 1\r\nx\r\n", "md K"},
		{"md stale", "ms K 1\r\nx\r\n", "md K I"},
		{"md not found", "", "md K"},
		{"md exists", "ms K 1\r\nx\r\n", "md K C1"},
		{"ma hit", "ms K 1\r\n5\r\n", "ma K"},
		{"ma hit value", "ms K 1\r\n5\r\n", "ma K v"},
		{"ma not found", "", "ma K"},
		{"ma exists", "ms K 1\r\n5\r\n", "ma K C1"},
		{"ma non-numeric", "ms K 1\r\nx\r\n", "ma K"},
		{"mg error", "", "mg K Tx"},
		// The one case QuietSuppressed gets wrong: memcached shows the HD
		// of an item ma had to create (N flag), which looks like any HD.
		{"ma autovivify (known)", "", "ma K N0 J1"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := lookup([]byte(tc.req[:2]))
			// run sends the request, after its setup, and returns the
			// first reply to it, or nil if none came before the noop's MN.
			run := func(quiet bool) []byte {
				key := "quiet" + strconv.Itoa(i) + strconv.FormatBool(quiet)
				setup := strings.ReplaceAll(tc.setup, "K", key)
				line, rest, _ := strings.Cut(strings.ReplaceAll(tc.req, "K", key), "\r\n")
				if quiet {
					line += " q"
				}
				c := dialLive(t, srv.Addr)
				c.send([]byte(setup + line + "\r\n" + rest + "mn\r\n"))
				for range strings.Count(setup, "ms ") {
					if r := c.reply(MetaSet); string(r) != "HD\r\n" {
						t.Fatalf("setup: %q", r)
					}
				}
				first := c.reply(cmd)
				if string(first) == "MN\r\n" {
					return nil
				}
				for string(c.reply(Unknown)) != "MN\r\n" {
				}
				return first
			}
			plain, quiet := run(false), run(true)
			if plain == nil {
				t.Fatal("no reply without q")
			}
			if strings.HasSuffix(tc.name, "(known)") {
				if !QuietSuppressed(cmd, plain) || quiet == nil {
					t.Fatalf("memcached changed: %q without q, %q with", plain, quiet)
				}
				return
			}
			if got, want := QuietSuppressed(cmd, plain), quiet == nil; got != want {
				t.Fatalf("reply %q: QuietSuppressed = %v, but with q memcached sent %q", plain, got, quiet)
			}
		})
	}
}

// TestLiveReplies frames real replies of every kind with ReplyScanner:
// the reply to each request, followed by the MN of a noop, must come out
// as exactly one reply.
func TestLiveReplies(t *testing.T) {
	srv := testutil.StartMemcached(t)
	setup := "set a 0 0 1\r\nx\r\nset b 5 0 5\r\nEND\r\n\r\nset c 0 0 0\r\n\r\nset n 0 0 2\r\n10\r\n" +
		"set crlf 0 0 6\r\nx\r\nEND\r\n"
	c := dialLive(t, srv.Addr)
	c.send([]byte(setup))
	for range 5 {
		if r := c.reply(Set); string(r) != "STORED\r\n" {
			t.Fatalf("setup: %q", r)
		}
	}
	big := strings.Repeat("v", 1<<20-512)
	c.send([]byte("set big 0 0 " + strconv.Itoa(len(big)) + "\r\n" + big + "\r\n"))
	if r := c.reply(Set); string(r) != "STORED\r\n" {
		t.Fatalf("setup big: %q", r)
	}
	reqs := []string{
		"get a", "get a b c nope crlf", "gets a b", "gat 0 a b", "gats 100 a", "get nope", "get big a",
		"set x 0 0 1\r\nx", "add a 0 0 1\r\nx", "cas a 0 0 1 1\r\nx", "replace nope 0 0 1\r\nx",
		"incr n 5", "decr n 100", "incr nope 1", "incr a 1", "delete nope", "touch a 10", "touch nope 1",
		"mg a", "mg a v s f t c k Oop", "mg nope v k Oop", "mg big v", "mg crlf v",
		"ms y 2 T0 c\r\nhi", "ms y 2 ME\r\nhi", "md y", "md y", "ma n v", "ma n", "ma nope", "ma nope N0 J13 v",
		"me a", "me nope", "mg a Tx", "version", "verbosity 0", "flush_all 100", "bogus",
		"stats", "stats settings", "stats items", "stats slabs", "stats sizes", "stats conns", "stats detail dump",
		"stats reset", "stats nope",
	}
	for _, r := range reqs {
		t.Run(strings.ReplaceAll(r, "\r\n", " "), func(t *testing.T) {
			var req Request
			in := []byte(r + "\r\n")
			cmd := Unknown
			if _, err := ParseRequest(in, &req); err == nil {
				cmd = req.Command
			}
			c.send(append(in, "mn\r\n"...))
			reply := c.reply(cmd)
			if mn := c.reply(MetaNoop); string(mn) != "MN\r\n" {
				t.Fatalf("reply %q then %q, not MN", reply, mn)
			}
			// Byte by byte, the scanner frames the same reply.
			var s ReplyScanner
			for k := 1; k < len(reply); k++ {
				if n, err := s.Scan(reply[:k], cmd); !errors.Is(err, ErrIncomplete) {
					t.Fatalf("prefix %d of %q: n=%d err=%v", k, reply, n, err)
				}
			}
			if n, err := s.Scan(reply, cmd); err != nil || n != len(reply) {
				t.Fatalf("whole: n=%d err=%v", n, err)
			}
			if cmd.IsRetrieval() && !IsErrorReply(reply) {
				var got []byte
				if err := ValueBlocks(reply, func(key, block []byte) { got = append(got, block...) }); err != nil {
					t.Fatal(err)
				}
				if string(got)+"END\r\n" != string(reply) {
					t.Fatalf("blocks %q do not make up %q", got, reply)
				}
			}
		})
	}
}

// TestLiveBinaryError holds AppendBinaryError to memcached's own layout:
// memcached answers a binary request with an opcode it does not know with
// status 0x0081 and the body "Unknown command"; with that body,
// AppendBinaryError must produce the same bytes.
func TestLiveBinaryError(t *testing.T) {
	srv := testutil.StartMemcached(t)
	for _, opaque := range []uint32{0xdeadbeef, 10, 0} {
		in := []byte(binRequest(0xfe, "", opaque))
		want := AppendBinaryError(nil, in, "Unknown command")
		c := dialLive(t, srv.Addr)
		c.send(in)
		for len(c.buf) < len(want) && c.more(2*time.Second) {
		}
		if string(c.buf) != string(want) {
			t.Fatalf("opaque %#x: memcached answered\n%q\nAppendBinaryError makes\n%q", opaque, c.buf, want)
		}
	}
}
