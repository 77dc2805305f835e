package hashkit

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sort"
	"testing"
)

// hashSeeds are the corpus every fuzz target starts from: the empty key,
// every tail length of the block hashes, high and NUL bytes, a memcached
// maximum-length key and a 64 KiB one.
func hashSeeds() [][]byte {
	seeds := [][]byte{{}, {0}, {0x80}, {0xff}, {'a', 'b'}, {'a', 'b', 0x80}, {0, 0, 0}, []byte("foo"),
		[]byte("123456789"), []byte("user:{1000}:name"), []byte("a$b$c"), []byte("caf\xc3\xa9")}
	for n := 1; n <= 13; n++ {
		seeds = append(seeds, bytes.Repeat([]byte{0xfe}, n))
	}
	big := make([]byte, 65536)
	for i := range big {
		big[i] = byte(i * 7)
	}
	return append(seeds, bytes.Repeat([]byte("k"), 250), big)
}

func FuzzHash(f *testing.F) {
	for _, s := range hashSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key []byte) {
		orig := bytes.Clone(key)
		for _, name := range HashNames() {
			h, _ := HashByName(name)
			if a, b := h(key), h(bytes.Clone(key)); a != b {
				t.Fatalf("%s not deterministic: %#x, %#x", name, a, b)
			}
		}
		if !bytes.Equal(key, orig) {
			t.Fatal("a hash modified its key")
		}
		if CRC32(key) > 0x7fff {
			t.Fatal("crc32 above 15 bits")
		}
		if CRC32a(key) != crc32.ChecksumIEEE(key) {
			t.Fatal("crc32a is not CRC-32")
		}
		if uint16(CRC16(key)) != bitwiseXMODEM(key) {
			t.Fatal("crc16 low bits are not XMODEM")
		}
		if got, want := Jenkins(key), referenceJenkins(key); got != want {
			t.Fatalf("jenkins(%x) = %#x, byte-wise lookup3 %#x", key, got, want)
		}
		if d := md5.Sum(key); MD5(key) != binary.LittleEndian.Uint32(d[:]) {
			t.Fatal("md5 is not the digest's first 4 bytes, little-endian")
		}
	})
}

func FuzzHashTagKey(f *testing.F) {
	for _, s := range hashSeeds() {
		f.Add(s, byte('{'), byte('}'))
		f.Add(s, byte('$'), byte('$'))
	}
	f.Fuzz(func(t *testing.T, key []byte, open, close byte) {
		tag := string([]byte{open, close})
		if got, want := HashTagKey(key, tag), referenceTag(key, open, close); !bytes.Equal(got, want) {
			t.Fatalf("HashTagKey(%q, %q) = %q, want %q", key, tag, got, want)
		}
	})
}

// referenceTag is server_pool_idx's hash tag loop, index by index.
func referenceTag(key []byte, open, close byte) []byte {
	for i := range key {
		if key[i] != open {
			continue
		}
		for j := i + 1; j < len(key); j++ {
			if key[j] == close {
				if j-i > 1 {
					return key[i+1 : j]
				}
				return key
			}
		}
		return key
	}
	return key
}

// referenceJenkins is lookup3's hashlittle byte path with its fall-through
// tail switch, initval 13.
func referenceJenkins(k []byte) uint32 {
	a := 0xdeadbeef + uint32(len(k)) + 13
	b, c := a, a
	n := len(k)
	for n > 12 {
		a += uint32(k[0]) | uint32(k[1])<<8 | uint32(k[2])<<16 | uint32(k[3])<<24
		b += uint32(k[4]) | uint32(k[5])<<8 | uint32(k[6])<<16 | uint32(k[7])<<24
		c += uint32(k[8]) | uint32(k[9])<<8 | uint32(k[10])<<16 | uint32(k[11])<<24
		a, b, c = jenkinsMix(a, b, c)
		n -= 12
		k = k[12:]
	}
	switch n {
	case 12:
		c += uint32(k[11]) << 24
		fallthrough
	case 11:
		c += uint32(k[10]) << 16
		fallthrough
	case 10:
		c += uint32(k[9]) << 8
		fallthrough
	case 9:
		c += uint32(k[8])
		fallthrough
	case 8:
		b += uint32(k[7]) << 24
		fallthrough
	case 7:
		b += uint32(k[6]) << 16
		fallthrough
	case 6:
		b += uint32(k[5]) << 8
		fallthrough
	case 5:
		b += uint32(k[4])
		fallthrough
	case 4:
		a += uint32(k[3]) << 24
		fallthrough
	case 3:
		a += uint32(k[2]) << 16
		fallthrough
	case 2:
		a += uint32(k[1]) << 8
		fallthrough
	case 1:
		a += uint32(k[0])
	case 0:
		return c
	}
	return jenkinsFinal(a, b, c)
}

