package hashkit

import (
	"crypto/md5"
	"encoding/binary"
)

// MD5 is twemproxy's hash_md5: the first four bytes of the key's MD5 digest
// read little-endian (digest[3]<<24 | … | digest[0]).
func MD5(key []byte) uint32 {
	d := md5.Sum(key)
	return binary.LittleEndian.Uint32(d[:4])
}
