package resp

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

const incomplete = "incomplete"

type requestCase struct {
	name   string
	in     string
	args   []string // for a complete request
	inline bool
	n      int    // bytes consumed; with err == incomplete, blank bytes skipped
	err    string // "", incomplete, or the error text
}

func requestCases() []requestCase {
	big := func(c byte, n int) string { return strings.Repeat(string(c), n) }
	return []requestCase{
		// Multibulk.
		{name: "ping", in: "*1\r\n$4\r\nPING\r\n", args: []string{"PING"}, n: 14},
		{name: "set", in: "*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\nb\r\n", args: []string{"SET", "a", "b"}, n: 27},
		{name: "empty bulk", in: "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", args: []string{"GET", ""}, n: 19},
		{name: "binary bulk with CRLF inside", in: "*2\r\n$4\r\nECHO\r\n$6\r\n\r\n\x00\xff\r\n\r\n", args: []string{"ECHO", "\r\n\x00\xff\r\n"}, n: 26},
		{name: "followed by next request", in: "*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI", args: []string{"PING"}, n: 14},
		{name: "mbulk zero is skipped", in: "*0\r\n*1\r\n$4\r\nPING\r\n", args: []string{"PING"}, n: 18},
		{name: "mbulk minus one is skipped", in: "*-1\r\n*-7\r\n*1\r\n$4\r\nPING\r\n", args: []string{"PING"}, n: 24},
		{name: "only skipped", in: "*0\r\n\r\n*-1\r\n", n: 11, err: incomplete},
		// Redis checks neither the byte after a header's '\r' nor the two
		// bytes after a bulk.
		{name: "lenient header LF", in: "*1\rX$4\r\nPING\r\n", args: []string{"PING"}, n: 14},
		{name: "lenient bulk CRLF", in: "*1\r\n$4\r\nPINGXY", args: []string{"PING"}, n: 14},
		{name: "max count waits", in: "*1048576\r\n", err: incomplete},
		{name: "max bulk waits", in: "*1\r\n$536870912\r\n", err: incomplete},
		{name: "header waits for byte after CR", in: "*1\r", err: incomplete},
		{name: "bulk header waits for CR before checking $", in: "*1\r\nX", err: incomplete},

		// Multibulk errors, with Redis 7's texts.
		{name: "count not a number", in: "*x\r\n", err: "Protocol error: invalid multibulk length"},
		{name: "count empty", in: "*\r\n", err: "Protocol error: invalid multibulk length"},
		{name: "count leading zero", in: "*01\r\n", err: "Protocol error: invalid multibulk length"},
		{name: "count plus sign", in: "*+1\r\n", err: "Protocol error: invalid multibulk length"},
		{name: "count minus zero", in: "*-0\r\n", err: "Protocol error: invalid multibulk length"},
		{name: "count trailing space", in: "*1 \r\n", err: "Protocol error: invalid multibulk length"},
		{name: "count overflow", in: "*99999999999999999999\r\n", err: "Protocol error: invalid multibulk length"},
		{name: "count too large", in: "*1048577\r\n", err: "Protocol error: invalid multibulk length"},
		{name: "bulk len negative", in: "*1\r\n$-1\r\n", err: "Protocol error: invalid bulk length"},
		{name: "bulk len not a number", in: "*1\r\n$x\r\n", err: "Protocol error: invalid bulk length"},
		{name: "bulk len empty", in: "*1\r\n$\r\n", err: "Protocol error: invalid bulk length"},
		{name: "bulk len too large", in: "*1\r\n$536870913\r\n", err: "Protocol error: invalid bulk length"},
		{name: "expected dollar", in: "*1\r\nfoo\r\n", err: "Protocol error: expected '$', got 'f'"},
		{name: "expected dollar got integer", in: "*2\r\n$1\r\na\r\n:1\r\n", err: "Protocol error: expected '$', got ':'"},
		{name: "expected dollar got CR", in: "*1\r\n\r\n", err: "Protocol error: expected '$', got ' '"},
		{name: "expected dollar raw byte", in: "*1\r\n\xff\r\n", err: "Protocol error: expected '$', got '\xff'"},
		{name: "mbulk count line too long", in: "*" + big('1', MaxInlineLen), err: "Protocol error: too big mbulk count string"},
		{name: "mbulk count line at limit waits", in: "*" + big('1', MaxInlineLen-1), err: incomplete},
		{name: "mbulk count line at limit ends", in: "*" + big('1', MaxInlineLen-1) + "\r\n", err: "Protocol error: invalid multibulk length"},
		{name: "bulk count line too long", in: "*1\r\n$" + big('1', MaxInlineLen), err: "Protocol error: too big bulk count string"},
		{name: "bulk count line at limit waits", in: "*1\r\n$" + big('1', MaxInlineLen-1), err: incomplete},

		// Inline.
		{name: "inline ping", in: "PING\r\n", args: []string{"PING"}, inline: true, n: 6},
		{name: "inline LF only", in: "PING\n", args: []string{"PING"}, inline: true, n: 5},
		{name: "inline args", in: "set a b\r\n", args: []string{"set", "a", "b"}, inline: true, n: 9},
		{name: "inline blanks", in: " \t set   a\tb \t\r\n", args: []string{"set", "a", "b"}, inline: true, n: 16},
		{name: "inline CR splits", in: "a\rb\r\r\n", args: []string{"a", "b"}, inline: true, n: 6},
		{name: "inline VT FF lead but do not split", in: "ECHO \v\fa\vb\n", args: []string{"ECHO", "a\vb"}, inline: true, n: 11},
		{name: "inline double quotes", in: `set "a b" c` + "\r\n", args: []string{"set", "a b", "c"}, inline: true, n: 13},
		{name: "inline single quotes", in: `set 'a b' c` + "\r\n", args: []string{"set", "a b", "c"}, inline: true, n: 13},
		{name: "inline escapes", in: `ECHO "\x41\x6a\n\r\t\b\a\q\"\\"` + "\n", args: []string{"ECHO", "Aj\n\r\t\b\aq\"\\"}, inline: true, n: 32},
		{name: "inline bad hex is literal", in: `ECHO "\x4g"` + "\n", args: []string{"ECHO", "x4g"}, inline: true, n: 12},
		{name: "inline short hex", in: `ECHO "\x4"` + "\n", args: []string{"ECHO", "x4"}, inline: true, n: 11},
		{name: "inline single quote escape", in: `ECHO 'it\'s \n'` + "\n", args: []string{"ECHO", `it's \n`}, inline: true, n: 16},
		{name: "inline quote mid word", in: `ECHO a"b c"` + "\n", args: []string{"ECHO", "ab c"}, inline: true, n: 12},
		{name: "inline empty quoted", in: `ECHO "" ''` + "\n", args: []string{"ECHO", "", ""}, inline: true, n: 11},
		{name: "inline quote then VT", in: "ECHO \"a\"\v\n", args: []string{"ECHO", "a"}, inline: true, n: 10},
		{name: "inline NUL is a byte", in: "ECHO a\x00b\n", args: []string{"ECHO", "a\x00b"}, inline: true, n: 9},
		{name: "inline dollar", in: "$3\r\n", args: []string{"$3"}, inline: true, n: 4},
		{name: "blank lines skipped", in: "\r\n\n  \t\r\nPING\r\n", args: []string{"PING"}, inline: true, n: 14},
		{name: "blank line alone", in: "\n", n: 1, err: incomplete},
		{name: "blank then partial", in: "\r\n\r\nPIN", n: 4, err: incomplete},
		{name: "inline at limit", in: big('a', MaxInlineLen) + "\n", args: []string{big('a', MaxInlineLen)}, inline: true, n: MaxInlineLen + 1},
		{name: "inline at limit waits", in: big('a', MaxInlineLen), err: incomplete},

		// Inline errors.
		{name: "unbalanced double", in: `ECHO "ab` + "\n", err: "Protocol error: unbalanced quotes in request"},
		{name: "unbalanced single", in: `ECHO 'ab` + "\n", err: "Protocol error: unbalanced quotes in request"},
		{name: "closing double not followed by blank", in: `ECHO "a"b` + "\n", err: "Protocol error: unbalanced quotes in request"},
		{name: "closing single not followed by blank", in: `ECHO 'a'"b"` + "\n", err: "Protocol error: unbalanced quotes in request"},
		{name: "escaped closing quote", in: `ECHO "a\"` + "\r\n", err: "Protocol error: unbalanced quotes in request"},
		{name: "backslash at end", in: `ECHO "a\` + "\n", err: "Protocol error: unbalanced quotes in request"},
		{name: "inline too long", in: big('a', MaxInlineLen+1), err: "Protocol error: too big inline request"},
		{name: "inline too long with LF", in: big('a', MaxInlineLen+1) + "\n", err: "Protocol error: too big inline request"},
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range requestCases() {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			n, err := ParseRequest([]byte(tc.in), &req)
			checkRequest(t, tc, n, err, &req)
		})
	}
}

func checkRequest(t *testing.T, tc requestCase, n int, err error, req *Request) {
	t.Helper()
	switch tc.err {
	case "":
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		if got, want := quoteArgs(req.Args), quoteArgs(toBytes(tc.args)); got != want {
			t.Errorf("args = %s, want %s", got, want)
		}
		if req.Inline != tc.inline {
			t.Errorf("Inline = %v, want %v", req.Inline, tc.inline)
		}
		if n != tc.n {
			t.Errorf("n = %d, want %d", n, tc.n)
		}
	case incomplete:
		if !errors.Is(err, ErrIncomplete) {
			t.Fatalf("err = %v, want ErrIncomplete", err)
		}
		if n != tc.n {
			t.Errorf("n = %d, want %d", n, tc.n)
		}
	default:
		var pe *ProtocolError
		if !errors.As(err, &pe) || err.Error() != tc.err {
			t.Fatalf("err = %v, want %q", err, tc.err)
		}
		if n != 0 {
			t.Errorf("n = %d on error, want 0", n)
		}
	}
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

// TestParseRequestPrefixes feeds each case's every prefix to a fresh
// Request: before the request is complete the answer is ErrIncomplete (or,
// for an error case, possibly the error already), and from then on it is
// the same as for the whole input.
func TestParseRequestPrefixes(t *testing.T) {
	for _, tc := range requestCases() {
		t.Run(tc.name, func(t *testing.T) {
			full := tc.n
			if tc.err != "" {
				full = len(tc.in) + 1 // never complete
			}
			sawErr := false
			for _, k := range splitPoints(len(tc.in)) {
				var req Request
				n, err := ParseRequest([]byte(tc.in[:k]), &req)
				switch {
				case k >= full:
					checkRequest(t, tc, n, err, &req)
				case err != nil && !errors.Is(err, ErrIncomplete) && err.Error() == tc.err:
					sawErr = true // an error shows as soon as it is certain
				case sawErr:
					t.Fatalf("prefix %d: err = %v after the error was reported on a shorter prefix", k, err)
				case !errors.Is(err, ErrIncomplete):
					t.Fatalf("prefix %d of %d: err = %v, want ErrIncomplete", k, len(tc.in), err)
				}
			}
		})
	}
}

// TestParseRequestSplit feeds each case a byte at a time to one Request,
// resuming after each ErrIncomplete, and expects what one call on the whole
// input gives. The small cases also move the buffer between calls.
func TestParseRequestSplit(t *testing.T) {
	for _, tc := range requestCases() {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.in)
			want := feedRequests(t, data, nil, false)
			if got := feedRequests(t, data, everyByte(len(data)), false); !got.equal(want) {
				t.Fatalf("byte by byte:\n%v\nwant:\n%v", got, want)
			}
			if len(data) <= 4096 {
				for _, k := range splitPoints(len(data)) {
					if got := feedRequests(t, data, []int{k}, true); !got.equal(want) {
						t.Fatalf("split at %d:\n%v\nwant:\n%v", k, got, want)
					}
				}
				if got := feedRequests(t, data, everyByte(len(data)), true); !got.equal(want) {
					t.Fatalf("byte by byte, moving:\n%v\nwant:\n%v", got, want)
				}
			}
		})
	}
}

func TestParseRequestMany(t *testing.T) {
	var data []byte
	var want []string
	for i := range 1000 {
		k := "key:" + strconv.Itoa(i)
		switch i % 4 {
		case 0:
			data = AppendCommand(data, []byte("GET"), []byte(k))
			want = append(want, quoteArgs(toBytes([]string{"GET", k})))
		case 1:
			data = append(data, "set "+k+" \"v\\x00\"\r\n"...)
			want = append(want, quoteArgs(toBytes([]string{"set", k, "v\x00"})))
		case 2:
			data = append(data, "\r\n*0\r\n"...) // skipped
			data = AppendCommand(data, []byte("MSET"), []byte(k), []byte("a\r\nb"), []byte("k2"), nil)
			want = append(want, quoteArgs(toBytes([]string{"MSET", k, "a\r\nb", "k2", ""})))
		case 3:
			data = append(data, "PING\n"...)
			want = append(want, quoteArgs(toBytes([]string{"PING"})))
		}
	}
	var req Request
	buf := data
	for i, w := range want {
		n, err := ParseRequest(buf, &req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := quoteArgs(req.Args); got != w {
			t.Fatalf("request %d: args %s, want %s", i, got, w)
		}
		buf = buf[n:]
	}
	if n, err := ParseRequest(buf, &req); len(buf) != 0 || n != 0 || !errors.Is(err, ErrIncomplete) {
		t.Fatalf("after all: n=%d err=%v left=%d", n, err, len(buf))
	}
	// And the same stream in 7-byte pieces.
	var cuts []int
	for k := 7; k < len(data); k += 7 {
		cuts = append(cuts, k)
	}
	one, split := feedRequests(t, data, nil, false), feedRequests(t, data, cuts, true)
	if !split.equal(one) || len(one.results) != len(want) {
		t.Fatalf("7-byte pieces differ or miss requests: %d vs %d results", len(split.results), len(one.results))
	}
}

func TestRequestNeed(t *testing.T) {
	var req Request
	in := []byte("*2\r\n$3\r\nSET\r\n$10\r\n0123")
	if _, err := ParseRequest(in, &req); !errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
	if got := req.Need(); got != 8 { // 6 more value bytes and CRLF
		t.Fatalf("Need() = %d, want 8", got)
	}
	in = append(in, "456789\r\n"...)
	if _, err := ParseRequest(in, &req); err != nil {
		t.Fatal(err)
	}
	if got := req.Need(); got != 0 {
		t.Fatalf("Need() = %d after a complete request, want 0", got)
	}
	if _, err := ParseRequest([]byte("*1\r\n$536870912\r\n"), &req); !errors.Is(err, ErrIncomplete) || req.Need() != MaxBulkLen+2 {
		t.Fatalf("err %v Need %d, want ErrIncomplete and %d", err, req.Need(), MaxBulkLen+2)
	}
	req.Reset()
	if req.Need() != 0 {
		t.Fatal("Need() after Reset")
	}
	// Reset forgets the partial request: the next buffer is a new one.
	if _, err := ParseRequest([]byte("PING\r\n"), &req); err != nil || string(req.Args[0]) != "PING" {
		t.Fatalf("after Reset: %v %q", err, req.Args)
	}
}

// TestRequestArgsClipped checks an appended-to argument cannot overwrite
// the next one in the client's buffer.
func TestRequestArgsClipped(t *testing.T) {
	for _, in := range []string{"*2\r\n$1\r\na\r\n$1\r\nb\r\n", "a b\r\n"} {
		var req Request
		if _, err := ParseRequest([]byte(in), &req); err != nil {
			t.Fatal(err)
		}
		for i, a := range req.Args {
			if cap(a) != len(a) {
				t.Errorf("%q: arg %d has cap %d > len %d", in, i, cap(a), len(a))
			}
		}
	}
}

// parseInPieces parses data arriving step bytes at a time, as a session
// whose reads return step bytes would, and checks it ends as one request.
func parseInPieces(t *testing.T, data []byte, step int, check func(*Request)) {
	t.Helper()
	var req Request
	for end := step; ; end += step {
		end = min(end, len(data))
		n, err := ParseRequest(data[:end], &req)
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
		check(&req)
		return
	}
}

// TestParseRequestLargeBulk: a 64 MiB value arriving in 16 KiB reads costs
// O(1) per read (the parser jumps from the bulk header to the end it needs),
// not a rescan from the start each time.
func TestParseRequestLargeBulk(t *testing.T) {
	val := bytes.Repeat([]byte("x\r\n$"), 16<<20) // 64 MiB, full of lookalikes
	data := AppendCommand(nil, []byte("SET"), []byte("k"), val)
	check := func(req *Request) {
		if len(req.Args) != 3 || !bytes.Equal(req.Args[2], val) {
			t.Fatalf("%d args", len(req.Args))
		}
	}
	checkLinear(t,
		func() { parseInPieces(t, data, len(data), check) },
		func() { parseInPieces(t, data, 16<<10, check) },
		200*time.Millisecond)
}

// TestParseRequestManyArgs: a million arguments in 4 KiB reads. Without the
// resumable state every read would re-parse all arguments so far
// (quadratic: about 10^9 argument headers); with it the total is linear.
func TestParseRequestManyArgs(t *testing.T) {
	const nargs = 1_000_000
	data := AppendArrayHeader(nil, nargs)
	for i := range nargs {
		data = AppendBulkString(data, strconv.Itoa(i%10))
	}
	check := func(req *Request) {
		if len(req.Args) != nargs || string(req.Args[nargs-1]) != "9" {
			t.Fatalf("%d args", len(req.Args))
		}
	}
	checkLinear(t,
		func() { parseInPieces(t, data, len(data), check) },
		func() { parseInPieces(t, data, 4096, check) },
		time.Second)
}

// TestParseRequestLongInlineTrickle: an inline line arriving a byte at a
// time is searched once, not once per byte.
func TestParseRequestLongInlineTrickle(t *testing.T) {
	data := append(bytes.Repeat([]byte("a "), MaxInlineLen/2-1), "b\n"...)
	check := func(req *Request) {
		if len(req.Args) != MaxInlineLen/2 {
			t.Fatalf("%d args", len(req.Args))
		}
	}
	checkLinear(t,
		func() { parseInPieces(t, data, len(data), check) },
		func() { parseInPieces(t, data, 1, check) },
		200*time.Millisecond)
}

func TestProtocolErrorText(t *testing.T) {
	// The proxy answers "-ERR " + err.Error(), as Redis does.
	var req Request
	_, err := ParseRequest([]byte("*1\r\nx\r\n"), &req)
	got := string(AppendError(nil, "ERR "+err.Error()))
	if want := "-ERR Protocol error: expected '$', got 'x'\r\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// checkShortBulkHeader asserts the fast path for bulk headers agrees with
// the general one wherever it answers.
func checkShortBulkHeader(t testing.TB, buf []byte) {
	l, next, ok := shortBulkHeader(buf, 0)
	if !ok {
		return
	}
	req := Request{bulk: -1}
	i, err := req.line(buf, 0, errTooBigBulkCount)
	if err != nil {
		t.Fatalf("%q: fast path took a header the general path refuses: %v", buf, err)
	}
	want, valid := parseInt(buf[1:i])
	if !valid || want < 0 || want > MaxBulkLen || int(want) != l || i+2 != next {
		t.Fatalf("%q: fast path %d,%d; general %d,%d,%v", buf, l, next, want, i+2, valid)
	}
}

func TestShortBulkHeader(t *testing.T) {
	for _, in := range []string{
		"$0\r\n", "$1\r\n", "$00\r\n", "$01\r\n", "$10\r\n", "$123456789\r\n", "$1234567890\r\n",
		"$536870912\r\n", "$536870913\r\n", "$999999999\r\n", "$-1\r\n", "$\r\n", "$1\r", "$1", "$1x\r\n",
		"$1 \r\n", "$+1\r\n", "*1\r\n", "$12\rX",
	} {
		checkShortBulkHeader(t, []byte(in))
	}
}

// TestRequestDropsOldArgs: a small request after a big one leaves no
// reference to the big one's buffer in Args' spare capacity.
func TestRequestDropsOldArgs(t *testing.T) {
	var req Request
	big := AppendCommand(nil, []byte("SET"), []byte("k"), bytes.Repeat([]byte("v"), 1<<20))
	if _, err := ParseRequest(big, &req); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRequest([]byte("PING\r\n"), &req); err != nil {
		t.Fatal(err)
	}
	for i, a := range req.Args[:cap(req.Args)][len(req.Args):] {
		if a != nil {
			t.Fatalf("spare Args[%d] still refers to %d bytes", len(req.Args)+i, len(a))
		}
	}
}

// TestRequestForget: Forget leaves no reference to the buffer of the last
// request, and a partial request goes on from where it was, in a new buffer.
func TestRequestForget(t *testing.T) {
	tests := []struct {
		name  string
		first string // parsed, then Forget
		rest  string // appended to what first left unconsumed
		want  string // the arguments of the request completed by rest, or "" for none
	}{
		{"complete multibulk", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "", ""},
		{"complete inline", "GET k\r\n", "", ""},
		{"inside a bulk", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nva", "lue\r\n", `"SET" "k" "value"`},
		{"inside a header", "*3\r\n$3\r\nSET\r\n$", "1\r\nk\r\n$1\r\nv\r\n", `"SET" "k" "v"`},
		{"after the count", "*2\r\n", "$4\r\nPING\r\n$2\r\nhi\r\n", `"PING" "hi"`},
		{"inline line", "PIN", "G\r\n", `"PING"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req Request
			buf := []byte(tc.first)
			n, err := ParseRequest(buf, &req)
			if err != nil && !errors.Is(err, ErrIncomplete) {
				t.Fatal(err)
			}
			req.Forget()
			for i, a := range req.Args[:cap(req.Args)] {
				if a != nil {
					t.Fatalf("Args[%d] still refers to %q", i, a)
				}
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("%q: %v, want a complete request", tc.first, err)
				}
				return
			}
			moved := append([]byte(nil), buf[n:]...)
			clear(buf) // the old buffer is gone
			moved = append(moved, tc.rest...)
			m, err := ParseRequest(moved, &req)
			if err != nil || m != len(moved) || quoteArgs(req.Args) != tc.want {
				t.Fatalf("after Forget: m=%d err=%v args %s, want %d bytes and %s", m, err, quoteArgs(req.Args), len(moved), tc.want)
			}
		})
	}
}
