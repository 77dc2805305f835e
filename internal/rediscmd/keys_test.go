package rediscmd

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// req splits a request written as words; "”" is an empty argument.
func req(s string) [][]byte {
	var args [][]byte
	for _, w := range strings.Fields(s) {
		if w == "''" {
			w = ""
		}
		args = append(args, []byte(w))
	}
	return args
}

// resolve finds the command of a request, failing the test if it cannot.
func resolve(t *testing.T, args [][]byte) *Command {
	t.Helper()
	c := Lookup(args[0])
	if c == nil {
		t.Fatalf("%s: not in the table", args[0])
	}
	if c.HasSubcommands() && len(args) > 1 {
		if c = c.Sub(args[1]); c == nil {
			t.Fatalf("%s %s: no such subcommand", args[0], args[1])
		}
	}
	return c
}

func TestKeyIndexes(t *testing.T) {
	tests := []struct {
		req  string
		want []int
	}{
		{"get k", []int{1}},
		{"GET k", []int{1}},
		{"set k v EX 10 GET", []int{1}},
		{"getex k PERSIST", []int{1}},
		{"copy src dst REPLACE", []int{1, 2}},
		{"rename a b", []int{1, 2}},
		{"mget a b c", []int{1, 2, 3}},
		{"del a", []int{1}},
		{"exists a b a", []int{1, 2, 3}},
		{"mset a 1", []int{1}},
		{"mset a 1 b 2 c 3", []int{1, 3, 5}},
		{"msetnx a 1 b 2", []int{1, 3}},
		{"bitop AND dst a b", []int{2, 3, 4}},
		{"lcs a b LEN", []int{1, 2}},
		{"hset h f v f2 v2", []int{1}},
		{"lmove a b LEFT RIGHT", []int{1, 2}},
		{"blpop a b 0", []int{1, 2}},
		{"blmove a b LEFT RIGHT 0", []int{1, 2}},
		{"sdiffstore dst a b", []int{1, 2, 3}},
		{"smove a b m", []int{1, 2}},
		{"pfcount a b", []int{1, 2}},
		{"pfmerge dst a b", []int{1, 2, 3}},
		{"geosearchstore dst src FROMMEMBER m BYRADIUS 1 km", []int{1, 2}},
		{"zrangestore dst src 0 -1", []int{1, 2}},
		{"watch a b", []int{1, 2}},
		{"migrate host 6379 k 0 1000", []int{3}},

		// numkeys at argv[2] (EVAL, FCALL) or argv[1]/[2] (Z*, LMPOP, …)
		{"eval s 1 k", []int{3}},
		{"eval s 2 a b arg1 arg2", []int{3, 4}},
		{"evalsha sha 1 k arg", []int{3}},
		{"eval_ro s 3 a b c", []int{3, 4, 5}},
		{"fcall f 1 k arg", []int{3}},
		{"fcall_ro f 2 a b", []int{3, 4}},
		{"zunionstore dst 2 a b WEIGHTS 1 2", []int{1, 3, 4}},
		{"zinterstore dst 1 a", []int{1, 3}},
		{"zdiffstore dst 3 a b c", []int{1, 3, 4, 5}},
		{"zunion 2 a b WITHSCORES", []int{2, 3}},
		{"zinter 1 a", []int{2}},
		{"zdiff 2 a b", []int{2, 3}},
		{"zintercard 2 a b LIMIT 5", []int{2, 3}},
		{"sintercard 2 a b LIMIT 5", []int{2, 3}},
		{"lmpop 2 a b LEFT COUNT 3", []int{2, 3}},
		{"lmpop 1 a right", []int{2}},
		{"zmpop 1 z MIN", []int{2}},
		{"blmpop 0 2 a b LEFT", []int{3, 4}},
		{"bzmpop 1.5 1 z MAX", []int{3}},

		// subcommands: the key is argv[2]
		{"object encoding k", []int{2}},
		{"OBJECT FREQ k", []int{2}},
		{"memory usage k SAMPLES 5", []int{2}},
		{"xinfo stream s FULL", []int{2}},
		{"xinfo consumers s g", []int{2}},
		{"xgroup create s g $ MKSTREAM", []int{2}},
		{"xgroup setid s g 0", []int{2}},

		// SORT … STORE, as sortGetKeys finds it
		{"sort k", []int{1}},
		{"sort k STORE d", []int{1, 3}},
		{"sort k by w_* get # get h->f store d", []int{1, 9}},
		{"sort k LIMIT 0 10 STORE d", []int{1, 6}},
		{"sort k BY store STORE d", []int{1, 5}},      // BY's pattern "store" is skipped
		{"sort k STORE d STORE e", []int{1, 5}},       // the last STORE wins
		{"sort k STORE", []int{1}},                    // no destination: Redis replies a syntax error
		{"sort k STORE limit 1 2", []int{1, 3}},       // the destination "limit" is then read as LIMIT
		{"sort k STORE get STORE d", []int{1, 3}},     // … and "get" skips the second STORE
		{"sort_ro k BY w_* STORE d", []int{1}},        // SORT_RO has no STORE
		{"georadius g 0 0 1 km STORE d", []int{1, 7}}, // STORE after the unit
		{"georadius g 0 0 1 km STOREDIST d", []int{1, 7}},
		{"georadius g 0 0 1 km STORE d STOREDIST e", []int{1, 9}},
		{"georadius g 0 0 1 km WITHDIST", []int{1}},
		{"georadius g 0 0 1 km STORE", []int{1}},
		{"georadiusbymember g m 1 km STORE d", []int{1, 6}},
		{"georadius_ro g 0 0 1 km STORE d", []int{1}},

		// XREAD and XREADGROUP: the keys follow STREAMS, then as many IDs
		{"xread STREAMS a 0", []int{2}},
		{"xread count 10 streams a b 0 0", []int{4, 5}},
		{"xread COUNT streams STREAMS s 0", []int{4}}, // COUNT's value is "streams"
		{"xreadgroup GROUP g c NOACK STREAMS s >", []int{6}},
		{"xreadgroup GROUP streams c COUNT 1 STREAMS a b > >", []int{7, 8}},
	}
	for _, tc := range tests {
		args := req(tc.req)
		c := resolve(t, args)
		got, err := c.KeyIndexes(args, nil)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: keys %v, %v; want %v", tc.req, got, err, tc.want)
		}
		// Keys are appended after what dst holds.
		got, err = c.KeyIndexes(args, []int{-1})
		if err != nil || !slices.Equal(got, append([]int{-1}, tc.want...)) {
			t.Errorf("%s: with dst [-1]: keys %v, %v", tc.req, got, err)
		}
	}
}

