//go:build linux

package main

import "github.com/shardproxy/shardproxy/internal/resp"

// command is one row of the prototype's command table: what the data path
// needs to know to route a request or answer it itself.
type command struct {
	name  string // lower case
	arity int    // Redis's: n means exactly n words, -n at least n
	key   int    // index of the key in the arguments; 0: answered by the proxy
	// answer appends the proxy's own reply (commands with key 0).
	answer func(dst []byte, args [][]byte) []byte
}

// commands is all the prototype serves: the two commands of the benchmark
// and PING for probes. Anything else gets an error reply.
var commands = [...]command{
	{name: "get", arity: 2, key: 1},
	{name: "set", arity: -3, key: 1},
	{name: "ping", arity: -1, answer: ping},
}

// lookup finds name (any case) in the table.
func lookup(name []byte) *command {
	for i := range commands {
		if equalFold(name, commands[i].name) {
			return &commands[i]
		}
	}
	return nil
}

// arityOK reports whether n words (the name included) fit c's arity.
func (c *command) arityOK(n int) bool {
	if c.arity >= 0 {
		return n == c.arity
	}
	return n >= -c.arity
}

func ping(dst []byte, args [][]byte) []byte {
	switch len(args) {
	case 1:
		return resp.AppendSimple(dst, "PONG")
	case 2:
		return resp.AppendBulk(dst, args[1])
	}
	return resp.AppendError(dst, "ERR wrong number of arguments for 'ping' command")
}

// equalFold compares an ASCII word with a lower-case name without
// allocating.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range b {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