// FuzzRingLookup builds a ring from fuzzed servers (data: byte 0 picks the
// distribution, then two bytes per server: weight, and liveness in the low
// bit) and checks Lookup against slow references.
func FuzzRingLookup(f *testing.F) {
	f.Add([]byte{0, 1, 1, 1, 1, 1, 1}, uint32(0))
	f.Add([]byte{0, 1, 1}, ^uint32(0))
	f.Add([]byte{0, 255, 1, 1, 1}, uint32(12345))
	f.Add([]byte{0, 3, 0, 3, 0}, uint32(1))
	f.Add([]byte{1, 2, 1, 1, 0, 3, 1}, uint32(7))
	f.Add([]byte{2, 5, 1, 9, 0, 1, 1}, uint32(99))
	f.Add(append([]byte{0}, bytes.Repeat([]byte{1, 1}, 64)...), uint32(0x80000000))
	f.Fuzz(func(t *testing.T, data []byte, h uint32) {
		if len(data) < 3 {
			return
		}
		d := Distribution(data[0] % 3)
		var nodes []Node
		var live []bool
		anyLive := false
		for i := 1; i+1 < len(data) && len(nodes) < 64; i += 2 {
			nodes = append(nodes, Node{Name: fmt.Sprintf("s%d", len(nodes)), Weight: 1 + int(data[i]%16)})
			live = append(live, data[i+1]&1 == 1)
			anyLive = anyLive || data[i+1]&1 == 1
		}
		spec := Spec{Hash: FNV1a_64, Distribution: d, Rand: func() uint32 { return h }}
		r, err := NewRing(spec, nodes, live)
		if err != nil {
			t.Fatal(err)
		}
		got := r.Lookup(h)
		if !anyLive {
			if got != -1 || r.Pick(nil) != -1 {
				t.Fatalf("no live server: Lookup = %d", got)
			}
			return
		}
		if !live[got] {
			t.Fatalf("Lookup(%#x) = %d, not live", h, got)
		}
		var want int
		switch d {
		case Ketama:
			want = referenceKetama(nodes, live, h)
		case Modula:
			want = referenceModula(nodes, live, h)
		default:
			var idx []int
			for i, l := range live {
				if l {
					idx = append(idx, i)
				}
			}
			want = idx[h%uint32(len(idx))]
		}
		if got != want {
			t.Fatalf("%v Lookup(%#x) = %d, reference %d", d, h, got, want)
		}
	})
}

// referenceKetama builds the continuum the slow way (a stable sort of
// value/server pairs) and scans it linearly for the first point >= h.
func referenceKetama(nodes []Node, live []bool, h uint32) int {
	type point struct {
		value  uint32
		server int
	}
	var total uint32
	nlive := 0
	for i, n := range nodes {
		if live[i] {
			total += uint32(n.Weight)
			nlive++
		}
	}
	var pts []point
	for i, n := range nodes {
		if !live[i] {
			continue
		}
		for k := range ketamaPoints(uint32(n.Weight), total, nlive) / 4 {
			d := md5.Sum([]byte(fmt.Sprintf("%s-%d", n.Name, k)))
			for a := range 4 {
				pts = append(pts, point{binary.LittleEndian.Uint32(d[4*a:]), i})
			}
		}
	}
	sort.SliceStable(pts, func(i, j int) bool { return pts[i].value < pts[j].value })
	for _, p := range pts {
		if p.value >= h {
			return p.server
		}
	}
	return pts[0].server
}

// referenceModula expands twemproxy's one-slot-per-weight array.
func referenceModula(nodes []Node, live []bool, h uint32) int {
	var slots []int
	for i, n := range nodes {
		if live[i] {
			for range n.Weight {
				slots = append(slots, i)
			}
		}
	}
	return slots[h%uint32(len(slots))]
}
