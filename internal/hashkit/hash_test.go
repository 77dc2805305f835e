package hashkit

import (
	"hash/crc32"
	"hash/fnv"
	"math/rand/v2"
	"testing"
)

// Values from nutcracker 0.5.0's own hash functions (see testdata/oracle),
// in HashNames order.
var knownHashes = []struct {
	key  string
	want [12]uint32
}{
	{"", [12]uint32{0, 0xd98c1dd4, 0, 0, 0, 0x84222325, 0x84222325, 0x811c9dc5, 0x811c9dc5, 0, 0, 0xdeadbefc}},
	{"foo", [12]uint32{0x238678dd, 0xdb18bdac, 0x0c3caf96, 0x00000c73, 0x8c736521, 0x6ba13533, 0xfed9d577, 0x408f5e13, 0xa9f37ed7, 0x76d4d427, 0xc4e0338f, 0x99f84f99}},
	{"123456789", [12]uint32{0xc66b58c5, 0x94e7f925, 0x869031c3, 0x00004bf4, 0xcbf43926, 0x2bf916d6, 0x23c6cdfc, 0x24148816, 0xbb86b11c, 0xe4fc1670, 0xb7760690, 0x19777af6}},
	{"\x80", [12]uint32{0xc31d4e27, 0x7edd398d, 0x00009188, 0x00003fba, 0x3fba6cad, 0x79fe485f, 0x79fdec5f, 0xfaf3a29f, 0x04f3b29f, 0xd6f4cb32, 0x90556245, 0xb16fde48}},
	{"\xff", [12]uint32{0xae65a494, 0xd44f5900, 0x00001ef0, 0x00007f00, 0xff000000, 0x79fe4820, 0x79fe466e, 0xfaf3a2e0, 0xf9f3a14e, 0x02a6dba8, 0xdb530a9c, 0xe1964da8}},
	{"ab\x80", [12]uint32{0xc8dd56b0, 0x610ba2d6, 0x7c74509b, 0x00000c27, 0x0c27f200, 0x94505228, 0xfabe929e, 0xbc63d0a8, 0xd8b8027e, 0x584d72a3, 0xbf8a58ae, 0x6dd44e68}},
	{"ab\xff", [12]uint32{0x0603d118, 0x82abbd74, 0x7c74dfe3, 0x00004c9d, 0xcc9d9ead, 0x94505257, 0xfabe022f, 0xbc63d0d7, 0xc3b7e16f, 0x75dc9fd6, 0xec9082b2, 0xe9af676b}},
	{"abcd\xff", [12]uint32{0x672d3535, 0x846fdc0a, 0x9da81c12, 0x0000155d, 0x955da23f, 0x9e2cc5d0, 0x89dc5ac6, 0xf1d03ed0, 0xa56459e6, 0x0ede7e6e, 0x0da81dc1, 0x510adf5e}},
	{"\x00", [12]uint32{0, 0xad85b893, 0, 0x00005202, 0xd202ef8d, 0x8601b7df, 0x8601b7df, 0x050c5d1f, 0x050c5d1f, 0, 0xa46d9286, 0x8503b213}},
}

func TestHashKnownValues(t *testing.T) {
	for _, tc := range knownHashes {
		for i, name := range HashNames() {
			h, _ := HashByName(name)
			if got := h([]byte(tc.key)); got != tc.want[i] {
				t.Errorf("%s(%q) = %#08x, want %#08x", name, tc.key, got, tc.want[i])
			}
		}
	}
}

func TestHashByName(t *testing.T) {
	names := HashNames()
	if len(names) != 12 {
		t.Fatalf("%d hash names", len(names))
	}
	for _, name := range names {
		if h, ok := HashByName(name); !ok || h == nil {
			t.Errorf("HashByName(%q) missing", name)
		}
	}
	for _, name := range []string{"", "MD5", "fnv1a-64", "crc64", "murmur3", " md5"} {
		if _, ok := HashByName(name); ok {
			t.Errorf("HashByName(%q) accepted", name)
		}
	}
}

