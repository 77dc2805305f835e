package hashkit

import "encoding/binary"

// Murmur is MurmurHash2 as twemproxy's hash_murmur has it (Debian builds
// 0.5.0 with the endian-neutral variant, which gives the same values on
// little-endian machines).
//
// Quirk: the seed depends on the length: seed = 0xdeadbeef*len and the
// initial state is seed^len. Blocks are read little-endian; tail bytes are
// unsigned. The empty key hashes to 0.
func Murmur(key []byte) uint32 {
	const m = 0x5bd1e995
	n := uint32(len(key))
	h := 0xdeadbeef*n ^ n
	for len(key) >= 4 {
		k := binary.LittleEndian.Uint32(key)
		k *= m
		k ^= k >> 24
		k *= m
		h *= m
		h ^= k
		key = key[4:]
	}
	switch len(key) {
	case 3:
		h ^= uint32(key[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(key[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(key[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
