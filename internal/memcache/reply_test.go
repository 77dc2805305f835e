package memcache

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// feedReplies plays a backend connection: data arrives in pieces ending at
// each of cuts and then at len(data); after each piece every complete reply
// to cmd is scanned and dropped. It returns the reply lengths, then the
// error or the bytes left.
func feedReplies(t testing.TB, data []byte, cmd Command, cuts []int, move bool) string {
	t.Helper()
	var (
		s        ReplyScanner
		out      []string
		consumed int
	)
	cuts = append(cuts, len(data))
	for _, end := range cuts {
		if end < consumed {
			continue
		}
		var buf []byte
		if move {
			buf = append(make([]byte, 0, end-consumed), data[consumed:end]...)
		} else {
			buf = data[consumed:end]
		}
		for {
			n, err := s.Scan(buf, cmd)
			if errors.Is(err, ErrIncomplete) {
				if n != 0 || s.Need() < 1 {
					t.Fatalf("ErrIncomplete with n=%d Need()=%d", n, s.Need())
				}
				break
			}
			if err != nil {
				var pe *ProtocolError
				if !errors.As(err, &pe) || !pe.Close || !errors.Is(err, ErrBadReply) {
					t.Fatalf("error %v is not a closing *ProtocolError", err)
				}
				return strings.Join(append(out, "error "+pe.Reply), " ")
			}
			if n <= 0 || n > len(buf) {
				t.Fatalf("Scan returned n=%d for %d bytes", n, len(buf))
			}
			out = append(out, fmt.Sprint(n))
			buf = buf[n:]
			consumed += n
		}
	}
	return strings.Join(append(out, fmt.Sprintf("left=%d", len(data)-consumed)), " ")
}

type replyCase struct {
	name string
	cmd  Command
	in   string
	want string // reply lengths, then "left=N" or "error <reply>"; "" for one whole reply
}

