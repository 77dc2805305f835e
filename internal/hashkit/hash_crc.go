package hashkit

import "hash/crc32"

// CRC16 is twemproxy's hash_crc16: CRC-16/XMODEM (polynomial 0x1021, initial
// value 0, not reflected) computed in a uint32 that is never masked to 16
// bits.
//
// Quirk: each step shifts the whole uint32 left by 8, so the bits above 16
// keep the history of the shifted-out bytes; only the low 16 bits are the
// real CRC ("123456789" gives 0x869031c3, whose low half 0x31c3 is the
// XMODEM check value). The empty key hashes to 0.
func CRC16(key []byte) uint32 {
	var crc uint32
	for _, b := range key {
		crc = crc<<8 ^ uint32(crc16Table[byte(crc>>8)^b])
	}
	return crc
}

// crc16Table is the CRC-16/XMODEM table, computed once; it is never written
// after initialisation.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// CRC32 is twemproxy's hash_crc32, the libmemcached variant: the standard
// (IEEE, reflected) CRC-32 of the key, then bits 16..30 only.
//
// Quirk: it returns ((~crc)>>16)&0x7fff, a 15-bit value
// ("123456789" gives 0x4bf4). The empty key hashes to 0.
func CRC32(key []byte) uint32 {
	return crc32.ChecksumIEEE(key) >> 16 & 0x7fff
}

// CRC32a is twemproxy's hash_crc32a: the standard CRC-32 (IEEE 802.3, as
// zlib and Go's hash/crc32), all 32 bits ("123456789" gives 0xcbf43926).
func CRC32a(key []byte) uint32 {
	return crc32.ChecksumIEEE(key)
}
