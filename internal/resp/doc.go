// Package resp parses and encodes RESP2, the Redis protocol, as pure
// functions over []byte for the proxy's hot path.
//
// Three parts, each free of I/O and of allocation in steady state:
//
//   - ParseRequest reads one client command (multibulk or inline) into a
//     reusable Request, with Redis 7's own rules and error texts, so that a
//     client sees the same protocol errors through the proxy as it would
//     talking to redis-server directly.
//   - ReplyScanner finds where one server reply ends, of any RESP2 type and
//     nesting depth, without building it: the proxy forwards reply bytes as
//     they are and only looks inside the few it merges (ArrayElements,
//     ParseInteger).
//   - The Append functions encode replies and commands like strconv.Append*.
//
// Both parsers are resumable: when a buffer ends inside a message they
// return ErrIncomplete and remember how far they got, so a message arriving
// in many small reads is scanned once in total, not once per read.
package resp
