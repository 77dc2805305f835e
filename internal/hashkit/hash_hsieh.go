package hashkit

import "encoding/binary"

// Hsieh is Paul Hsieh's SuperFastHash as twemproxy's hash_hsieh has it.
//
// Quirks: the empty key returns 0 without the final avalanche; the 16-bit
// reads are little-endian; for a 3-byte tail the third byte is read as a
// signed char, so a byte >= 0x80 is sign-extended before the <<18 and sets
// bits 26..31 as well; a 1-byte tail is read unsigned.
func Hsieh(key []byte) uint32 {
	if len(key) == 0 {
		return 0
	}
	var h uint32
	for len(key) >= 4 {
		h += uint32(binary.LittleEndian.Uint16(key))
		t := uint32(binary.LittleEndian.Uint16(key[2:]))<<11 ^ h
		h = h<<16 ^ t
		h += h >> 11
		key = key[4:]
	}
	switch len(key) {
	case 3:
		h += uint32(binary.LittleEndian.Uint16(key))
		h ^= h << 16
		h ^= uint32(int8(key[2])) << 18
		h += h >> 11
	case 2:
		h += uint32(binary.LittleEndian.Uint16(key))
		h ^= h << 11
		h += h >> 17
	case 1:
		h += uint32(key[0])
		h ^= h << 10
		h += h >> 1
	}
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}