func replyCases() []replyCase {
	value := "VALUE a 0 1\r\nx\r\n"
	return []replyCase{
		// Retrieval.
		{"end", Get, "END\r\n", "5 left=0"},
		{"one value", Get, value + "END\r\n", "21 left=0"},
		{"two values", Gets, "VALUE a 0 1 7\r\nx\r\nVALUE b 4294967295 2 8\r\nyz\r\nEND\r\n", ""},
		{"empty value", Get, "VALUE a 0 0\r\n\r\nEND\r\n", "20 left=0"},
		{"value holding END", Gat, "VALUE a 0 5\r\nEND\r\n\r\nEND\r\n", "25 left=0"},
		{"key with CR and tab", Gats, "VALUE a\r\tb 0 1 3\r\nx\r\nEND\r\n", ""},
		{"then the next reply", Get, value + "END\r\nEND\r\nVALUE", "21 5 left=5"},
		{"error", Get, "ERROR\r\n", "7 left=0"},
		{"client error", Get, "CLIENT_ERROR bad command line format\r\n", "38 left=0"},
		{"server error after values", Get, value + "SERVER_ERROR out of memory writing get response\r\n", ""},
		{"incomplete header", Get, "VALUE a 0 1", "left=11"},
		{"incomplete data", Get, "VALUE a 0 10\r\nabc", "left=17"},
		{"incomplete end", Get, value + "END\r", "left=20"},
		{"not a retrieval line", Get, "STORED\r\n", "error SERVER_ERROR unexpected line in retrieval reply"},
		{"empty line", Get, "\r\nEND\r\n", "error SERVER_ERROR unexpected line in retrieval reply"},
		{"bare LF", Get, "END\n", "error SERVER_ERROR reply line does not end in CRLF"},
		{"LF only line", Get, "\n", "error SERVER_ERROR reply line does not end in CRLF"},
		{"value too few words", Get, "VALUE a 0\r\n", "error SERVER_ERROR bad VALUE line in reply"},
		{"value too many words", Get, "VALUE a 0 1 2 3\r\n", "error SERVER_ERROR bad VALUE line in reply"},
		{"value double space", Get, "VALUE  a 0 1\r\n", "error SERVER_ERROR bad VALUE line in reply"},
		{"value bad length", Get, "VALUE a 0 x\r\n", "error SERVER_ERROR bad VALUE line in reply"},
		{"value negative length", Get, "VALUE a 0 -1\r\n", "error SERVER_ERROR bad VALUE line in reply"},
		{"value huge length", Get, "VALUE a 0 99999999999999\r\n", "error SERVER_ERROR bad VALUE line in reply"},
		{"data without CRLF", Get, "VALUE a 0 1\r\nxyz\r\nEND\r\n", "error SERVER_ERROR data block not followed by CRLF"},
		{"value without numbers", Get, "VALUE broken\r\n", "error SERVER_ERROR bad VALUE line in reply"},
		{"garbage line", Get, "this is garbage\r\n", "error SERVER_ERROR unexpected line in retrieval reply"},
		{"binary garbage", Gets, "\x00\xff\x10\r\n", "error SERVER_ERROR unexpected line in retrieval reply"},
		{"no CRLF at all", Get, strings.Repeat("\x00", maxReplyLine), "error SERVER_ERROR reply line too long"},
		{"RESP reply", Get, "$3\r\nabc\r\n", "error SERVER_ERROR unexpected line in retrieval reply"},

		// One line.
		{"stored", Set, "STORED\r\n", "8 left=0"},
		{"number", Incr, "12\r\nNOT_FOUND\r\n", "4 11 left=0"},
		{"version", Version, "VERSION 1.6.18\r\n", "16 left=0"},
		{"meta noop", MetaNoop, "MN\r\n", "4 left=0"},
		{"meta debug", MetaDebug, "ME a exp=-1 la=0 cas=2 fetch=no cls=1 size=63\r\n", ""},
		{"meta set", MetaSet, "HD c5 Oab\r\n", "11 left=0"},
		{"meta delete", MetaDelete, "NF\r\n", "4 left=0"},
		{"line CR only", Set, "STORED\rX", "left=8"},
		{"line without CR", Delete, "DELETED\n", "error SERVER_ERROR reply line does not end in CRLF"},
		{"unknown command", Unknown, "ERROR\r\n", "7 left=0"},
		{"line too long", Set, strings.Repeat("x", maxReplyLine), "error SERVER_ERROR reply line too long"},
		{"line just short enough", Set, strings.Repeat("x", maxReplyLine-2) + "\r\n", fmt.Sprintf("%d left=0", maxReplyLine)},

		// Meta with a value.
		{"mg miss", MetaGet, "EN\r\n", "4 left=0"},
		{"mg hit", MetaGet, "HD f0 c3\r\n", "10 left=0"},
		{"mg value", MetaGet, "VA 3 s3\r\nabc\r\n", "14 left=0"},
		{"mg empty value", MetaGet, "VA 0\r\n\r\n", "8 left=0"},
		{"mg value holding CRLF", MetaGet, "VA 4\r\n\r\n\r\n\r\nEN\r\n", "12 4 left=0"},
		{"mg error", MetaGet, "CLIENT_ERROR bad token in command line format\r\n", "47 left=0"},
		{"mg bad length", MetaGet, "VA x\r\n", "error SERVER_ERROR bad VA line in reply"},
		{"mg no length", MetaGet, "VA \r\n", "error SERVER_ERROR bad VA line in reply"},
		{"mg data without CRLF", MetaGet, "VA 1\r\nabc", "error SERVER_ERROR data block not followed by CRLF"},
		{"mg incomplete", MetaGet, "VA 10 s10\r\nabc", "left=14"},
		{"ma value", MetaArithmetic, "VA 2 t-1\r\n10\r\nNF\r\n", "14 4 left=0"},

		// Stats.
		{"stats", Stats, "STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n", ""},
		{"stats items", Stats, "STAT items:1:number 1\r\nEND\r\n", "28 left=0"},
		{"stats cachedump", Stats, "ITEM a [1 b; 0 s]\r\nEND\r\n", "24 left=0"},
		{"stats detail dump", Stats, "PREFIX a get 1 hit 0 set 0 del 0\r\nEND\r\n", ""},
		{"stats reset", Stats, "RESET\r\n", "7 left=0"},
		{"stats error", Stats, "ERROR\r\n", "7 left=0"},
		{"stats incomplete", Stats, "STAT pid 1\r\nSTAT", "left=16"},
	}
}

func TestScan(t *testing.T) {
	for _, tc := range replyCases() {
		if tc.want == "" { // the input is one whole reply
			tc.want = fmt.Sprintf("%d left=0", len(tc.in))
		}
		t.Run(tc.name, func(t *testing.T) {
			if got := feedReplies(t, []byte(tc.in), tc.cmd, nil, false); got != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
}

// TestScanSplit: the same replies a byte at a time, and split anywhere
// with the buffer moved, scan the same.
func TestScanSplit(t *testing.T) {
	for _, tc := range replyCases() {
		if tc.want == "" {
			tc.want = fmt.Sprintf("%d left=0", len(tc.in))
		}
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.in)
			if len(data) > 4096 {
				data = data[:4096] // still incomplete or too long
			}
			want := feedReplies(t, data, tc.cmd, nil, false)
			if got := feedReplies(t, data, tc.cmd, everyByte(len(data)), false); got != want {
				t.Fatalf("byte by byte: %s, want %s", got, want)
			}
			for _, k := range splitPoints(len(data)) {
				if got := feedReplies(t, data, tc.cmd, []int{k}, true); got != want {
					t.Fatalf("split at %d: %s, want %s", k, got, want)
				}
			}
		})
	}
}

