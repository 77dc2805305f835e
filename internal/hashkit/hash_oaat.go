package hashkit

// OneAtATime is Bob Jenkins' one-at-a-time hash (twemproxy
// hash_one_at_a_time, from libmemcached).
//
// Quirk: twemproxy reads the key as signed char, so on x86 a byte >= 0x80 is
// sign-extended before it is added (0x80 adds 0xffffff80). The empty key
// hashes to 0.
func OneAtATime(key []byte) uint32 {
	var h uint32
	for _, b := range key {
		h += uint32(int8(b))
		h += h << 10
		h ^= h >> 6
	}
	h += h << 3
	h ^= h >> 11
	h += h << 15
	return h
}
