package hashkit

// buildModula returns the running sum of the live servers' weights, in
// twemproxy's server order (TwemproxyOrder). twemproxy's modula_update builds an array with one
// slot per unit of weight (server i fills weight_i consecutive slots) and
// modula_dispatch takes slot[hash % total]; the running sums describe the
// same slots without allocating one per unit of weight.
func buildModula(nodes []Node, liveIdx []int32) []uint32 {
	cum := make([]uint32, len(liveIdx))
	var sum uint32
	for j, i := range liveIdx {
		sum += uint32(nodes[i].Weight)
		cum[j] = sum
	}
	return cum
}

// lookupModula is modula_dispatch: slot h % total_live_weight.
func (r *Ring) lookupModula(h uint32) int {
	cum := r.cumWeight
	if len(cum) == 0 {
		return -1
	}
	s := h % cum[len(cum)-1]
	// The first live server whose running sum exceeds s owns slot s.
	lo, hi := 0, len(cum)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if cum[mid] <= s {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return int(r.liveIdx[lo])
}
