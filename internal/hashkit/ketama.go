package hashkit

import (
	"crypto/md5"
	"encoding/binary"
	"math"
	"slices"
	"strconv"
)

// ketama constants (nc_ketama.c).
const (
	ketamaPointsPerServer = 160
	// ketamaMaxHostLen is the size of the buffer twemproxy 0.5.0 formats
	// "<name>-<i>" into; longer strings are cut to ketamaMaxHostLen-1 bytes.
	ketamaMaxHostLen = 273
)

// ketamaPoints returns how many continuum points twemproxy's ketama_update
// gives a live server of weight w when the live servers number nlive and
// weigh total, reproducing its float arithmetic step by step (checked
// against the 0.5.0 binary's code):
//
//	pct = (float)weight / (float)total_weight
//	points = floorf((float)(pct * 160 / 4 * (float)nlive + 0.0000000001)) * 4
//
// Every product is rounded to float32 (the /4 is exact); the 1e-10 literal
// is a double, so the sum is done in double and rounded back to float;
// floorf and the final *4 are float; the result is truncated to an integer.
// Each step is written as an explicit conversion so that Go can neither keep
// extra precision nor fuse the operations. Hence 25 equal servers get 156
// points each (float(1/25)*40*25 is just under 40), and weights 100000:1
// give the light server 0.
func ketamaPoints(w, total uint32, nlive int) uint32 {
	pct := float32(float32(w) / float32(total))
	x := float32(pct * ketamaPointsPerServer)
	x = float32(x / 4)
	x = float32(x * float32(nlive))
	d := float64(x) + 0.0000000001
	x = float32(d)
	x = float32(math.Floor(float64(x)))
	x = float32(x * 4)
	return uint32(int64(x))
}

// buildKetama builds the continuum: for each live server in twemproxy's
// server order, for i in 0..points/4-1, the MD5 of "<name>-<i>" gives four points
// (digest bytes 4a..4a+3, little-endian). Points are sorted by value; equal
// values keep insertion order (twemproxy's server order, then i), which is what
// glibc's qsort — a stable merge sort for arrays this small — does with
// twemproxy's value-only comparator. It matters: a tie decides which server
// owns the whole arc ending at that value.
func buildKetama(nodes []Node, live []bool, order []int) (points []uint32, owner []int32) {
	var total uint32
	nlive := 0
	for i, n := range nodes {
		if live[i] {
			total += uint32(n.Weight)
			nlive++
		}
	}
	if nlive == 0 {
		return nil, nil
	}
	counts := make([]uint32, len(nodes))
	npoints := 0
	for i, n := range nodes {
		if live[i] {
			counts[i] = ketamaPoints(uint32(n.Weight), total, nlive) / 4 * 4
			npoints += int(counts[i])
		}
	}
	// Sort (value, insertion sequence) pairs packed in a uint64: an
	// unstable sort of unique keys gives the stable order.
	keyed := make([]uint64, 0, npoints)
	seqOwner := make([]int32, 0, npoints)
	var buf [ketamaMaxHostLen + 24]byte
	for _, i := range order {
		n := nodes[i]
		for h := range counts[i] / 4 {
			s := ketamaHost(buf[:0], n.Name, h)
			d := md5.Sum(s)
			for a := range 4 {
				v := binary.LittleEndian.Uint32(d[4*a:])
				keyed = append(keyed, uint64(v)<<32|uint64(len(seqOwner)))
				seqOwner = append(seqOwner, int32(i))
			}
		}
	}
	slices.Sort(keyed)
	points = make([]uint32, len(keyed))
	owner = make([]int32, len(keyed))
	for j, k := range keyed {
		points[j] = uint32(k >> 32)
		owner[j] = seqOwner[uint32(k)]
	}
	return points, owner
}

// ketamaHost appends what twemproxy's snprintf(host, 273, "%.*s-%u", name,
// i) leaves in its buffer: the name up to its first NUL byte ("%.*s" stops
// there), '-', the decimal index, cut to 272 bytes.
func ketamaHost(dst []byte, name string, i uint32) []byte {
	for j := 0; j < len(name) && name[j] != 0; j++ {
		dst = append(dst, name[j])
	}
	dst = append(dst, '-')
	dst = strconv.AppendUint(dst, uint64(i), 10)
	if len(dst) > ketamaMaxHostLen-1 {
		dst = dst[:ketamaMaxHostLen-1]
	}
	return dst
}

// lookupKetama is ketama_dispatch: the first point >= h, wrapping to the
// first point when h is above them all. The search halves the range without
// a data-dependent branch: on random hashes a mispredicted branch per step
// costs more than the arithmetic (about 3x on a 100-server ring).
func (r *Ring) lookupKetama(h uint32) int {
	p := r.points
	if len(p) == 0 {
		return -1
	}
	base, n := 0, len(p)
	for n > 1 {
		half := n >> 1
		// below is 1 when p[base+half-1] < h: the sign of the 64-bit
		// difference of two uint32s.
		below := (uint64(p[base+half-1]) - uint64(h)) >> 63
		base += half & -int(below)
		n -= half
	}
	// p[base-1] < h (or base is 0); p[base] decides.
	if p[base] < h {
		base++
		if base == len(p) {
			base = 0
		}
	}
	return int(r.owner[base])
}
