package resp

// parseInt reads a decimal integer with the rules of Redis's string2ll
// (src/util.c), which Redis uses for every length in a request: an optional
// '-', then "0" alone or a digit 1-9 followed by digits; no '+', no spaces,
// no leading zeros, no "-0", at most 21 bytes, and no overflow of int64.
// Matching it exactly means a length Redis rejects is rejected here too.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 21 {
		return 0, false
	}
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := false
	if b[0] == '-' {
		neg = true
		b = b[1:]
		if len(b) == 0 {
			return 0, false
		}
	}
	if b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		if v > (1<<64-1)/10 {
			return 0, false
		}
		v *= 10
		d := uint64(c - '0')
		if v > 1<<64-1-d {
			return 0, false
		}
		v += d
	}
	if neg {
		if v > 1<<63 {
			return 0, false
		}
		return -int64(v), true
	}
	if v > 1<<63-1 {
		return 0, false
	}
	return int64(v), true
}

// ParseInt reads a decimal integer argument as Redis reads one (string2ll,
// see parseInt): "+1", " 1", "01" and "-0" are not integers.
func ParseInt(b []byte) (int64, bool) { return parseInt(b) }
