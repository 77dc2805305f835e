package memcache

import (
	"errors"
	"testing"
)

func TestAppend(t *testing.T) {
	k := func(s ...string) [][]byte {
		var out [][]byte
		for _, x := range s {
			out = append(out, []byte(x))
		}
		return out
	}
	cases := []struct{ got, want string }{
		{string(AppendGet(nil, []byte("get"), k("k1", "k3")...)), "get k1 k3\r\n"},
		{string(AppendGet(nil, []byte("gets"), k("k1")...)), "gets k1\r\n"},
		{string(AppendGet([]byte("x"), []byte("bget"), k("a")...)), "xbget a\r\n"},
		{string(AppendGat(nil, []byte("gat"), []byte("10"), k("k1", "k3")...)), "gat 10 k1 k3\r\n"},
		{string(AppendGat(nil, []byte("gats"), []byte("-1"), k("a")...)), "gats -1 a\r\n"},
		{string(AppendEnd(nil)), "END\r\n"},
		{string(AppendServerError(nil, "Connection refused")), "SERVER_ERROR Connection refused\r\n"},
		{string(AppendServerError(nil, "a\r\nb\n")), "SERVER_ERROR a  b \r\n"},
		{string(AppendLine(nil, "ERROR")), "ERROR\r\n"},
	}
	for i, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("case %d: got %q, want %q", i, tc.got, tc.want)
		}
	}
}

// TestAppendRoundTrip: a fragment built from a parsed request parses back
// to the same command and keys.
func TestAppendRoundTrip(t *testing.T) {
	for _, in := range []string{"get a b c\r\n", "gets a\r\n", "gat 10 a b\r\n", "gats -5 a\r\n", "bget a\r\n"} {
		var req, again Request
		if _, err := ParseRequest([]byte(in), &req); err != nil {
			t.Fatal(err)
		}
		var out []byte
		if req.Exptime != nil {
			out = AppendGat(nil, req.Name, req.Exptime, req.Keys...)
		} else {
			out = AppendGet(nil, req.Name, req.Keys...)
		}
		if _, err := ParseRequest(out, &again); err != nil || describe(&again) != describe(&req) {
			t.Errorf("%q -> %q: %v %s", in, out, err, describe(&again))
		}
	}
}

// TestCommandTable: lookup and the table agree, and the predicates are
// consistent.
func TestCommandTable(t *testing.T) {
	for c := Get; c < numCommands; c++ {
		if commands[c].name == "" || lookup([]byte(commands[c].name)) != c {
			t.Errorf("%d: name %q does not look up", c, commands[c].name)
		}
		if c.String() != commands[c].name {
			t.Errorf("%d: String() = %q", c, c.String())
		}
		if c.IsRetrieval() && !c.HasKey() || c.IsStorage() && !c.HasKey() {
			t.Errorf("%v has no key", c)
		}
	}
	if Unknown.String() != "unknown" || lookup([]byte("bget")) != Get || lookup([]byte("GET")) != Unknown {
		t.Error("unknown names")
	}
	if !MetaSet.IsStorage() || MetaGet.IsStorage() || !Gats.IsRetrieval() || !MetaDebug.IsMeta() || Version.HasKey() {
		t.Error("predicates")
	}
}

func TestNumbers(t *testing.T) {
	for _, tc := range []struct {
		in  string
		l   int32
		lok bool
		u   uint32
		uok bool
		ull uint64
		ok  bool
	}{
		{"0", 0, true, 0, true, 0, true},
		{"-0", 0, true, 0, true, 0, true},
		{"+7", 7, true, 7, true, 7, true},
		{"007", 7, true, 7, true, 7, true},
		{"\t\v\f\r7", 7, true, 7, true, 7, true},
		{"7\tx", 7, true, 7, true, 7, true},
		{"7x", 0, false, 0, false, 0, false},
		{"", 0, false, 0, false, 0, false},
		{"+", 0, false, 0, false, 0, false},
		{"-", 0, false, 0, false, 0, false},
		{"\t", 0, false, 0, false, 0, false},
		{"-1", -1, true, 0, false, 0, false},
		{"4294967296", 0, true, 0, true, 4294967296, true},
		{"4294967297", 1, true, 1, true, 4294967297, true},
		{"2147483648", -2147483648, true, 2147483648, true, 2147483648, true},
		{"9223372036854775807", -1, true, 4294967295, true, 9223372036854775807, true},
		{"9223372036854775808", 0, false, 0, true, 9223372036854775808, true},
		{"-9223372036854775808", 0, true, 0, false, 0, false},
		{"-9223372036854775809", 0, false, 4294967295, true, 9223372036854775807, true},
		{"18446744073709551615", 0, false, 4294967295, true, 18446744073709551615, true},
		{"18446744073709551616", 0, false, 0, false, 0, false},
		{"-18446744073709551615", 0, false, 1, true, 1, true},
		{"99999999999999999999999", 0, false, 0, false, 0, false},
	} {
		l, lok := safeStrtol([]byte(tc.in))
		u, uok := safeStrtoul([]byte(tc.in))
		ull, ok := safeStrtoull([]byte(tc.in))
		if l != tc.l || lok != tc.lok || u != tc.u || uok != tc.uok || ull != tc.ull || ok != tc.ok {
			t.Errorf("%q: strtol %d %v, strtoul %d %v, strtoull %d %v", tc.in, l, lok, u, uok, ull, ok)
		}
	}
	if _, err := ParseRequest([]byte("set k 0 0 1\r\nx\r\n"), new(Request)); errors.Is(err, ErrIncomplete) {
		t.Fatal(err)
	}
}
