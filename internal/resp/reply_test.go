package resp

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

type replyCase struct {
	name    string
	in      string
	n       int    // length of the first reply
	err     string // "", incomplete, or the error text
	maxLine int    // the scanner's MaxLine
}

func replyCases() []replyCase {
	return []replyCase{
		{name: "simple", in: "+OK\r\n", n: 5},
		{name: "empty simple", in: "+\r\n", n: 3},
		{name: "error", in: "-ERR unknown command 'x'\r\n", n: 26},
		{name: "integer", in: ":1000\r\n", n: 7},
		{name: "negative integer", in: ":-1\r\n", n: 5},
		{name: "bulk", in: "$3\r\nfoo\r\n", n: 9},
		{name: "empty bulk", in: "$0\r\n\r\n", n: 6},
		{name: "binary bulk", in: "$6\r\n\r\n$1\r\n\r\n", n: 12},
		{name: "null bulk", in: "$-1\r\n", n: 5},
		{name: "null array", in: "*-1\r\n", n: 5},
		{name: "empty array", in: "*0\r\n", n: 4},
		{name: "array", in: "*3\r\n$1\r\na\r\n$-1\r\n:7\r\n", n: 20},
		{name: "nested", in: "*2\r\n*2\r\n+a\r\n*0\r\n*1\r\n*-1\r\n", n: 25},
		{name: "nested with bulks", in: "*2\r\n*1\r\n$2\r\n\r\n\r\n$0\r\n\r\n", n: 22},
		{name: "followed by more", in: "+OK\r\n:1\r\n+PONG", n: 5},
		{name: "CR in simple", in: "+a\rb\r\n", n: 6},

		{name: "partial line", in: "+OK\r", err: incomplete},
		{name: "partial bulk", in: "$3\r\nfo", err: incomplete},
		{name: "partial array", in: "*2\r\n:1\r\n", err: incomplete},

		{name: "unknown type", in: "?x\r\n", err: `Protocol error: unknown reply type '?'`},
		{name: "RESP3 map", in: "%1\r\n+a\r\n+b\r\n", err: `Protocol error: unknown reply type '%'`},
		{name: "RESP3 null", in: "_\r\n", err: `Protocol error: unknown reply type '_'`},
		{name: "unknown type nested", in: "*2\r\n:1\r\n#t\r\n", err: `Protocol error: unknown reply type '#'`},
		{name: "empty line", in: "\r\n", err: `Protocol error: unknown reply type '\r'`},
		{name: "LF without CR", in: "+OK\n", err: "Protocol error: expected CRLF at end of line in reply"},
		{name: "bulk without CRLF", in: "$3\r\nfooXY", err: "Protocol error: expected CRLF after bulk in reply"},
		{name: "bulk len -2", in: "$-2\r\n", err: "Protocol error: invalid bulk length in reply"},
		{name: "bulk len junk", in: "$1x\r\n", err: "Protocol error: invalid bulk length in reply"},
		{name: "bulk len empty", in: "$\r\n", err: "Protocol error: invalid bulk length in reply"},
		{name: "bulk len huge", in: "$9223372036854775807\r\n", err: "Protocol error: invalid bulk length in reply"},
		{name: "array len -2", in: "*-2\r\n", err: "Protocol error: invalid multibulk length in reply"},
		{name: "array len junk", in: "*a\r\n", err: "Protocol error: invalid multibulk length in reply"},
		{name: "nested array len junk", in: "*1\r\n*01\r\n", err: "Protocol error: invalid multibulk length in reply"},
		{name: "too many elements", in: strings.Repeat("*2305843009213693951\r\n", 5), err: "Protocol error: too many elements in reply"},

		// MaxLine bounds lines, "\r\n" included, not bulk contents.
		{name: "line at MaxLine", in: "+1234567\r\n", n: 10, maxLine: 10},
		{name: "line over MaxLine", in: "+12345678\r\n", err: "Protocol error: line too long in reply", maxLine: 10},
		{name: "partial line under MaxLine", in: "+12345678", err: incomplete, maxLine: 10},
		{name: "partial line at MaxLine", in: "-123456789", err: "Protocol error: line too long in reply", maxLine: 10},
		{name: "bulk header over MaxLine", in: "$1000000000\r\n", err: "Protocol error: line too long in reply", maxLine: 8},
		{name: "long line in array", in: "*2\r\n:1\r\n+123456789\r\n", err: "Protocol error: line too long in reply", maxLine: 10},
		{name: "bulk longer than MaxLine", in: "$20\r\n01234567890123456789\r\n", n: 27, maxLine: 10},
		{name: "no CRLF at all", in: strings.Repeat("+", 64), err: "Protocol error: line too long in reply", maxLine: 32},
	}
}