func TestKeyIndexesErrors(t *testing.T) {
	tests := []struct {
		req   string
		class error
		msg   string
	}{
		{"mset a 1 b", ErrWrongArity, "ERR wrong number of arguments for 'mset' command"},
		{"msetnx a", ErrWrongArity, "ERR wrong number of arguments for 'msetnx' command"},
		{"get", ErrWrongArity, "ERR wrong number of arguments for 'get' command"},
		{"blpop 0", ErrWrongArity, "ERR wrong number of arguments for 'blpop' command"},
		{"object encoding", ErrWrongArity, "ERR wrong number of arguments for 'object|encoding' command"},
		{"eval s", ErrWrongArity, "ERR wrong number of arguments for 'eval' command"},
		{"zunionstore dst", ErrWrongArity, "ERR wrong number of arguments for 'zunionstore' command"},

		{"eval s 0", ErrUnsupported, "ERR unsupported command 'eval' without keys: the proxy needs a key to choose a server"},
		{"evalsha sha 0 arg", ErrUnsupported, "ERR unsupported command 'evalsha' without keys: the proxy needs a key to choose a server"},
		{"fcall f 0", ErrUnsupported, "ERR unsupported command 'fcall' without keys: the proxy needs a key to choose a server"},
		{"eval s x a", ErrBadKeys, "ERR value is not an integer or out of range"},
		{"eval s 01 a", ErrBadKeys, "ERR value is not an integer or out of range"},
		{"eval s +1 a", ErrBadKeys, "ERR value is not an integer or out of range"},
		{"eval s -1 a", ErrBadKeys, "ERR Number of keys can't be negative"},
		{"eval s 2 a", ErrBadKeys, "ERR Number of keys can't be greater than number of args"},
		{"eval s 9223372036854775807 a", ErrBadKeys, "ERR Number of keys can't be greater than number of args"},
		{"eval s 9223372036854775808 a", ErrBadKeys, "ERR value is not an integer or out of range"},
		{"fcall f x a", ErrBadKeys, "ERR Bad number of keys provided"},
		{"fcall_ro f -1 a", ErrBadKeys, "ERR Number of keys can't be negative"},
		{"zunionstore d 0 a", ErrBadKeys, "ERR at least 1 input key is needed for 'zunionstore' command"},
		{"zunionstore d -1 a", ErrBadKeys, "ERR at least 1 input key is needed for 'zunionstore' command"},
		{"zunionstore d 2 a", ErrBadKeys, "ERR syntax error"},
		{"zunionstore d x a", ErrBadKeys, "ERR value is not an integer or out of range"},
		{"zdiff 0 a", ErrBadKeys, "ERR at least 1 input key is needed for 'zdiff' command"},
		{"zintercard 3 a b", ErrBadKeys, "ERR syntax error"},
		{"sintercard 0 a", ErrBadKeys, "ERR numkeys should be greater than 0"},
		{"sintercard x a", ErrBadKeys, "ERR numkeys should be greater than 0"},
		{"sintercard 2 a", ErrBadKeys, "ERR Number of keys can't be greater than number of args"},
		{"lmpop 0 a left", ErrBadKeys, "ERR numkeys should be greater than 0"},
		{"lmpop x a left", ErrBadKeys, "ERR numkeys should be greater than 0"},
		{"lmpop 2 a left", ErrBadKeys, "ERR syntax error"}, // "left" would be a key
		{"zmpop 9223372036854775808 a min", ErrBadKeys, "ERR numkeys should be greater than 0"},
		{"blmpop 0 2 a left", ErrBadKeys, "ERR syntax error"},

		{"xread STREAMS a b 0", ErrBadKeys, "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."},
		{"xread COUNT 1 a 0", ErrBadKeys, "ERR syntax error"},
		{"xread COUNT 1 STREAMS", ErrBadKeys, "ERR syntax error"},
		{"xreadgroup GROUP g c STREAMS a b >", ErrBadKeys, "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."},
	}
	for _, tc := range tests {
		args := req(tc.req)
		c := resolve(t, args)
		keys, err := c.KeyIndexes(args, nil)
		if err == nil {
			t.Errorf("%s: keys %v, want error %q", tc.req, keys, tc.msg)
			continue
		}
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, tc.class) || err.Error() != tc.msg {
			t.Errorf("%s: error %q (%T), want %q (%v)", tc.req, err, err, tc.msg, tc.class)
		}
	}
}