// The quirks: each twemproxy hash against the textbook algorithm it
// departs from.
func TestHashQuirks(t *testing.T) {
	ascii := []byte("The quick brown fox")
	high := []byte("caf\xc3\xa9") // UTF-8 "café": bytes >= 0x80

	std := func(h interface {
		Write([]byte) (int, error)
		Sum32() uint32
	}, k []byte) uint32 {
		h.Write(k)
		return h.Sum32()
	}
	// fnv1_32 / fnv1a_32 are textbook FNV for ASCII, not for high bytes
	// (sign extension).
	for _, tc := range []struct {
		name string
		fn   HashFunc
		std  func([]byte) uint32
	}{
		{"fnv1_32", FNV1_32, func(k []byte) uint32 { return std(fnv.New32(), k) }},
		{"fnv1a_32", FNV1a_32, func(k []byte) uint32 { return std(fnv.New32a(), k) }},
		{"fnv1_64", FNV1_64, func(k []byte) uint32 { h := fnv.New64(); h.Write(k); return uint32(h.Sum64()) }},
		{"one_at_a_time", OneAtATime, unsignedOneAtATime},
	} {
		if tc.fn(ascii) != tc.std(ascii) {
			t.Errorf("%s differs from the unsigned algorithm on ASCII", tc.name)
		}
		if tc.fn(high) == tc.std(high) {
			t.Errorf("%s does not sign-extend bytes >= 0x80", tc.name)
		}
	}
	// fnv1a_64's 32-bit arithmetic with truncated 64-bit constants equals
	// 64-bit FNV-1a truncated, except for the sign extension.
	fnv1a64 := func(k []byte) uint32 { h := fnv.New64a(); h.Write(k); return uint32(h.Sum64()) }
	if got := FNV1a_64([]byte("foo")); got != 0xfed9d577 || got != fnv1a64([]byte("foo")) {
		t.Errorf("fnv1a_64(foo) = %#x", got)
	}
	if FNV1a_64(high) == fnv1a64(high) {
		t.Error("fnv1a_64 does not sign-extend bytes >= 0x80")
	}
	// crc32 keeps 15 bits of the standard CRC; crc32a is the standard CRC.
	if CRC32([]byte("123456789")) != 0x4bf4 || CRC32a([]byte("123456789")) != 0xcbf43926 {
		t.Error("crc32 check values")
	}
	// hsieh: a 3-byte tail's last byte is signed; the rest unsigned.
	if Hsieh([]byte("ab\x80")) == unsignedHsiehTail3([]byte("ab\x80")) {
		t.Error("hsieh does not sign-extend the third byte of a 3-byte tail")
	}
	if Hsieh([]byte("ab\x7f")) != unsignedHsiehTail3([]byte("ab\x7f")) {
		t.Error("hsieh tail reference broken")
	}

	r := rand.New(rand.NewPCG(1, 1))
	for range 2000 {
		k := make([]byte, r.IntN(100))
		for i := range k {
			k[i] = byte(r.Uint32())
		}
		if got := CRC32(k); got > 0x7fff {
			t.Fatalf("crc32 = %#x: more than 15 bits", got)
		}
		if got, want := CRC32a(k), crc32.ChecksumIEEE(k); got != want {
			t.Fatalf("crc32a(%x) = %#x, IEEE %#x", k, got, want)
		}
		// crc16's low 16 bits are CRC-16/XMODEM, bit by bit.
		if got, want := uint16(CRC16(k)), bitwiseXMODEM(k); got != want {
			t.Fatalf("crc16(%x) low bits %#x, XMODEM %#x", k, got, want)
		}
	}
	// …and its high bits are not masked.
	if CRC16([]byte("123456789"))>>16 == 0 {
		t.Error("crc16 high bits masked")
	}
}

func unsignedOneAtATime(k []byte) uint32 {
	var h uint32
	for _, b := range k {
		h += uint32(b)
		h += h << 10
		h ^= h >> 6
	}
	h += h << 3
	h ^= h >> 11
	h += h << 15
	return h
}

// unsignedHsiehTail3 is SuperFastHash of a 3-byte key read unsigned.
func unsignedHsiehTail3(k []byte) uint32 {
	h := uint32(k[0]) | uint32(k[1])<<8
	h ^= h << 16
	h ^= uint32(k[2]) << 18
	h += h >> 11
	h ^= h << 3
	h += h >> 5
	h ^= h << 4
	h += h >> 17
	h ^= h << 25
	h += h >> 6
	return h
}

func bitwiseXMODEM(k []byte) uint16 {
	var crc uint16
	for _, b := range k {
		crc ^= uint16(b) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