func TestScan(t *testing.T) {
	for _, tc := range replyCases() {
		t.Run(tc.name, func(t *testing.T) {
			s := ReplyScanner{MaxLine: tc.maxLine}
			n, err := s.Scan([]byte(tc.in))
			checkReply(t, tc, n, err)
			if tc.err != incomplete && s != (ReplyScanner{MaxLine: tc.maxLine}) {
				t.Errorf("scanner not reset: %+v", s)
			}
		})
	}
}

func checkReply(t *testing.T, tc replyCase, n int, err error) {
	t.Helper()
	switch tc.err {
	case "":
		if err != nil || n != tc.n {
			t.Fatalf("n, err = %d, %v; want %d, nil", n, err, tc.n)
		}
	case incomplete:
		if !errors.Is(err, ErrIncomplete) || n != 0 {
			t.Fatalf("n, err = %d, %v; want 0, ErrIncomplete", n, err)
		}
	default:
		var pe *ProtocolError
		if !errors.As(err, &pe) || err.Error() != tc.err || n != 0 {
			t.Fatalf("n, err = %d, %v; want 0, %q", n, err, tc.err)
		}
	}
}

func TestScanPrefixes(t *testing.T) {
	for _, tc := range replyCases() {
		t.Run(tc.name, func(t *testing.T) {
			full := tc.n
			if tc.err != "" {
				full = len(tc.in) + 1
			}
			sawErr := false
			for k := 0; k <= len(tc.in); k++ {
				s := ReplyScanner{MaxLine: tc.maxLine}
				n, err := s.Scan([]byte(tc.in[:k]))
				switch {
				case k >= full:
					checkReply(t, tc, n, err)
				case err != nil && !errors.Is(err, ErrIncomplete) && err.Error() == tc.err:
					sawErr = true
				case sawErr:
					t.Fatalf("prefix %d: %v after the error showed on a shorter prefix", k, err)
				case !errors.Is(err, ErrIncomplete):
					t.Fatalf("prefix %d: err = %v, want ErrIncomplete", k, err)
				}
			}
		})
	}
}

func TestScanSplit(t *testing.T) {
	for _, tc := range replyCases() {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.in)
			want := feedRepliesMax(t, data, tc.maxLine, nil, false)
			for _, k := range splitPoints(len(data)) {
				if got := feedRepliesMax(t, data, tc.maxLine, []int{k}, true); !got.equal(want) {
					t.Fatalf("split at %d:\n%v\nwant:\n%v", k, got, want)
				}
			}
			if got := feedRepliesMax(t, data, tc.maxLine, everyByte(len(data)), true); !got.equal(want) {
				t.Fatalf("byte by byte:\n%v\nwant:\n%v", got, want)
			}
		})
	}
}

func TestScanMany(t *testing.T) {
	var data []byte
	var want []int
	for i := range 1000 {
		before := len(data)
		switch i % 5 {
		case 0:
			data = AppendSimple(data, "OK")
		case 1:
			data = AppendBulkString(data, strings.Repeat("v\r\n", i))
		case 2:
			data = AppendArrayHeader(data, 2)
			data = AppendNullBulk(data)
			data = AppendInteger(data, int64(i))
		case 3:
			data = AppendError(data, "ERR x")
		case 4:
			data = AppendNullArray(data)
		}
		want = append(want, len(data)-before)
	}
	var s ReplyScanner
	buf := data
	for i, w := range want {
		n, err := s.Scan(buf)
		if err != nil || n != w {
			t.Fatalf("reply %d: n=%d err=%v, want %d", i, n, err, w)
		}
		buf = buf[n:]
	}
	var cuts []int
	for k := 5; k < len(data); k += 5 {
		cuts = append(cuts, k)
	}
	if one, split := feedReplies(t, data, nil, false), feedReplies(t, data, cuts, true); !split.equal(one) {
		t.Fatal("5-byte pieces differ from one buffer")
	}
}

