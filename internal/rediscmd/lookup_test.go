package rediscmd

import (
	"errors"
	"strings"
	"testing"
)

func TestLookupIgnoresCase(t *testing.T) {
	get := Lookup([]byte("get"))
	if get == nil || get.Name != "get" {
		t.Fatalf("Lookup(get) = %v", get)
	}
	for _, name := range []string{"GET", "Get", "gEt"} {
		if c := Lookup([]byte(name)); c != get {
			t.Errorf("Lookup(%q) = %v, want the get row", name, c)
		}
	}
	for _, name := range []string{"GEORADIUSBYMEMBER_RO", "Restore-Asking", "ZREMRANGEBYSCORE"} {
		if c := Lookup([]byte(name)); c == nil || c.Name != strings.ToLower(name) {
			t.Errorf("Lookup(%q) = %v", name, c)
		}
	}
	object := Lookup([]byte("OBJECT"))
	if c := object.Sub([]byte("EnCoDiNg")); c == nil || c.Name != "object|encoding" {
		t.Errorf("OBJECT Sub(EnCoDiNg) = %v", c)
	}
}

func TestLookupMisses(t *testing.T) {
	for _, name := range []string{
		"", "ge", "gett", "get ", "object|encoding", "foo",
		"G\xc9T",                        // not ASCII
		"\x47\x45\x54\x00",              // a NUL after GET
		strings.Repeat("a", 1000),       // longer than any command
		strings.Repeat("A", maxNameLen), // as long as the buffer
	} {
		if c := Lookup([]byte(name)); c != nil {
			t.Errorf("Lookup(%q) = %v, want nil", name, c)
		}
	}
	object := Lookup([]byte("object"))
	for _, name := range []string{"", "foo", "usage", "encodingx", strings.Repeat("e", 100)} {
		if c := object.Sub([]byte(name)); c != nil {
			t.Errorf("OBJECT Sub(%q) = %v, want nil", name, c)
		}
	}
	if c := Lookup([]byte("get")).Sub([]byte("x")); c != nil {
		t.Errorf("GET Sub(x) = %v, want nil", c)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		req  string
		name string // the command found, "" for none
		kind Kind
	}{
		{"GET k", "get", SingleKey},
		{"mget a b", "mget", MultiKey},
		{"ping", "ping", Local},
		{"PING hello", "ping", Local},
		{"command", "command", Keyless},
		{"COMMAND DOCS get", "command|docs", Keyless},
		{"command count", "command|count", Keyless},
		{"lolwut VERSION 5", "lolwut", Keyless},
		{"object ENCODING k", "object|encoding", SingleKey},
		{"object help", "object|help", Keyless},
		{"SCRIPT LOAD x", "script|load", Broadcast},
		{"script exists a b", "script|exists", Broadcast},
		{"Script Kill", "script|kill", Broadcast},
		{"function load x", "function|load", Broadcast},
		{"FUNCTION LIST", "function|list", Keyless},
		{"evalsha sha 1 k", "evalsha", SingleKey},
		{"xgroup CREATE s g $", "xgroup|create", SingleKey},
		{"memory usage k", "memory|usage", SingleKey},
	}
	for _, tc := range tests {
		c, err := Resolve(req(tc.req))
		if err != nil || c == nil || c.Name != tc.name || c.Kind != tc.kind {
			t.Errorf("Resolve(%s) = %v, %v; want %s (%v)", tc.req, c, err, tc.name, tc.kind)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		args  [][]byte
		name  string // the command found, "" for none
		class error
		msg   string
	}{
		{req("foo"), "", ErrUnknownCommand, "ERR unknown command 'foo', with args beginning with: "},
		{req("FOO a b"), "", ErrUnknownCommand, "ERR unknown command 'FOO', with args beginning with: 'a' 'b' "},
		{[][]byte{[]byte("f\r\no"), []byte("a\nb")}, "", ErrUnknownCommand,
			"ERR unknown command 'f  o', with args beginning with: 'a b' "},
		{[][]byte{[]byte("foo\x00bar"), []byte("a\x00b")}, "", ErrUnknownCommand,
			"ERR unknown command 'foo', with args beginning with: 'a' "},
		{[][]byte{[]byte(strings.Repeat("x", 200)), []byte(strings.Repeat("y", 100)), []byte(strings.Repeat("z", 100)), []byte("w")},
			"", ErrUnknownCommand, "ERR unknown command '" + strings.Repeat("x", 128) + "', with args beginning with: '" +
				strings.Repeat("y", 100) + "' '" + strings.Repeat("z", 25) + "' "},
		{nil, "", ErrUnknownCommand, "ERR unknown command '', with args beginning with: "},

		{req("get"), "get", ErrWrongArity, "ERR wrong number of arguments for 'get' command"},
		{req("ping a b"), "ping", ErrWrongArity, "ERR wrong number of arguments for 'ping' command"},
		{req("object"), "object", ErrWrongArity, "ERR wrong number of arguments for 'object' command"},
		{req("OBJECT encoding"), "object|encoding", ErrWrongArity, "ERR wrong number of arguments for 'object|encoding' command"},
		{req("object foo k"), "object", ErrUnknownCommand, "ERR unknown subcommand 'foo'. Try OBJECT HELP."},
		{req("xinfo Foo"), "xinfo", ErrUnknownCommand, "ERR unknown subcommand 'Foo'. Try XINFO HELP."},

		{req("keys *"), "keys", ErrUnsupported, "ERR unsupported command 'keys': it acts on the keys of every server, which the proxy does not gather yet"},
		{req("script debug yes"), "script|debug", ErrUnsupported,
			"ERR unsupported command 'script|debug': server connections are shared by many clients, so their state cannot be changed through the proxy"},
		{req("FUNCTION STATS"), "function|stats", ErrUnsupported,
			"ERR unsupported command 'function|stats': the command has no key to choose a server by"},
		{req("client pause 10"), "client|pause", ErrUnsupported,
			"ERR unsupported command 'client|pause': server administration is not supported through the proxy; connect to the server directly"},
		{req("CLIENT tracking on"), "client|tracking", ErrUnsupported,
			"ERR unsupported command 'client|tracking': client-side caching (tracking) needs a server connection of the client's own, which the proxy does not give"},
		{req("client nosuch"), "client", ErrUnknownCommand, "ERR unknown subcommand 'nosuch'. Try CLIENT HELP."},
		{req("client"), "client", ErrWrongArity, "ERR wrong number of arguments for 'client' command"},
		{req("client setname"), "client|setname", ErrWrongArity, "ERR wrong number of arguments for 'client|setname' command"},
		{req("memory stats"), "memory|stats", ErrUnsupported,
			"ERR unsupported command 'memory|stats': server administration is not supported through the proxy; connect to the server directly"},
		{req("subscribe"), "subscribe", ErrWrongArity, "ERR wrong number of arguments for 'subscribe' command"},
		{req("publish ch"), "publish", ErrWrongArity, "ERR wrong number of arguments for 'publish' command"},
	}
	for _, tc := range tests {
		c, err := Resolve(tc.args)
		name := ""
		if c != nil {
			name = c.Name
		}
		if err == nil || name != tc.name || !errors.Is(err, tc.class) || err.Error() != tc.msg {
			t.Errorf("Resolve(%q) = %s, %q; want %s, %q (%v)", tc.args, name, err, tc.name, tc.msg, tc.class)
		}
	}
}

func TestNoAllocations(t *testing.T) {
	get := req("GET key")
	mset := req("MSET a 1 b 2 c 3 d 4 e 5 f 6 g 7 h 8 i 9 j 10")
	eval := req("EVAL script 2 a b x")
	obj := req("OBJECT ENCODING key")
	xread := req("XREAD COUNT 1 STREAMS a b 0 0")
	dst := make([]int, 0, 16)
	for name, f := range map[string]func(){
		"Lookup":      func() { _ = Lookup(get[0]) },
		"Lookup miss": func() { _ = Lookup([]byte("NOSUCHCOMMAND")) },
		"Sub":         func() { _ = Lookup(obj[0]).Sub(obj[1]) },
		"CheckArity":  func() { _ = Lookup(get[0]).CheckArity(2) },
		"Resolve GET": func() { _, _ = Resolve(get) },
		"Resolve OBJECT ENCODING": func() {
			_, _ = Resolve(obj)
		},
		"Resolve+KeyIndexes GET": func() {
			c, _ := Resolve(get)
			dst, _ = c.KeyIndexes(get, dst[:0])
		},
		"Resolve+KeyIndexes MSET": func() {
			c, _ := Resolve(mset)
			dst, _ = c.KeyIndexes(mset, dst[:0])
		},
		"Resolve+KeyIndexes EVAL": func() {
			c, _ := Resolve(eval)
			dst, _ = c.KeyIndexes(eval, dst[:0])
		},
		"Resolve+KeyIndexes XREAD": func() {
			c, _ := Resolve(xread)
			dst, _ = c.KeyIndexes(xread, dst[:0])
		},
		// Errors made once per command cost nothing either.
		"wrong arity": func() { _, _ = Resolve(req1) },
		"unsupported": func() { _, _ = Resolve(req2) },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocations, want 0", name, n)
		}
	}
}

var (
	req1 = req("get")
	req2 = req("keys a")
)