// TestKeyIndexesShortRequests feeds every command requests shorter than
// its arity allows: KeyIndexes must report an error or find keys within
// the request, never panic.
func TestKeyIndexesShortRequests(t *testing.T) {
	for _, c := range All() {
		for n := 0; n <= 3; n++ {
			args := make([][]byte, n)
			for i := range args {
				args[i] = []byte("1")
			}
			keys, err := c.KeyIndexes(args, nil)
			for _, k := range keys {
				if k <= 0 || k >= n {
					t.Errorf("%s with %d args: key index %d (err %v)", c.Name, n, k, err)
				}
			}
		}
	}
}

func TestCheckArity(t *testing.T) {
	tests := []struct {
		name string
		n    int
		ok   bool
	}{
		{"get", 2, true}, {"get", 1, false}, {"get", 3, false},
		{"set", 3, true}, {"set", 2, false}, {"set", 9, true},
		{"ping", 1, true}, {"ping", 2, true}, {"ping", 3, false},
		{"quit", 5, true},
		{"command", 1, true},
	}
	for _, tc := range tests {
		err := Lookup([]byte(tc.name)).CheckArity(tc.n)
		if (err == nil) != tc.ok {
			t.Errorf("%s with %d args: %v", tc.name, tc.n, err)
		}
		want := "ERR wrong number of arguments for '" + tc.name + "' command"
		if err != nil && (err.Error() != want || !errors.Is(err, ErrWrongArity)) {
			t.Errorf("%s: %q, want %q", tc.name, err, want)
		}
	}
}

func TestParseInt(t *testing.T) {
	tests := []struct {
		s  string
		v  int64
		ok bool
	}{
		{"0", 0, true}, {"1", 1, true}, {"-1", -1, true}, {"10", 10, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false},
		{"18446744073709551616", 0, false}, {"99999999999999999999", 0, false},
		{"", 0, false}, {"-", 0, false}, {"-0", 0, false}, {"00", 0, false}, {"01", 0, false},
		{"+1", 0, false}, {" 1", 0, false}, {"1 ", 0, false}, {"1.0", 0, false}, {"1e3", 0, false},
		{"0x10", 0, false},
	}
	for _, tc := range tests {
		v, ok := parseInt([]byte(tc.s))
		if v != tc.v || ok != tc.ok {
			t.Errorf("parseInt(%q) = %d, %v; want %d, %v", tc.s, v, ok, tc.v, tc.ok)
		}
	}
}

func TestFirstArgAndNoKeys(t *testing.T) {
	eval := Lookup([]byte("eval"))
	load := Lookup([]byte("script")).Sub([]byte("load"))
	if eval.FirstArg() != 1 || load.FirstArg() != 2 {
		t.Errorf("FirstArg: eval %d, script|load %d; want 1, 2", eval.FirstArg(), load.FirstArg())
	}
	_, noKeys := eval.KeyIndexes(req("eval s 0"), nil)
	_, badKeys := eval.KeyIndexes(req("eval s x"), nil)
	switch {
	case !eval.IsNoKeys(noKeys):
		t.Errorf("eval s 0: %v is not the no-keys error", noKeys)
	case eval.IsNoKeys(badKeys) || eval.IsNoKeys(nil):
		t.Errorf("eval s x: %v taken for the no-keys error", badKeys)
	case Lookup([]byte("evalsha")).IsNoKeys(noKeys):
		t.Error("evalsha takes eval's no-keys error for its own")
	case load.IsNoKeys(noKeys):
		t.Error("script|load has no keys to miss")
	}
}
