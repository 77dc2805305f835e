package resp

import (
	"bytes"
	"math"
	"testing"
)

func TestAppend(t *testing.T) {
	cases := []struct {
		got, want string
	}{
		{string(AppendArrayHeader(nil, 3)), "*3\r\n"},
		{string(AppendArrayHeader(nil, 0)), "*0\r\n"},
		{string(AppendNullArray(nil)), "*-1\r\n"},
		{string(AppendBulk(nil, []byte("foo"))), "$3\r\nfoo\r\n"},
		{string(AppendBulk(nil, nil)), "$0\r\n\r\n"},
		{string(AppendBulk(nil, []byte("a\r\nb"))), "$4\r\na\r\nb\r\n"},
		{string(AppendBulkString(nil, "héllo")), "$6\r\nhéllo\r\n"},
		{string(AppendNullBulk(nil)), "$-1\r\n"},
		{string(AppendInteger(nil, 0)), ":0\r\n"},
		{string(AppendInteger(nil, -7)), ":-7\r\n"},
		{string(AppendInteger(nil, math.MinInt64)), ":-9223372036854775808\r\n"},
		{string(AppendError(nil, "ERR unknown command")), "-ERR unknown command\r\n"},
		{string(AppendError(nil, "ERR bad\r\nkey\n")), "-ERR bad  key \r\n"},
		{string(AppendSimple(nil, "OK")), "+OK\r\n"},
		{string(AppendSimple(nil, "a\rb")), "+a b\r\n"},
		{string(AppendCommand(nil, []byte("MGET"), []byte("k1"), []byte("k3"))), "*3\r\n$4\r\nMGET\r\n$2\r\nk1\r\n$2\r\nk3\r\n"},
		{string(AppendCommand(nil)), "*0\r\n"},
		{string(AppendCommand([]byte("+OK\r\n"), []byte("PING"))), "+OK\r\n*1\r\n$4\r\nPING\r\n"},
	}
	for i, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("case %d: got %q, want %q", i, tc.got, tc.want)
		}
	}
}

// TestAppendScanRoundTrip: every encoder's output is exactly one reply to
// the scanner, and the value helpers read back what was encoded.
func TestAppendScanRoundTrip(t *testing.T) {
	var s ReplyScanner
	for _, enc := range [][]byte{
		AppendSimple(nil, "OK"),
		AppendError(nil, "ERR x\ny"),
		AppendInteger(nil, math.MaxInt64),
		AppendBulk(nil, []byte("\r\n\r\n")),
		AppendNullBulk(nil),
		AppendNullArray(nil),
		AppendCommand(nil, []byte("SET"), []byte("k"), []byte("v")),
	} {
		if n, err := s.Scan(enc); err != nil || n != len(enc) {
			t.Errorf("Scan(%q) = %d, %v", enc, n, err)
		}
	}
	for _, v := range []int64{0, 1, -1, math.MaxInt64, math.MinInt64} {
		if got, ok := ParseInteger(AppendInteger(nil, v)); !ok || got != v {
			t.Errorf("ParseInteger(AppendInteger(%d)) = %d, %v", v, got, ok)
		}
	}
	val := []byte("\x00\r\n$3\r\n")
	if got, null, ok := ParseBulk(AppendBulk(nil, val)); !ok || null || !bytes.Equal(got, val) {
		t.Errorf("ParseBulk(AppendBulk) = %q, %v, %v", got, null, ok)
	}
}

// TestAppendCommandParseRoundTrip: what AppendCommand builds, ParseRequest
// reads back, whatever bytes the arguments hold.
func TestAppendCommandParseRoundTrip(t *testing.T) {
	argSets := [][][]byte{
		{[]byte("GET"), []byte("k")},
		{[]byte("SET"), []byte("k"), bytes.Repeat([]byte{0, '\r', '\n', '*', '$'}, 1000)},
		{[]byte("ECHO"), {}},
		{[]byte(`"quoted" 'x'`), []byte("\\x41")},
	}
	var req Request
	for _, args := range argSets {
		enc := AppendCommand(nil, args...)
		n, err := ParseRequest(enc, &req)
		if err != nil || n != len(enc) || req.Inline {
			t.Fatalf("ParseRequest(%q) = %d, %v", enc, n, err)
		}
		if quoteArgs(req.Args) != quoteArgs(args) {
			t.Fatalf("round trip %s, want %s", quoteArgs(req.Args), quoteArgs(args))
		}
	}
}
