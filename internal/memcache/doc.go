// Package memcache parses and encodes memcached's text protocol, classic
// and meta commands, as pure functions over []byte for the proxy's hot
// path.
//
// Three parts, each free of I/O and of allocation in steady state:
//
//   - ParseRequest reads one client request into a reusable Request and
//     checks it exactly as memcached 1.6.18 does (proto_text.c), so that a
//     malformed request gets memcached's own reply, and the proxy knows how
//     many bytes memcached would skip to read the next command. A request
//     in memcached's binary protocol is recognised by its first byte and
//     refused with a binary error response (ErrBinaryProtocol,
//     AppendBinaryError).
//   - ReplyScanner finds where one server reply ends, given the command it
//     answers, without building it; ValueBlocks and IsErrorReply look
//     inside the retrieval replies the proxy merges.
//   - The Append functions encode the fragments and replies the proxy
//     makes itself; StripQuiet and QuietSuppressed let it forward meta
//     requests without q and drop what q would have hidden.
//
// Both parsers are resumable: when a buffer ends inside a message they
// return ErrIncomplete and remember how far they got, so a data block
// arriving in many small reads is jumped over once, not rescanned.
package memcache