// TestScanNeed: after ErrIncomplete, the bytes passed plus Need is where
// the scanner can next make progress: the end of the data block being
// read, or one more byte.
func TestScanNeed(t *testing.T) {
	cases := []struct {
		cmd   Command
		in    string
		total int // len(in) + Need()
	}{
		{Get, "", 1},
		{Get, "VALUE a 0 10", 13},
		{Get, "VALUE a 0 10\r\n", 26},
		{Get, "VALUE a 0 10\r\nabc", 26},
		{Get, "VALUE a 0 1\r\nx\r\nVALUE b 0 1000000000\r\n", 1000000040},
		{Gets, "VALUE a 0 3 9\r\n", 20},
		{MetaGet, "VA 5 s5\r\n", 16},
		{Set, "STORED", 7},
	}
	for _, tc := range cases {
		var s ReplyScanner
		if _, err := s.Scan([]byte(tc.in), tc.cmd); !errors.Is(err, ErrIncomplete) {
			t.Errorf("Scan(%q): %v, want ErrIncomplete", tc.in, err)
			continue
		}
		if got := len(tc.in) + s.Need(); got != tc.total {
			t.Errorf("Scan(%q): len+Need = %d, want %d", tc.in, got, tc.total)
		}
	}
}

// TestScanLargeValue: a 1 MiB VALUE arriving in 16 KiB reads is jumped
// over, not rescanned.
func TestScanLargeValue(t *testing.T) {
	value := strings.Repeat("v", 1<<20)
	data := []byte("VALUE big 0 1048576\r\n" + value + "\r\nVALUE a 0 1\r\nx\r\nEND\r\n")
	var cuts []int
	for k := 16 << 10; k < len(data); k += 16 << 10 {
		cuts = append(cuts, k)
	}
	want := fmt.Sprintf("%d left=0", len(data))
	if got := feedReplies(t, data, Get, cuts, false); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	var s ReplyScanner
	oneShot := func() {
		for range 20 {
			if _, err := s.Scan(data, Get); err != nil {
				t.Fatal(err)
			}
		}
	}
	incremental := func() {
		for range 20 {
			for _, end := range cuts {
				if _, err := s.Scan(data[:end], Get); !errors.Is(err, ErrIncomplete) {
					t.Fatal(err)
				}
			}
			if _, err := s.Scan(data, Get); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkLinear(t, oneShot, incremental, 100*time.Millisecond)
}

func TestIsErrorReply(t *testing.T) {
	for _, tc := range []struct {
		reply string
		want  bool
	}{
		{"ERROR\r\n", true},
		{"ERROR: shutdown not enabled\r\n", true},
		{"CLIENT_ERROR bad data chunk\r\n", true},
		{"SERVER_ERROR out of memory\r\n", true},
		{"VALUE a 0 1\r\nx\r\nSERVER_ERROR out of memory\r\n", true},
		{"VALUE a 0 15\r\nx\nSERVER_ERROR x\r\nEND\r\n", false},
		{"VALUE a 0 1\r\nx\r\nEND\r\n", false},
		{"END\r\n", false},
		{"STORED\r\n", false},
		{"VA 7\r\nERROR\r\n\r\n", false},
		{"EN\r\n", false},
		{"", false},
	} {
		if got := IsErrorReply([]byte(tc.reply)); got != tc.want {
			t.Errorf("IsErrorReply(%q) = %v", tc.reply, got)
		}
	}
}

func TestValueBlocks(t *testing.T) {
	reply := "VALUE a 0 1\r\nx\r\nVALUE b\r 5 5 9\r\nEND\r\n\r\nVALUE c 0 0\r\n\r\nEND\r\n"
	var got []string
	err := ValueBlocks([]byte(reply), func(key, block []byte) {
		if cap(key) != len(key) || cap(block) != len(block) {
			t.Errorf("capacity not clipped")
		}
		got = append(got, fmt.Sprintf("%q=%q", key, block))
	})
	want := []string{`"a"="VALUE a 0 1\r\nx\r\n"`, `"b\r"="VALUE b\r 5 5 9\r\nEND\r\n\r\n"`, `"c"="VALUE c 0 0\r\n\r\n"`}
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("err=%v blocks %v", err, got)
	}
	for _, tc := range []struct {
		reply string
		err   error
	}{
		{"END\r\n", nil},
		{"VALUE a 0 1\r\nx\r\nSERVER_ERROR oom\r\n", ErrErrorReply},
		{"ERROR\r\n", ErrErrorReply},
		{"VALUE a 0 1\r\nx\r\n", ErrIncomplete},
		{"VALUE a 0 5\r\nx\r\n", ErrIncomplete},
		{"END\r\nEND\r\n", ErrBadReply},
		{"VALUE a 0 1\r\nxyz\r\n", ErrBadReply},
		{"VALUE a 0\r\nEND\r\n", ErrBadReply},
		{"STORED\r\n", ErrBadReply},
		{"END\n", ErrBadReply},
	} {
		if err := ValueBlocks([]byte(tc.reply), func(_, _ []byte) {}); !errors.Is(err, tc.err) {
			t.Errorf("ValueBlocks(%q) = %v, want %v", tc.reply, err, tc.err)
		}
	}
}

func TestQuietSuppressed(t *testing.T) {
	for _, tc := range []struct {
		cmd   Command
		reply string
		want  bool
	}{
		{MetaGet, "EN\r\n", true},
		{MetaGet, "EN Oab kfoo\r\n", true},
		{MetaGet, "HD\r\n", false},
		{MetaGet, "VA 1\r\nx\r\n", false},
		{MetaGet, "CLIENT_ERROR bad command line format\r\n", false},
		{MetaGet, "ENX\r\n", false},
		{MetaSet, "HD\r\n", true},
		{MetaSet, "HD c12\r\n", true},
		{MetaSet, "OK\r\n", true},
		{MetaSet, "NS\r\n", false},
		{MetaSet, "EX\r\n", false},
		{MetaSet, "NF\r\n", false},
		{MetaDelete, "HD Oab\r\n", true},
		{MetaDelete, "NF\r\n", false},
		{MetaDelete, "EX\r\n", false},
		{MetaArithmetic, "HD\r\n", true},
		{MetaArithmetic, "VA 2\r\n10\r\n", true},
		{MetaArithmetic, "NF\r\n", false},
		{MetaArithmetic, "EX\r\n", false},
		{MetaNoop, "MN\r\n", false},
		{Get, "END\r\n", false},
		{MetaGet, "EN", false},
	} {
		if got := QuietSuppressed(tc.cmd, []byte(tc.reply)); got != tc.want {
			t.Errorf("QuietSuppressed(%v, %q) = %v", tc.cmd, tc.reply, got)
		}
	}
}

func TestStripQuiet(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mg k v q\r\n", "mg k v\r\n"},
		{"mg k q v\r\n", "mg k v\r\n"},
		{"mg q q\r\n", "mg q\r\n"},
		{"mg k  q  v\r\n", "mg k  v\r\n"},
		{"ms k 5 q T10\r\n", "ms k 5 T10\r\n"},
		{"ms q 5 q\r\n", "ms q 5\r\n"},
		{"md k q\n", "md k\n"},
		{"ma k qq D5\r\n", "ma k D5\r\n"},
		{"mg k v\r\n", "mg k v\r\n"},
		{"mn q\r\n", "mn q\r\n"},
		{"me k q\r\n", "me k q\r\n"},
		{"get q\r\n", "get q\r\n"},
		{"mg k v\x00 q\r\n", "mg k v\x00 q\r\n"},
		{"mg k q\r\r\n", "mg k\r\n"}, // "q\r" is the q flag too
		{"mg k q", "mg k q"},
		{"", ""},
	} {
		got := StripQuiet([]byte("prefix:"), []byte(tc.in))
		if string(got) != "prefix:"+tc.want {
			t.Errorf("StripQuiet(%q) = %q, want %q", tc.in, got[7:], tc.want)
		}
		// What is left parses as the same request without q.
		var a, b Request
		_, errA := ParseRequest([]byte(tc.in), &a)
		_, errB := ParseRequest(got[7:], &b)
		if errA == nil && a.Quiet {
			if errB != nil || b.Quiet || len(b.Flags) != len(a.Flags)-1 {
				t.Errorf("%q stripped to %q: err=%v quiet=%v", tc.in, got[7:], errB, b.Quiet)
			}
		}
	}
}