// TestScanNeed: after ErrIncomplete, the bytes passed plus Need is where
// the scanner can next make progress: the end of the bulk being read, or
// one more byte.
func TestScanNeed(t *testing.T) {
	cases := []struct {
		in    string
		total int // len(in) + Need()
	}{
		{"", 1},
		{"+OK", 4},
		{"+OK\r", 5},
		{"$10\r\n", 17},
		{"$10\r\nab", 17},
		{"$10\r\n0123456789\r", 17},
		{"$0\r\n", 6},
		{"*2\r\n$3\r\nab", 13},
		{"*2\r\n$3\r\nabc\r\n", 14},
		{"*2\r\n$3\r\nabc\r\n$1000000000\r\n", 1000000028},
	}
	for _, tc := range cases {
		var s ReplyScanner
		if _, err := s.Scan([]byte(tc.in)); !errors.Is(err, ErrIncomplete) {
			t.Errorf("Scan(%q): %v, want ErrIncomplete", tc.in, err)
			continue
		}
		if got := len(tc.in) + s.Need(); got != tc.total {
			t.Errorf("Scan(%q): len+Need = %d, want %d", tc.in, got, tc.total)
		}
	}
	// Resuming on a longer buffer updates it.
	var s ReplyScanner
	_, _ = s.Scan([]byte("$10\r\nab"))
	if _, err := s.Scan([]byte("$10\r\nabcdef")); !errors.Is(err, ErrIncomplete) || s.Need() != 6 {
		t.Errorf("resumed: Need() = %d, want 6", s.Need())
	}
}

