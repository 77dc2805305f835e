package memcache

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Replies memcached uses in the cases.
const (
	bad      = replyBadFormat
	badChunk = replyBadDataChunk
)

// e describes an expected error: memcached's reply, the bytes it skips, and
// "noreply" or "close".
func e(reply string, skip int, opts ...string) string {
	s := fmt.Sprintf("ERR %q skip=%d", reply, skip)
	for _, o := range opts {
		s += " " + o
	}
	return s
}

// n is the length of a string, to write skips as the text they cover.
func n(s string) int { return len(s) }

type requestCase struct {
	name string
	in   string
	want []string // describe() of each request, or e() of each error
	left int      // bytes of an incomplete request left at the end
	// swallow: bytes of a Skip that had not arrived yet.
	swallow int
	// noLive: memcached's answer depends on how its reads split the input
	// (see TestLiveLongLines), or would change the server for later cases.
	noLive bool
	// serverError: a request the proxy accepts but this server refuses
	// for its own reasons (stats group unknown, shutdown disabled, ...).
	serverError bool
}

func requestCases() []requestCase {
	k250 := strings.Repeat("k", 250)
	k251 := strings.Repeat("k", 251)
	o31 := "O" + strings.Repeat("a", 31)
	o32 := "O" + strings.Repeat("a", 32)
	many := strings.Repeat(" x", 18) // 18 more words: 20 with "mg k"
	keys30, keys30q := "", ""
	for i := range 30 {
		keys30 += fmt.Sprintf(" k%d", i)
		keys30q += fmt.Sprintf(" \"k%d\"", i)
	}
	longGet := "gets" + strings.Repeat(" a", 1500)
	longSet := "set k 0 0 1 " + strings.Repeat("x", MaxLineLen-12)
	return []requestCase{
		// Retrieval.
		{name: "get", in: "get a\r\n", want: []string{`get keys=["a"]`}},
		{name: "get three", in: "get a b c\r\n", want: []string{`get keys=["a" "b" "c"]`}},
		{name: "gets", in: "gets a\r\n", want: []string{`gets keys=["a"]`}},
		{name: "spaces", in: "  get  a  b \r\n", want: []string{`get keys=["a" "b"]`}},
		{name: "LF only", in: "get a\n", want: []string{`get keys=["a"]`}},
		{name: "only one CR dropped", in: "get a\r\r\n", want: []string{`get keys=["a\r"]`}},
		{name: "tab is part of a key", in: "get a\tb\r\n", want: []string{`get keys=["a\tb"]`}},
		{name: "control bytes in keys", in: "get a\x01b c\x7f\r\n", want: []string{`get keys=["a\x01b" "c\x7f"]`}},
		{name: "NUL ends the line", in: "get a\x00 b\r\n", want: []string{`get keys=["a"]`}},
		{name: "bget", in: "bget a\r\n", want: []string{`get name="bget" keys=["a"]`}},
		{name: "key of 250", in: "get " + k250 + "\r\n", want: []string{`get keys=["` + k250 + `"]`}},
		{name: "30 keys", in: "get" + keys30 + "\r\n", want: []string{`get keys=[` + keys30q[1:] + `]`}},
		{name: "get key too long", in: "get a " + k251 + " b\r\n", want: []string{e(bad, n("get a "+k251+" b\r\n"))}},
		{name: "get no key", in: "get\r\n", want: []string{e("ERROR", 5)}},
		{name: "get only NUL", in: "get \x00\r\n", want: []string{e("ERROR", 7)}},
		{name: "gat", in: "gat 10 a b\r\n", want: []string{`gat keys=["a" "b"] exptime="10"`}},
		{name: "gats", in: "gats -0 a\r\n", want: []string{`gats keys=["a"] exptime="-0"`}},
		{name: "gat truncated exptime", in: "gat 4294967296 a\r\n", want: []string{`gat keys=["a"] exptime="4294967296"`}},
		{name: "gat no key", in: "gat 10\r\n", want: []string{`gat exptime="10"`}},
		{name: "gat bad exptime", in: "gat x a\r\n", want: []string{e(replyBadExptime, 9)}},
		{name: "gat exptime overflow", in: "gat 99999999999999999999 a\r\n", want: []string{e(replyBadExptime, 28)}},
		{name: "gat key too long", in: "gat 1 " + k251 + "\r\n", want: []string{e(bad, n("gat 1 "+k251+"\r\n"))}},
		{name: "gat no exptime", in: "gat\r\n", want: []string{e("ERROR", 5)}},

		// Storage.
		{name: "set", in: "set k 0 0 5\r\nhello\r\n", want: []string{`set keys=["k"] data="hello\r\n"`}},
		{name: "set empty", in: "set k 0 0 0\r\n\r\n", want: []string{`set keys=["k"] data="\r\n"`}},
		{name: "set binary data", in: "set k 0 0 4\r\n\r\n\x00\n\r\n", want: []string{`set keys=["k"] data="\r\n\x00\n\r\n"`}},
		{name: "set noreply", in: "set k 0 0 1 noreply\r\nx\r\n", want: []string{`set keys=["k"] noreply data="x\r\n"`}},
		{name: "set sixth word ignored", in: "set k 1 2 3 foo\r\nabc\r\n", want: []string{`set keys=["k"] data="abc\r\n"`}},
		{name: "add", in: "add k 0 0 1\r\nx\r\n", want: []string{`add keys=["k"] data="x\r\n"`}},
		{name: "replace", in: "replace k 0 0 1\r\nx\r\n", want: []string{`replace keys=["k"] data="x\r\n"`}},
		{name: "append", in: "append k 0 0 1\r\nx\r\n", want: []string{`append keys=["k"] data="x\r\n"`}},
		{name: "prepend", in: "prepend k 0 0 1\r\nx\r\n", want: []string{`prepend keys=["k"] data="x\r\n"`}},
		{name: "cas", in: "cas k 0 0 1 99\r\nx\r\n", want: []string{`cas keys=["k"] data="x\r\n"`}},
		{name: "cas noreply", in: "cas k 0 0 1 99 noreply\r\nx\r\n", want: []string{`cas keys=["k"] noreply data="x\r\n"`}},
		{name: "cas max unique", in: "cas k 0 0 1 18446744073709551615\r\nx\r\n", want: []string{`cas keys=["k"] data="x\r\n"`}},
		{name: "set then get", in: "set k 0 0 1\r\nx\r\nget k\r\n", want: []string{`set keys=["k"] data="x\r\n"`, `get keys=["k"]`}},
		{name: "set key of 250", in: "set " + k250 + " 0 0 1\r\nx\r\n", want: []string{`set keys=["` + k250 + `"] data="x\r\n"`}},
		{name: "set incomplete data", in: "set k 0 0 5\r\nhel", left: 16, noLive: true},
		{name: "set incomplete CRLF", in: "set k 0 0 5\r\nhello\r", left: 19, noLive: true},
		// Numbers as strtol/strtoul read them.
		{name: "flags minus zero", in: "set k -0 0 1\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "flags plus", in: "set k +5 0 1\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "flags wrap to 32 bits", in: "set k 4294967296 0 1\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "flags negative wrap", in: "set k -18446744073709551615 0 1\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "length truncated to int32", in: "set k 0 0 4294967297\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "negative length truncated", in: "set k 0 0 -4294967295\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "exptime truncated", in: "set k 0 2147483648 1\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "length leading zero", in: "set k 0 0 01\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "length after tab", in: "set k 0 0 \t1\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "length then tab and junk", in: "set k 0 0 1\tjunk\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "length then CR", in: "set k 0 0 1\r\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "length at the limit waits", in: "set k 0 0 2147483645\r\n", left: 22, noLive: true},
		{name: "length over the limit", in: "set k 0 0 2147483646\r\n", want: []string{e(bad, 22)}},

		// Storage errors. memcached skips only the line, and reads the
		// data block as the next command.
		{name: "bad data chunk", in: "set k 0 0 3\r\nhelloworld\r\n", want: []string{e(badChunk, 18), e("ERROR", 7)}},
		{name: "bad data chunk noreply", in: "set k 0 0 3 noreply\r\nhelloworld\r\n", want: []string{e(badChunk, 26, "noreply"), e("ERROR", 7)}},
		{name: "bad data chunk LF", in: "set k 0 0 3\r\nabc\n\r\n", want: []string{e(badChunk, 18), e("ERROR", 1)}},
		{name: "bad data chunk CR CR", in: "set k 0 0 3\r\nabc\r\r\n", want: []string{e(badChunk, 18), e("ERROR", 1)}},
		{name: "negative length", in: "set k 0 0 -1\r\nq\r\n", want: []string{e(bad, 14), e("ERROR", 3)}},
		{name: "length not a number", in: "set k 0 0 x\r\nq\r\n", want: []string{e(bad, 13), e("ERROR", 3)}},
		{name: "length sign only", in: "set k 0 0 +\r\nq\r\n", want: []string{e(bad, 13), e("ERROR", 3)}},
		{name: "length overflow", in: "set k 0 0 9223372036854775808\r\nq\r\n", want: []string{e(bad, 31), e("ERROR", 3)}},
		{name: "negative flags", in: "set k -1 0 1\r\nq\r\n", want: []string{e(bad, 14), e("ERROR", 3)}},
		{name: "flags overflow", in: "set k 18446744073709551616 0 1\r\nq\r\n", want: []string{e(bad, 32), e("ERROR", 3)}},
		{name: "hex flags", in: "set k 0x5 0 1\r\nq\r\n", want: []string{e(bad, 15), e("ERROR", 3)}},
		{name: "bad exptime", in: "set k 0 x 1\r\nq\r\n", want: []string{e(bad, 13), e("ERROR", 3)}},
		{name: "bad noreply", in: "set k 0 x 1 noreply\r\nq\r\n", want: []string{e(bad, 21, "noreply"), e("ERROR", 3)}},
		{name: "noreply as length", in: "set k 0 0 noreply\r\n", want: []string{e(bad, 19, "noreply")}},
		{name: "set too few words", in: "set k 0 0\r\n", want: []string{e("ERROR", 11)}},
		{name: "set too many words", in: "set k 0 0 1 noreply x\r\nq\r\n", want: []string{e("ERROR", 23), e("ERROR", 3)}},
		{name: "set key too long", in: "set " + k251 + " 0 0 1\r\nx\r\n", want: []string{e(bad, n("set "+k251+" 0 0 1\r\n")), e("ERROR", 3)}},
		{name: "set key too long noreply", in: "set " + k251 + " 0 0 1 noreply\r\nx\r\n", want: []string{e(bad, n("set "+k251+" 0 0 1 noreply\r\n"), "noreply"), e("ERROR", 3)}},
		{name: "cas without unique", in: "cas k 0 0 1\r\nx\r\n", want: []string{e("ERROR", 13), e("ERROR", 3)}},
		{name: "cas bad unique", in: "cas k 0 0 1 x\r\nx\r\n", want: []string{e(bad, 15), e("ERROR", 3)}},
		{name: "cas negative unique", in: "cas k 0 0 1 -1\r\nx\r\n", want: []string{e(bad, 16), e("ERROR", 3)}},
		{name: "cas unique overflow", in: "cas k 0 0 1 18446744073709551616\r\nx\r\n", want: []string{e(bad, 34), e("ERROR", 3)}},
		{name: "cas too many words", in: "cas k 0 0 1 1 2 3\r\nx\r\n", want: []string{e("ERROR", 19), e("ERROR", 3)}},

		// incr, decr, touch, delete.
		{name: "incr", in: "incr cnt 1\r\n", want: []string{`incr keys=["cnt"]`}},
		{name: "decr noreply", in: "decr cnt 5 noreply\r\n", want: []string{`decr keys=["cnt"] noreply`}},
		{name: "incr fourth word ignored", in: "incr cnt 5 x\r\n", want: []string{`incr keys=["cnt"]`}},
		{name: "incr minus zero", in: "incr cnt -0\r\n", want: []string{`incr keys=["cnt"]`}},
		{name: "incr max delta", in: "incr cnt 18446744073709551615\r\n", want: []string{`incr keys=["cnt"]`}},
		{name: "incr delta overflow", in: "incr cnt 18446744073709551616\r\n", want: []string{e(replyBadDelta, 31)}},
		{name: "incr negative delta", in: "incr cnt -1\r\n", want: []string{e(replyBadDelta, 13)}},
		{name: "incr bad delta noreply", in: "incr cnt x noreply\r\n", want: []string{e(replyBadDelta, 20, "noreply")}},
		{name: "incr no delta", in: "incr cnt\r\n", want: []string{e("ERROR", 10)}},
		{name: "decr too many words", in: "decr cnt 1 2 3\r\n", want: []string{e("ERROR", 16)}},
		{name: "incr key too long", in: "incr " + k251 + " 1\r\n", want: []string{e(bad, n("incr "+k251+" 1\r\n"))}},
		{name: "touch", in: "touch k 10\r\n", want: []string{`touch keys=["k"] exptime="10"`}},
		{name: "touch noreply", in: "touch k 10 noreply\r\n", want: []string{`touch keys=["k"] exptime="10" noreply`}},
		{name: "touch third word ignored", in: "touch k 10 20\r\n", want: []string{`touch keys=["k"] exptime="10"`}},
		{name: "touch bad exptime", in: "touch k x\r\n", want: []string{e(replyBadExptime, 11)}},
		{name: "touch bad exptime noreply", in: "touch k x noreply\r\n", want: []string{e(replyBadExptime, 19, "noreply")}},
		{name: "touch no exptime", in: "touch k\r\n", want: []string{e("ERROR", 9)}},
		{name: "delete", in: "delete k\r\n", want: []string{`delete keys=["k"]`}},
		{name: "delete hold zero", in: "delete k 0\r\n", want: []string{`delete keys=["k"]`}},
		{name: "delete hold zero noreply", in: "delete k 0 noreply\r\n", want: []string{`delete keys=["k"] noreply`}},
		{name: "delete noreply", in: "delete k noreply\r\n", want: []string{`delete keys=["k"] noreply`}},
		{name: "delete key named noreply", in: "delete noreply\r\n", want: []string{`delete keys=["noreply"]`}},
		{name: "delete hold time", in: "delete k 1\r\n", want: []string{e(replyDeleteUsage, 12)}},
		{name: "delete hold time noreply", in: "delete k 1 noreply\r\n", want: []string{e(replyDeleteUsage, 20, "noreply")}},
		{name: "delete two holds", in: "delete k 0 0\r\n", want: []string{e(replyDeleteUsage, 14)}},
		{name: "delete noreply first", in: "delete k noreply 0\r\n", want: []string{e(replyDeleteUsage, 20)}},
		{name: "delete no key", in: "delete\r\n", want: []string{e("ERROR", 8)}},
		{name: "delete too many words", in: "delete a b c d\r\n", want: []string{e("ERROR", 16)}},
		{name: "delete key too long", in: "delete " + k251 + "\r\n", want: []string{e(bad, n("delete "+k251+"\r\n"))}},
		{name: "delete key too long noreply", in: "delete " + k251 + " noreply\r\n", want: []string{e(bad, n("delete "+k251+" noreply\r\n"), "noreply")}},

		// Lines memcached does not know.
		{name: "CRLF", in: "\r\n", want: []string{e("ERROR", 2)}},
		{name: "LF", in: "\n", want: []string{e("ERROR", 1)}},
		{name: "spaces", in: "   \r\n", want: []string{e("ERROR", 5)}},
		{name: "one letter", in: "x\r\n", want: []string{e("ERROR", 3)}},
		{name: "upper case", in: "GET a\r\n", want: []string{e("ERROR", 7)}},
		{name: "tab after the name", in: "get\ta\r\n", want: []string{e("ERROR", 7)}},
		{name: "NUL first", in: "\x00get a\r\n", want: []string{e("ERROR", 8)}},
		{name: "unknown meta", in: "mz k\r\n", want: []string{e("ERROR", 6)}},
		{name: "unknown g", in: "gx a\r\n", want: []string{e("ERROR", 6)}},
		{name: "errors then a request", in: "x\r\n\r\nget a\r\n", want: []string{e("ERROR", 3), e("ERROR", 2), `get keys=["a"]`}},
		{name: "incomplete line", in: "get a", left: 5, noLive: true},
		{name: "incomplete after CR", in: "get a\r", left: 6, noLive: true},

		// Line length: see TestLiveLongLines for memcached's side.
		{name: "line at the limit", in: longSet[:MaxLineLen-1] + "\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "line of the limit", in: longSet + "\r\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "line of the limit LF", in: longSet + "\nx\r\n", want: []string{`set keys=["k"] data="x\r\n"`}},
		{name: "line over the limit", in: longSet + "x\r\nx\r\n", want: []string{e(replyLineTooLong, 0, "close")}, left: MaxLineLen + 6, noLive: true},
		{name: "line over the limit LF", in: longSet + "x\nx\r\n", want: []string{e(replyLineTooLong, 0, "close")}, left: MaxLineLen + 5, noLive: true},
		{name: "line of the limit waits after CR", in: longSet + "\r", left: MaxLineLen + 1, noLive: true},
		{name: "no newline", in: strings.Repeat("x", MaxLineLen+1), want: []string{e(replyLineTooLong, 0, "close")}, left: MaxLineLen + 1, noLive: true},
		{name: "long get line", in: longGet + "\r\n", want: []string{`gets keys=[` + strings.Repeat(`"a" `, 1499) + `"a"]`}},
		{name: "long gat line", in: "gat 0" + strings.Repeat(" a", 1500) + "\r\n", want: []string{e(replyLineTooLong, 0, "close")}, left: 3007, noLive: true},
		{name: "long get after 100 spaces", in: strings.Repeat(" ", 100) + longGet + "\r\n", want: []string{`gets keys=[` + strings.Repeat(`"a" `, 1499) + `"a"]`}},
		{name: "long get after 101 spaces", in: strings.Repeat(" ", 101) + longGet + "\r\n", want: []string{e(replyLineTooLong, 0, "close")}, left: 3107, noLive: true},

		// Meta get.
		{name: "mg", in: "mg k v\r\n", want: []string{`mg keys=["k"] flags=["v"]`}},
		{name: "mg no flags", in: "mg k\r\n", want: []string{`mg keys=["k"]`}},
		{name: "mg all flags", in: "mg k s t v c f h l k " + o31 + " u I L P T1 N1 R1 E\r\n", want: []string{e(replyInvalidFlag, n("mg k s t v c f h l k "+o31+" u I L P T1 N1 R1 E\r\n"))}},
		{name: "mg flags", in: "mg mgk s t v c f h l k " + o31 + " q u I L P T1 N1 R1\r\n", want: []string{`mg keys=["mgk"] flags=["s" "t" "v" "c" "f" "h" "l" "k" "` + o31 + `" "q" "u" "I" "L" "P" "T1" "N1" "R1"] opaque="` + o31[1:] + `" quiet`}},
		{name: "mg no key", in: "mg\r\n", want: []string{e("ERROR", 4)}},
		{name: "mg space", in: "mg \r\n", want: []string{e("ERROR", 5)}},
		{name: "mg key too long", in: "mg " + k251 + " v\r\n", want: []string{e(bad, n("mg "+k251+" v\r\n"))}},
		{name: "mg duplicate flag", in: "mg k v v\r\n", want: []string{e(replyDuplicateFlag, 10)}},
		{name: "mg high byte", in: "mg k \x80\r\n", want: []string{e(replyDuplicateFlag, 8)}},
		{name: "mg invalid flag", in: "mg k !\r\n", want: []string{e(replyInvalidFlag, 8)}},
		{name: "mg S is not a flag in 1.6.18", in: "mg k S\r\n", want: []string{e(replyInvalidFlag, 8)}},
		{name: "mg empty T", in: "mg k T\r\n", want: []string{e(replyBadToken, 8)}},
		{name: "mg bad T", in: "mg k Tx\r\n", want: []string{e(replyBadToken, 9)}},
		{name: "mg T after tab", in: "mg k T\t5\r\n", want: []string{`mg keys=["k"] flags=["T\t5"]`}},
		{name: "mg bad N", in: "mg k N+\r\n", want: []string{e(replyBadToken, 9)}},
		{name: "mg bad R", in: "mg k R9223372036854775808\r\n", want: []string{e(replyBadToken, 27)}},
		{name: "mg bad C", in: "mg k C-1\r\n", want: []string{e(replyBadToken, 10)}},
		{name: "mg bad F keeps the default", in: "mg k Fy\r\n", want: []string{e(bad, 9)}},
		{name: "mg F fits 64 bits", in: "mg k F18446744073709551615\r\n", want: []string{`mg keys=["k"] flags=["F18446744073709551615"]`}},
		{name: "mg bad T then F", in: "mg k Tx Fy\r\n", want: []string{e(replyBadToken, 12)}},
		{name: "mg bad F then T", in: "mg k Fy Tx\r\n", want: []string{e(replyBadToken, 12)}},
		{name: "mg last bad value wins", in: "mg k Tx Jx\r\n", want: []string{e(replyBadInitial, 12)}},
		{name: "mg duplicate beats bad value", in: "mg k Tx v v Tz\r\n", want: []string{e(replyDuplicateFlag, 16)}},
		{name: "mg M too short", in: "mg k M\r\n", want: []string{e(replyMLength, 8)}},
		{name: "mg M too long", in: "mg k MEE\r\n", want: []string{e(replyMLength, 10)}},
		{name: "mg M any mode", in: "mg k MX\r\n", want: []string{`mg keys=["k"] flags=["MX"]`}},
		{name: "mg bad J", in: "mg k J-1\r\n", want: []string{e(replyBadInitial, 10)}},
		{name: "mg bad D", in: "mg k D\r\n", want: []string{e(replyBadDeltaValue, 8)}},
		{name: "mg D wraps", in: "mg k D-18446744073709551615\r\n", want: []string{`mg keys=["k"] flags=["D-18446744073709551615"]`}},
		{name: "mg opaque of 31", in: "mg k " + o31 + "\r\n", want: []string{`mg keys=["k"] flags=["` + o31 + `"] opaque="` + o31[1:] + `"`}},
		{name: "mg opaque of 32", in: "mg k " + o32 + "\r\n", want: []string{e(replyOpaqueTooLong, n("mg k "+o32+"\r\n"))}},
		{name: "mg empty opaque", in: "mg k O\r\n", want: []string{`mg keys=["k"] flags=["O"] opaque=""`}},
		{name: "mg 19 words", in: "mg k" + many[:34] + "\r\n", want: []string{e(replyInvalidFlag, 40)}},
		{name: "mg 20 words", in: "mg k" + many + "\r\n", want: []string{e(replyMgFlagsTooLong, 42)}},
		{name: "mg many words", in: "mg k" + many + many + "\r\n", want: []string{e(replyMgFlagsTooLong, 78)}},
		{name: "mg base64", in: "mg eA== b v\r\n", want: []string{`mg keys=["eA=="] flags=["b" "v"] base64 decoded="x"`}},
		{name: "mg base64 odd padding", in: "mg e=A= b\r\n", want: []string{`mg keys=["e=A="] flags=["b"] base64 decoded="x"`}},
		{name: "mg base64 skips junk", in: "mg e-A== b\r\n", want: []string{`mg keys=["e-A=="] flags=["b"] base64 decoded="x"`}},
		{name: "mg base64 binary", in: "mg AAEC/w== b\r\n", want: []string{`mg keys=["AAEC/w=="] flags=["b"] base64 decoded="\x00\x01\x02\xff"`}},
		{name: "mg base64 bad length", in: "mg eA==x b\r\n", want: []string{e(replyDecodeKey, 12)}},
		{name: "mg base64 not base64", in: "mg k b\r\n", want: []string{e(replyDecodeKey, 8)}},
		{name: "mg base64 three pads", in: "mg A=== b\r\n", want: []string{e(replyDecodeKey, 11)}},
		{name: "mg base64 then bad T", in: "mg k b Tx\r\n", want: []string{e(replyBadToken, 11)}},

		// Meta set.
		{name: "ms", in: "ms k 5\r\nhello\r\n", want: []string{`ms keys=["k"] data="hello\r\n"`}},
		{name: "ms flags", in: "ms msk 5 T10 F3 q I MS C0 " + o31 + " k c\r\nhello\r\n", want: []string{`ms keys=["msk"] flags=["T10" "F3" "q" "I" "MS" "C0" "` + o31 + `" "k" "c"] opaque="` + o31[1:] + `" quiet data="hello\r\n"`}},
		{name: "ms mode add", in: "ms k 1 MA\r\nx\r\n", want: []string{`ms keys=["k"] flags=["MA"] data="x\r\n"`}},
		{name: "ms base64", in: "ms eA== 1 b\r\n2\r\n", want: []string{`ms keys=["eA=="] flags=["b"] base64 decoded="x" data="2\r\n"`}},
		{name: "ms no length", in: "ms k\r\n", want: []string{e(bad, 6)}},
		{name: "ms bad length", in: "ms k x\r\nab\r\n", want: []string{e(bad, 8), e("ERROR", 4)}},
		{name: "ms negative length", in: "ms k -1\r\nab\r\n", want: []string{e(bad, 9), e("ERROR", 4)}},
		{name: "ms length over the limit", in: "ms k 2147483646\r\n", want: []string{e(bad, 17)}},
		{name: "ms key too long", in: "ms " + k251 + " 1\r\nx\r\n", want: []string{e(bad, n("ms "+k251+" 1\r\n")), e("ERROR", 3)}},
		{name: "ms too many words", in: "ms k 1" + many + "\r\nx\r\n", want: []string{e(replyFlagsTooLong, 44), e("ERROR", 3)}},
		// After the length, memcached swallows the data block unread.
		{name: "ms invalid flag swallows", in: "ms k 3 !\r\nabcdeversion\r\n", want: []string{e(replyInvalidFlag, 15), "version"}},
		{name: "ms invalid flag with q", in: "ms k 3 q !\r\nabcdeversion\r\n", want: []string{e(replyInvalidFlag, 17), "version"}},
		{name: "ms bad F swallows", in: "ms k 2 Fy\r\nxyz\r\n", want: []string{e(bad, 15), e("ERROR", 1)}},
		{name: "ms bad mode", in: "ms k 1 MX " + o32 + "\r\nx\r\n", want: []string{e(replyMsMode, n("ms k 1 MX "+o32+"\r\nx\r\n"))}},
		{name: "ms opaque too long", in: "ms k 1 " + o32 + "\r\nx\r\n", want: []string{e(replyOpaqueTooLong, n("ms k 1 "+o32+"\r\nx\r\n"))}},
		{name: "ms bad base64", in: "ms k 1 b\r\nx\r\n", want: []string{e(replyDecodeKey, 13)}},
		{name: "ms swallow not arrived", in: "ms k 100 !\r\nabc", want: []string{e(replyInvalidFlag, 114)}, swallow: 99, noLive: true},
		{name: "ms bad data chunk with q", in: "ms k 3 q\r\nabcdeversion\r\n", want: []string{e(badChunk, 15), "version"}},

		// Meta delete and arithmetic.
		{name: "md", in: "md k\r\n", want: []string{`md keys=["k"]`}},
		{name: "md flags", in: "md mdk q I T30 C5 Oab k\r\n", want: []string{`md keys=["mdk"] flags=["q" "I" "T30" "C5" "Oab" "k"] opaque="ab" quiet`}},
		{name: "md bad T", in: "md k Tx\r\n", want: []string{e(replyInvalidOrDup, 9)}},
		{name: "md bad base64", in: "md k b\r\n", want: []string{e(replyInvalidOrDup, 8)}},
		{name: "md invalid flag", in: "md k !\r\n", want: []string{e(replyInvalidOrDup, 8)}},
		{name: "md key too long", in: "md " + k251 + "\r\n", want: []string{e(bad, n("md "+k251+"\r\n"))}},
		{name: "md too many words", in: "md k" + many + "\r\n", want: []string{e(replyFlagsTooLong, 42)}},
		{name: "md opaque too long", in: "md k " + o32 + "\r\n", want: []string{e(replyOpaqueTooLong, n("md k "+o32+"\r\n"))}},
		{name: "md no key", in: "md\r\n", want: []string{e("ERROR", 4)}},
		{name: "ma", in: "ma macnt\r\n", want: []string{`ma keys=["macnt"]`}},
		{name: "ma flags", in: "ma macnt M+ D5 J1 q v t c\r\n", want: []string{`ma keys=["macnt"] flags=["M+" "D5" "J1" "q" "v" "t" "c"] quiet`}},
		// With N (autovivify), memcached shows a quiet ma's HD on a miss:
		// see QuietSuppressed.
		{name: "ma autovivify", in: "ma mavivify N0 J1 q v\r\n", want: []string{`ma keys=["mavivify"] flags=["N0" "J1" "q" "v"] quiet`}, noLive: true},
		{name: "ma bad mode", in: "ma k MX\r\n", want: []string{e(replyMaMode, 9)}},
		{name: "ma bad mode and opaque", in: "ma k MX " + o32 + "\r\n", want: []string{e(replyMaMode, n("ma k MX "+o32+"\r\n"))}},
		{name: "ma negative delta", in: "ma k D-1\r\n", want: []string{e(replyInvalidOrDup, 10)}},
		{name: "ma delta overflow", in: "ma k D18446744073709551616\r\n", want: []string{e(replyInvalidOrDup, 28)}},
		{name: "ma too many words", in: "ma k" + many + "\r\n", want: []string{e(replyFlagsTooLong, 42)}},
		{name: "ma no key", in: "ma\r\n", want: []string{e("ERROR", 4)}},

		// Meta noop and debug.
		{name: "mn", in: "mn\r\n", want: []string{"mn"}},
		{name: "mn words", in: "mn foo bar\r\n", want: []string{"mn"}},
		{name: "mn NUL", in: "mn\x00\r\n", want: []string{"mn"}},
		{name: "me", in: "me k\r\n", want: []string{`me keys=["k"]`}},
		{name: "me base64", in: "me eA== b\r\n", want: []string{`me keys=["eA=="] flags=["b"] base64 decoded="x"`}},
		{name: "me b elsewhere", in: "me eA== x b\r\n", want: []string{`me keys=["eA=="] flags=["x" "b"]`}},
		{name: "me bad base64", in: "me k b\r\n", want: []string{e(bad, 8)}},
		{name: "me no key", in: "me\r\n", want: []string{e(bad, 4)}},
		{name: "me key too long", in: "me " + k251 + "\r\n", want: []string{e(bad, n("me "+k251+"\r\n"))}},

		// Commands without a key.
		{name: "version", in: "version\r\n", want: []string{"version"}},
		{name: "version words", in: "version x\r\n", want: []string{"version"}},
		{name: "quit", in: "quit\r\n", want: []string{"quit"}, noLive: true},
		{name: "flush_all", in: "flush_all\r\n", want: []string{"flush_all"}},
		{name: "flush_all delay", in: "flush_all 0\r\n", want: []string{"flush_all"}},
		{name: "flush_all noreply", in: "flush_all noreply\r\n", want: []string{"flush_all noreply"}},
		{name: "flush_all two numbers", in: "flush_all 0 0\r\n", want: []string{"flush_all"}},
		{name: "flush_all bad delay", in: "flush_all x\r\n", want: []string{e(replyBadExptime, 13)}},
		{name: "flush_all too many words", in: "flush_all 0 noreply x\r\n", want: []string{e("ERROR", 23)}},
		{name: "verbosity", in: "verbosity 1\r\n", want: []string{"verbosity"}},
		{name: "verbosity noreply", in: "verbosity 1 noreply\r\n", want: []string{"verbosity noreply"}},
		{name: "verbosity bad", in: "verbosity x\r\n", want: []string{e(bad, 13)}},
		{name: "verbosity only noreply", in: "verbosity noreply\r\n", want: []string{e(bad, 19, "noreply")}},
		{name: "verbosity no level", in: "verbosity\r\n", want: []string{e("ERROR", 11)}},
		{name: "verbosity too many words", in: "verbosity 1 2 3\r\n", want: []string{e("ERROR", 17)}},
		{name: "cache_memlimit", in: "cache_memlimit 64\r\n", want: []string{"cache_memlimit"}},
		{name: "cache_memlimit bad", in: "cache_memlimit x\r\n", want: []string{e("ERROR", 18)}},
		{name: "cache_memlimit no value", in: "cache_memlimit\r\n", want: []string{e("ERROR", 16)}},
		{name: "stats", in: "stats\r\n", want: []string{"stats"}},
		{name: "stats settings", in: "stats settings\r\n", want: []string{"stats"}},
		{name: "stats unknown group", in: "stats nope\r\n", want: []string{"stats"}, serverError: true},
		{name: "shutdown", in: "shutdown\r\n", want: []string{"shutdown"}, serverError: true},
		{name: "slabs", in: "slabs\r\n", want: []string{"slabs"}, serverError: true},
		{name: "lru_crawler", in: "lru_crawler\r\n", want: []string{"lru_crawler"}, serverError: true},
		{name: "lru", in: "lru mode flat\r\n", want: []string{"lru"}, noLive: true},
		{name: "lru no args", in: "lru\r\n", want: []string{e("ERROR", 5)}},
		{name: "extstore", in: "extstore item_size 10\r\n", want: []string{"extstore"}, noLive: true},
		{name: "extstore no args", in: "extstore\r\n", want: []string{e("ERROR", 10)}},
		{name: "watch", in: "watch\r\n", want: []string{"watch"}, noLive: true},
		{name: "refresh_certs", in: "refresh_certs\r\n", want: []string{"refresh_certs"}},

		// The binary protocol: refused once the header is in, then the
		// connection is closed; see TestBinaryProtocol for the response.
		// memcached would serve these (it picks the protocol from a
		// connection's first byte), so they are not live.
		{name: "binary get", in: binGet, want: []string{e(replyBinaryProtocol, 0, "close")}, left: n(binGet), noLive: true},
		{name: "binary header only", in: binGet[:BinaryHeaderLen], want: []string{e(replyBinaryProtocol, 0, "close")}, left: BinaryHeaderLen, noLive: true},
		{name: "binary header incomplete", in: binGet[:BinaryHeaderLen-1], left: BinaryHeaderLen - 1, noLive: true},
		{name: "binary magic alone", in: "\x80", left: 1, noLive: true},
		{name: "get then binary", in: "get a\r\n" + binGet, want: []string{`get keys=["a"]`, e(replyBinaryProtocol, 0, "close")}, left: n(binGet), noLive: true},
		{name: "binary after a bad line", in: "set k 0 0 -1\r\n" + binGet, want: []string{e(bad, 14), e(replyBinaryProtocol, 0, "close")}, left: n(binGet), noLive: true},
		{name: "binary magic not first", in: " \x80\r\n", want: []string{e("ERROR", 4)}},
		{name: "binary magic in a key", in: "get \x80\r\n", want: []string{`get keys=["\x80"]`}},
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range requestCases() {
		t.Run(tc.name, func(t *testing.T) {
			got := feedRequests(t, []byte(tc.in), nil, false)
			want := stream{left: tc.left, swallow: tc.swallow}
			for _, w := range tc.want {
				want.items = append(want.items, item{desc: w})
			}
			if !got.equal(want) {
				t.Fatalf("got:\n%v\nwant:\n%v", got, want)
			}
		})
	}
}

// TestParseRequestSplit feeds each case in two pieces split anywhere, and a
// byte at a time, moving the buffer between calls, and expects what one
// call on the whole input gives.
func TestParseRequestSplit(t *testing.T) {
	for _, tc := range requestCases() {
		t.Run(tc.name, func(t *testing.T) {
			data := []byte(tc.in)
			want := feedRequests(t, data, nil, false)
			if got := feedRequests(t, data, everyByte(len(data)), false); !got.equal(want) {
				t.Fatalf("byte by byte:\n%v\nwant:\n%v", got, want)
			}
			if got := feedRequests(t, data, everyByte(len(data)), true); !got.equal(want) {
				t.Fatalf("byte by byte, moving:\n%v\nwant:\n%v", got, want)
			}
			for _, k := range splitPoints(len(data)) {
				if got := feedRequests(t, data, []int{k}, true); !got.equal(want) {
					t.Fatalf("split at %d:\n%v\nwant:\n%v", k, got, want)
				}
			}
		})
	}
}

// TestParseRequestPipeline parses all cases back to back in one stream,
// which is what a session sees: each error resynchronises as memcached
// would, and the next request parses.
func TestParseRequestPipeline(t *testing.T) {
	var data []byte
	var want []string
	for _, tc := range requestCases() {
		if tc.left != 0 || tc.swallow != 0 || strings.Contains(strings.Join(tc.want, ""), "close") {
			continue
		}
		data = append(data, tc.in...)
		want = append(want, tc.want...)
	}
	got := feedRequests(t, data, nil, false)
	if g, w := strings.Join(got.descs(), "\n"), strings.Join(want, "\n"); g != w || got.left != 0 {
		t.Fatalf("pipelined cases differ (left=%d)", got.left)
	}
	var cuts []int
	for k := 7; k < len(data); k += 7 {
		cuts = append(cuts, k)
	}
	if split := feedRequests(t, data, cuts, true); !split.equal(got) {
		t.Fatal("pipelined cases in 7-byte pieces differ")
	}
}

func TestRequestNeed(t *testing.T) {
	var req Request
	in := []byte("set k 0 0 10\r\n0123")
	if _, err := ParseRequest(in, &req); !errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
	if got := req.Need(); got != 8 { // 6 more bytes and CRLF
		t.Fatalf("Need() = %d, want 8", got)
	}
	in = append(in, "456789\r\n"...)
	if n, err := ParseRequest(in, &req); err != nil || n != len(in) {
		t.Fatalf("n=%d err=%v", n, err)
	}
	if req.Need() != 0 {
		t.Fatalf("Need() = %d after a complete request", req.Need())
	}
	if _, err := ParseRequest([]byte("get"), &req); !errors.Is(err, ErrIncomplete) || req.Need() != 1 {
		t.Fatalf("partial line: err=%v Need()=%d", err, req.Need())
	}
}

// TestRequestReset: a Request reused after Reset parses a new request,
// whatever state it was left in.
func TestRequestReset(t *testing.T) {
	var req Request
	if _, err := ParseRequest([]byte("set k 0 0 10\r\n01"), &req); !errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
	req.Reset()
	if n, err := ParseRequest([]byte("get a b\r\n"), &req); err != nil || n != 9 || describe(&req) != `get keys=["a" "b"]` {
		t.Fatalf("after Reset: n=%d err=%v %s", n, err, describe(&req))
	}
}

// TestProtocolError checks the error's methods and errors.Is.
func TestProtocolError(t *testing.T) {
	var req Request
	_, err := ParseRequest([]byte("bogus\r\n"), &req)
	var pe *ProtocolError
	if !errors.As(err, &pe) || !errors.Is(err, ErrUnknownCommand) || errors.Is(err, ErrBadCommand) {
		t.Fatalf("err = %v", err)
	}
	if got := string(pe.AppendReply(nil)); got != "ERROR\r\n" {
		t.Fatalf("AppendReply = %q", got)
	}
	if err.Error() != "memcache: unknown command: ERROR" {
		t.Fatalf("Error() = %q", err.Error())
	}
	_, err = ParseRequest([]byte("incr k x noreply\r\n"), &req)
	if !errors.As(err, &pe) || !errors.Is(err, ErrBadCommand) || len(pe.AppendReply(nil)) != 0 {
		t.Fatalf("noreply error: %v", err)
	}
	_, err = ParseRequest([]byte("set k 0 0 1\r\nxyz"), &req)
	if !errors.Is(err, ErrBadDataChunk) {
		t.Fatalf("bad chunk: %v", err)
	}
	_, err = ParseRequest(bytes.Repeat([]byte("x"), MaxLineLen+1), &req)
	if !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("long line: %v", err)
	}
	_, err = ParseRequest([]byte("set k\r\n"), &req)
	if !errors.Is(err, ErrTokenCount) {
		t.Fatalf("token count: %v", err)
	}
}

// TestDecodedKey: the key to hash is the decoded one for base64 meta keys.
func TestDecodedKey(t *testing.T) {
	for _, tc := range []struct{ in, key string }{
		{"get a b\r\n", "a"},
		{"mg Zm9v b v\r\n", "foo"},
		{"mg Zm9v v\r\n", "Zm9v"},
		{"ms Zm9vYg== 1 b\r\nx\r\n", "foob"},
		{"me Zm9v b\r\n", "foo"},
		{"version\r\n", ""},
		{"gat 1\r\n", ""},
	} {
		var req Request
		if _, err := ParseRequest([]byte(tc.in), &req); err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if got := string(req.DecodedKey()); got != tc.key {
			t.Errorf("%q: DecodedKey = %q, want %q", tc.in, got, tc.key)
		}
	}
}

// TestBase64 compares base64Decode with the standard decoder on valid
// input, where the two agree.
func TestBase64(t *testing.T) {
	for _, s := range []string{"", "f", "fo", "foo", "foob", "fooba", "foobar", "\x00\xff\xfe", strings.Repeat("k", 187)} {
		enc := []byte(base64.StdEncoding.EncodeToString([]byte(s)))
		got, ok := base64Decode(nil, enc)
		if s == "" {
			if ok {
				t.Errorf("empty decoded")
			}
			continue
		}
		if !ok || string(got) != s {
			t.Errorf("%q: got %q ok=%v", enc, got, ok)
		}
	}
}

// TestLargeValue: a 1 MiB value arriving in 16 KiB reads is parsed in
// linear time, resuming each time.
func TestLargeValue(t *testing.T) {
	value := bytes.Repeat([]byte("v"), 1<<20)
	data := append([]byte("set big 0 0 1048576\r\n"), value...)
	data = append(data, "\r\nget big\r\n"...)
	var cuts []int
	for k := 16 << 10; k < len(data); k += 16 << 10 {
		cuts = append(cuts, k)
	}
	want := feedRequests(t, data, nil, false)
	if len(want.items) != 2 || want.left != 0 {
		t.Fatalf("one shot: %d items, left %d", len(want.items), want.left)
	}
	if got := feedRequests(t, data, cuts, false); !got.equal(want) {
		t.Fatal("16 KiB pieces differ")
	}
	var req Request
	oneShot := func() {
		for range 20 {
			if _, err := ParseRequest(data, &req); err != nil {
				t.Fatal(err)
			}
		}
	}
	incremental := func() {
		for range 20 {
			for _, end := range cuts {
				if _, err := ParseRequest(data[:end], &req); !errors.Is(err, ErrIncomplete) {
					t.Fatal(err)
				}
			}
			if _, err := ParseRequest(data, &req); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkLinear(t, oneShot, incremental, 200*time.Millisecond)
}

// TestLongGetLine: a get line of 1 MiB arriving in 4 KiB reads is scanned
// once, not once per read.
func TestLongGetLine(t *testing.T) {
	line := []byte("get")
	for len(line) < MaxGetLineLen-16 {
		line = append(line, " key:12345"...)
	}
	line = append(line, "\r\n"...)
	var cuts []int
	for k := 4 << 10; k < len(line); k += 4 << 10 {
		cuts = append(cuts, k)
	}
	var req Request
	oneShot := func() {
		for range 5 {
			if _, err := ParseRequest(line, &req); err != nil {
				t.Fatal(err)
			}
		}
	}
	incremental := func() {
		for range 5 {
			for _, end := range cuts {
				if _, err := ParseRequest(line[:end], &req); !errors.Is(err, ErrIncomplete) {
					t.Fatal(err)
				}
			}
			if _, err := ParseRequest(line, &req); err != nil {
				t.Fatal(err)
			}
		}
	}
	checkLinear(t, oneShot, incremental, time.Second)
	if len(req.Keys) != (len(line)-5)/10 {
		t.Fatalf("%d keys", len(req.Keys))
	}
	over := append(bytes.Repeat([]byte("get a"), MaxGetLineLen/5+1), 'b')
	if _, err := ParseRequest(over, &req); !errors.Is(err, ErrLineTooLong) {
		t.Fatalf("get line over %d bytes: %v", MaxGetLineLen, err)
	}
}

// TestRequestForget: Forget leaves no reference to the buffer of the last
// request, and a partial request goes on from where it was, in a new buffer.
func TestRequestForget(t *testing.T) {
	tests := []struct {
		name  string
		first string // parsed, then Forget
		rest  string // appended to what first left unconsumed, completing it
	}{
		{"complete get", "get a b\r\n", ""},
		{"complete set", "set k 0 0 1\r\nv\r\n", ""},
		{"inside a data block", "set k 5 0 5 noreply\r\nva", "lue\r\n"},
		{"inside a line", "get a", " b\r\n"},
		{"meta set", "ms k 2 T0 q\r\nv", "v\r\n"},
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
			if req.Name != nil || req.Args != nil || req.Keys != nil || req.Line != nil || req.Data != nil {
				t.Fatalf("fields still refer to the buffer: %s", describe(&req))
			}
			for i, a := range req.args[:cap(req.args)] {
				if a != nil {
					t.Fatalf("args[%d] still refers to %q", i, a)
				}
			}
			if err == nil {
				return
			}
			whole := tc.first + tc.rest
			var fresh Request
			if _, err := ParseRequest([]byte(whole), &fresh); err != nil {
				t.Fatal(err)
			}
			moved := append([]byte(nil), buf[n:]...)
			clear(buf) // the old buffer is gone
			moved = append(moved, tc.rest...)
			m, err := ParseRequest(moved, &req)
			if err != nil || m != len(moved) || describe(&req) != describe(&fresh) {
				t.Fatalf("after Forget: m=%d err=%v %s, want %d bytes and %s", m, err, describe(&req), len(moved), describe(&fresh))
			}
		})
	}
}
