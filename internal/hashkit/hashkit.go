// Package hashkit places keys on servers exactly as twemproxy (nutcracker)
// 0.5.0 does on x86-64: its twelve hash functions, the hash_tag rule, and the
// ketama, modula and random distributions.
//
// Placement must be bit-identical to nutcracker's, so every function here
// mirrors the C code in twemproxy's src/hashkit/ and src/nc_server.c,
// including its quirks (signed char keys, truncated constants, a 15-bit
// crc32). Each quirk is named in the doc comment of the function that keeps
// it.
//
// The package is pure: no I/O and no mutable package state. A [Ring] is
// immutable once built, so the proxy can publish it through an
// atomic.Pointer and rebuild it when servers are ejected; randomness for the
// random distribution is injected by the caller.
package hashkit

// HashFunc hashes a key to 32 bits.
type HashFunc func(key []byte) uint32

// hashes lists twemproxy's hash names (conf.c's hash_strings) in
// twemproxy's order.
var hashes = [...]struct {
	name string
	fn   HashFunc
}{
	{"one_at_a_time", OneAtATime},
	{"md5", MD5},
	{"crc16", CRC16},
	{"crc32", CRC32},
	{"crc32a", CRC32a},
	{"fnv1_64", FNV1_64},
	{"fnv1a_64", FNV1a_64},
	{"fnv1_32", FNV1_32},
	{"fnv1a_32", FNV1a_32},
	{"hsieh", Hsieh},
	{"murmur", Murmur},
	{"jenkins", Jenkins},
}

// HashByName returns the hash function twemproxy calls name (the pool's
// `hash:` key, e.g. "fnv1a_64"). The match is exact and case-sensitive, as in
// twemproxy's configuration parser.
func HashByName(name string) (HashFunc, bool) {
	for _, h := range hashes {
		if h.name == name {
			return h.fn, true
		}
	}
	return nil, false
}

// HashNames returns the twelve hash names HashByName accepts, in twemproxy's
// order.
func HashNames() []string {
	names := make([]string, len(hashes))
	for i, h := range hashes {
		names[i] = h.name
	}
	return names
}
