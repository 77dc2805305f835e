package hashkit

import (
	"encoding/binary"
	"math/bits"
)

// jenkinsInitval is twemproxy's JENKINS_INITVAL.
const jenkinsInitval = 13

// Jenkins is Bob Jenkins' lookup3 hashlittle() with initval 13, as
// twemproxy's hash_jenkins has it (via libmemcached).
//
// On little-endian machines the C code's aligned and unaligned paths agree
// with this byte-wise reading. The empty key returns the initial state
// 0xdeadbeef+13 without the final mix; a key whose length is a multiple of
// 12 mixes its last block only with final().
func Jenkins(key []byte) uint32 {
	a := 0xdeadbeef + uint32(len(key)) + jenkinsInitval
	b, c := a, a
	if len(key) == 0 {
		return c
	}
	for len(key) > 12 {
		a += binary.LittleEndian.Uint32(key)
		b += binary.LittleEndian.Uint32(key[4:])
		c += binary.LittleEndian.Uint32(key[8:])
		a, b, c = jenkinsMix(a, b, c)
		key = key[12:]
	}
	// The last 1..12 bytes, zero-padded, added as three little-endian words.
	var tail [12]byte
	copy(tail[:], key)
	a += binary.LittleEndian.Uint32(tail[0:])
	b += binary.LittleEndian.Uint32(tail[4:])
	c += binary.LittleEndian.Uint32(tail[8:])
	return jenkinsFinal(a, b, c)
}

// jenkinsMix is lookup3's mix().
func jenkinsMix(a, b, c uint32) (uint32, uint32, uint32) {
	a -= c
	a ^= bits.RotateLeft32(c, 4)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 6)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 8)
	b += a
	a -= c
	a ^= bits.RotateLeft32(c, 16)
	c += b
	b -= a
	b ^= bits.RotateLeft32(a, 19)
	a += c
	c -= b
	c ^= bits.RotateLeft32(b, 4)
	b += a
	return a, b, c
}

// jenkinsFinal is lookup3's final(); only c is returned.
func jenkinsFinal(a, b, c uint32) uint32 {
	c ^= b
	c -= bits.RotateLeft32(b, 14)
	a ^= c
	a -= bits.RotateLeft32(c, 11)
	b ^= a
	b -= bits.RotateLeft32(a, 25)
	c ^= b
	c -= bits.RotateLeft32(b, 16)
	a ^= c
	a -= bits.RotateLeft32(c, 4)
	b ^= a
	b -= bits.RotateLeft32(a, 14)
	c ^= b
	c -= bits.RotateLeft32(b, 24)
	return c
}