// scanInSteps scans data arriving step bytes at a time as one reply.
func scanInSteps(t *testing.T, data []byte, step int) {
	t.Helper()
	var s ReplyScanner
	for end := step; ; end += step {
		end = min(end, len(data))
		n, err := s.Scan(data[:end])
		if errors.Is(err, ErrIncomplete) {
			if end == len(data) {
				t.Fatal("incomplete at the end")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if n != len(data) {
			t.Fatalf("n = %d, want %d", n, len(data))
		}
		return
	}
}

func checkScanLinear(t *testing.T, data []byte, step int, limit time.Duration) {
	t.Helper()
	checkLinear(t,
		func() { scanInSteps(t, data, len(data)) },
		func() { scanInSteps(t, data, step) },
		limit)
}

func TestScanMillionElements(t *testing.T) {
	data := AppendArrayHeader(nil, 1_000_000)
	for i := range 1_000_000 {
		if i%2 == 0 {
			data = AppendInteger(data, int64(i))
		} else {
			data = AppendBulkString(data, "val")
		}
	}
	checkScanLinear(t, data, 4096, time.Second)
}

func TestScanLargeBulk(t *testing.T) {
	data := AppendBulk(nil, bytes.Repeat([]byte("\r\n$*"), 16<<20))
	checkScanLinear(t, data, 16<<10, 200*time.Millisecond)
}

// TestScanLongLine: a long simple string arriving in small pieces is
// searched for its end once.
func TestScanLongLine(t *testing.T) {
	data := append(append([]byte("-"), bytes.Repeat([]byte("e"), 4<<20)...), "\r\n"...)
	checkScanLinear(t, data, 64, 500*time.Millisecond)
}

// TestScanDeepNesting: nesting costs no stack, in the scanner or in Go.
func TestScanDeepNesting(t *testing.T) {
	for _, depth := range []int{10_000, 1_000_000} {
		var data []byte
		for range depth {
			data = append(data, "*2\r\n"...)
		}
		data = append(data, ":1\r\n"...)
		for range depth {
			data = append(data, "$-1\r\n"...)
		}
		checkScanLinear(t, data, 4096, time.Second)
		var s ReplyScanner
		if _, err := s.Scan(data[:len(data)-1]); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("depth %d truncated: %v", depth, err)
		}
	}
}

func TestReplyType(t *testing.T) {
	for in, want := range map[string]byte{"": 0, "+OK\r\n": '+', "-ERR\r\n": '-', ":1\r\n": ':', "$-1\r\n": '$', "*0\r\n": '*'} {
		if got := ReplyType([]byte(in)); got != want {
			t.Errorf("ReplyType(%q) = %q, want %q", in, got, want)
		}
		if got := IsError([]byte(in)); got != (want == '-') {
			t.Errorf("IsError(%q) = %v", in, got)
		}
	}
}

func TestParseInteger(t *testing.T) {
	cases := []struct {
		in   string
		want int64
		ok   bool
	}{
		{":0\r\n", 0, true},
		{":1\r\n", 1, true},
		{":-42\r\n", -42, true},
		{":9223372036854775807\r\n", math.MaxInt64, true},
		{":-9223372036854775808\r\n", math.MinInt64, true},
		{":9223372036854775808\r\n", 0, false},
		{":-9223372036854775809\r\n", 0, false},
		{":\r\n", 0, false},
		{":1", 0, false},
		{":1\r\n:2\r\n", 0, false},
		{":01\r\n", 0, false},
		{":+1\r\n", 0, false},
		{"$1\r\n1\r\n", 0, false},
		{"", 0, false},
	}
	for _, tc := range cases {
		got, ok := ParseInteger([]byte(tc.in))
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseInteger(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseBulk(t *testing.T) {
	cases := []struct {
		in       string
		val      string
		null, ok bool
	}{
		{"$3\r\nfoo\r\n", "foo", false, true},
		{"$0\r\n\r\n", "", false, true},
		{"$4\r\n\r\n\r\n\r\n", "\r\n\r\n", false, true},
		{"$-1\r\n", "", true, true},
		{"$-1\r\nx", "", false, false},
		{"$3\r\nfo\r\n", "", false, false},
		{"$3\r\nfooo\r\n", "", false, false},
		{"$3\r\nfooXY", "", false, false},
		{"$-2\r\n", "", false, false},
		{"+OK\r\n", "", false, false},
		{"$3\rXfoo\r\n", "", false, false},
		{"", "", false, false},
	}
	for _, tc := range cases {
		val, null, ok := ParseBulk([]byte(tc.in))
		if string(val) != tc.val || null != tc.null || ok != tc.ok {
			t.Errorf("ParseBulk(%q) = %q, %v, %v; want %q, %v, %v", tc.in, val, null, ok, tc.val, tc.null, tc.ok)
		}
	}
}

func TestArrayElements(t *testing.T) {
	cases := []struct {
		in   string
		want []string
		err  string
	}{
		{"*3\r\n$1\r\na\r\n$-1\r\n*2\r\n:1\r\n+x\r\n", []string{"$1\r\na\r\n", "$-1\r\n", "*2\r\n:1\r\n+x\r\n"}, ""},
		{"*0\r\n", nil, ""},
		{"*-1\r\n", nil, ""},
		{"*1\r\n$2\r\n\r\n\r\n+trailing\r\n", []string{"$2\r\n\r\n\r\n"}, ""},
		{"*2\r\n$1\r\na\r\n", nil, ErrIncomplete.Error()},
		{"*2", nil, ErrIncomplete.Error()},
		{"", nil, ErrIncomplete.Error()},
		{"$1\r\na\r\n", nil, ErrNotArray.Error()},
		{"*x\r\n", nil, "Protocol error: invalid multibulk length in reply"},
		{"*1\n", nil, "Protocol error: expected CRLF at end of line in reply"},
		{"*1\r\n!\r\n", nil, "Protocol error: unknown reply type '!'"},
	}
	dst := make([][]byte, 0, 8)
	for _, tc := range cases {
		got, err := ArrayElements([]byte(tc.in), dst)
		if errStr(err) != tc.err {
			t.Errorf("ArrayElements(%q) err = %v, want %q", tc.in, err, tc.err)
			continue
		}
		if err == nil && quoteArgs(got) != quoteArgs(toBytes(tc.want)) {
			t.Errorf("ArrayElements(%q) = %s, want %s", tc.in, quoteArgs(got), quoteArgs(toBytes(tc.want)))
		}
	}
}

func errStr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestArrayElementsMerge is the MGET merge the proxy does: elements from
// two fragments put back in key order.
func TestArrayElementsMerge(t *testing.T) {
	a := []byte("*2\r\n$2\r\nv1\r\n$-1\r\n")      // keys 1, 3
	b := []byte("*2\r\n$2\r\nv2\r\n$2\r\nv4\r\n") // keys 2, 4
	ea, err := ArrayElements(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := ArrayElements(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := AppendArrayHeader(nil, 4)
	for i := range 2 {
		out = append(out, ea[i]...)
		out = append(out, eb[i]...)
	}
	want := AppendArrayHeader(nil, 4)
	want = AppendBulkString(want, "v1")
	want = AppendBulkString(want, "v2")
	want = AppendNullBulk(want)
	want = AppendBulkString(want, "v4")
	if !bytes.Equal(out, want) {
		t.Fatalf("merged %q, want %q", out, want)
	}
	sum := int64(0)
	for _, r := range []string{":1\r\n", ":2\r\n"} {
		v, _ := ParseInteger([]byte(r))
		sum += v
	}
	if got := string(AppendInteger(nil, sum)); got != ":3\r\n" {
		t.Fatalf("sum %q", got)
	}
}
