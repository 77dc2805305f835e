package hashkit

// Twemproxy's FNV constants (nc_fnv.c).
const (
	fnv64Init  = 0xcbf29ce484222325
	fnv64Prime = 0x100000001b3
	fnv32Init  = 2166136261
	fnv32Prime = 16777619
)

// FNV1_64 is twemproxy's hash_fnv1_64: 64-bit FNV-1 (multiply, then xor)
// truncated to its low 32 bits.
//
// Quirk: bytes are signed char, sign-extended to 64 bits before the xor, so
// a byte >= 0x80 flips the high bits too. (Only the low 32 bits are returned
// and they never depend on the high ones, so this equals 32-bit FNV-1 with
// the truncated constants.)
func FNV1_64(key []byte) uint32 {
	h := uint64(fnv64Init)
	for _, b := range key {
		h *= fnv64Prime
		h ^= uint64(int64(int8(b)))
	}
	return uint32(h)
}

// FNV1a_64 is twemproxy's hash_fnv1a_64, the default `hash:`.
//
// Quirks: twemproxy computes it in 32 bits with the 64-bit offset basis and
// prime truncated (0x84222325 and 0x1b3) — which yields exactly the low 32
// bits of real 64-bit FNV-1a, since the low half of a product depends only
// on the low halves — and each byte is a signed char, sign-extended, so
// bytes >= 0x80 differ from textbook FNV-1a. fnv1a_64("foo") = 0xfed9d577.
func FNV1a_64(key []byte) uint32 {
	h := uint32(fnv64Init & 0xffffffff)
	for _, b := range key {
		h ^= uint32(int8(b))
		h *= fnv64Prime & 0xffffffff
	}
	return h
}

// FNV1_32 is twemproxy's hash_fnv1_32: 32-bit FNV-1 (multiply, then xor).
//
// Quirk: each byte is a signed char sign-extended to 32 bits.
func FNV1_32(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h *= fnv32Prime
		h ^= uint32(int8(b))
	}
	return h
}

// FNV1a_32 is twemproxy's hash_fnv1a_32: 32-bit FNV-1a (xor, then
// multiply).
//
// Quirk: each byte is a signed char sign-extended to 32 bits.
func FNV1a_32(key []byte) uint32 {
	h := uint32(fnv32Init)
	for _, b := range key {
		h ^= uint32(int8(b))
		h *= fnv32Prime
	}
	return h
}
