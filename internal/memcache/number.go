package memcache

// memcached reads every number of a command line with safe_strtol,
// safe_strtoul or safe_strtoull (util.c), which wrap C's strtol/strtoul on
// an LP64 system. Their rules, all confirmed against memcached 1.6.18:
//
//   - leading C whitespace (\t \v \f \r; a token holds no ' ' or '\n') and
//     one '+' or '-' are accepted, then at least one decimal digit;
//     leading zeros are fine ("01");
//   - the number may be followed by whitespace and then anything: "1\tjunk"
//     reads as 1;
//   - strtol's range is that of int64; safe_strtol then truncates to int32,
//     so a data length of 4294967297 means 1 byte;
//   - strtoul wraps a '-' number modulo 2^64, and safe_strtoul(l) refuses it
//     only if the result is negative as an int64 and a '-' was read: "-0"
//     and even "-18446744073709551615" (= 1) pass; safe_strtoul then
//     truncates to uint32, so flags 4294967296 are stored as 0.
//
// Mirroring this exactly matters for the data length: the proxy must frame
// a storage command the way the server will.

// isCSpace reports whether c is whitespace for C's isspace.
func isCSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

// scanNumber reads what strtol and strtoul read: whitespace, a sign and
// decimal digits. It returns the magnitude, whether it was negative, whether
// a '-' was among the bytes read, and ok false when no digit was found, the
// magnitude exceeds 2^64-1, or the digits are followed by something that is
// neither the end of the token nor whitespace.
func scanNumber(b []byte) (mag uint64, neg, overflow, ok bool) {
	i := 0
	for i < len(b) && isCSpace(b[i]) {
		i++
	}
	if i < len(b) && (b[i] == '+' || b[i] == '-') {
		neg = b[i] == '-'
		i++
	}
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		d := uint64(b[i] - '0')
		if mag > (1<<64-1-d)/10 {
			overflow = true
		}
		mag = mag*10 + d
	}
	if i == start || (i < len(b) && !isCSpace(b[i])) {
		return 0, false, false, false
	}
	return mag, neg, overflow, true
}

// safeStrtol is memcached's safe_strtol: strtol's int64, truncated to int32.
func safeStrtol(b []byte) (int32, bool) {
	mag, neg, overflow, ok := scanNumber(b)
	if !ok || overflow {
		return 0, false
	}
	var v int64
	switch {
	case !neg && mag <= 1<<63-1:
		v = int64(mag)
	case neg && mag <= 1<<63:
		v = -int64(mag) // -2^63 wraps to itself, as wanted
	default:
		return 0, false // ERANGE
	}
	return int32(v), true
}

// safeStrtoull is memcached's safe_strtoull (and, on LP64, the first half of
// safe_strtoul).
func safeStrtoull(b []byte) (uint64, bool) {
	mag, neg, overflow, ok := scanNumber(b)
	if !ok || overflow {
		return 0, false
	}
	v := mag
	if neg {
		v = -mag
	}
	if int64(v) < 0 && neg {
		return 0, false
	}
	return v, true
}

// safeStrtoul is memcached's safe_strtoul: safe_strtoull truncated to
// uint32.
func safeStrtoul(b []byte) (uint32, bool) {
	v, ok := safeStrtoull(b)
	return uint32(v), ok
}

// parseReplyUint reads the plain decimal lengths a server writes in VALUE
// and VA lines: digits only, at most max.
func parseReplyUint(b []byte, max int) (int, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= max
}
