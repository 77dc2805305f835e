package rediscmd

import "math"

// KeySpec says which arguments of a request are keys. Indexes count the
// command name as 0. The keys are, in this order:
//
//   - the fixed range FirstKey, FirstKey+KeyStep, … up to LastKey, as in
//     Redis's (first, last, step) triple of COMMAND INFO; a negative
//     LastKey counts from the end (-1 is the last argument, -2 the one
//     before it);
//   - then, if NumKeysAt is set, the count of keys given by the argument at
//     NumKeysAt, and that many arguments following it;
//   - then whatever Extra finds (SORT … STORE dst, XREAD … STREAMS k1 k2 …).
type KeySpec struct {
	FirstKey int // index of the first fixed key; 0: no fixed keys
	LastKey  int // index of the last fixed key; negative counts from the end
	KeyStep  int // distance between fixed keys: 2 for MSET's key value pairs

	NumKeysAt int         // index of a numkeys argument; 0: none
	NumKeys   NumKeysRule // how Redis validates that numkeys argument

	// Extra appends the indexes of keys found by parsing the arguments;
	// nil for most commands.
	Extra KeyFinder
}

// KeyFinder appends to dst the indexes of the keys of a request of c that
// only parsing its arguments can find, or returns the error reply for
// arguments that do not say where the keys are.
type KeyFinder func(c *Command, args [][]byte, dst []int) ([]int, error)

// NumKeysRule says how Redis validates a numkeys argument. The commands
// differ in the smallest count they accept and in the wording of their
// errors, which the proxy repeats because it cannot route such a request.
type NumKeysRule uint8

const (
	NumKeysNone NumKeysRule = iota
	// NumKeysEval: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO. 0 is valid for
	// Redis, but leaves the proxy no key to route by.
	NumKeysEval
	// NumKeysFcall: FCALL, FCALL_RO; as EVAL, but a non-integer is "Bad
	// number of keys provided".
	NumKeysFcall
	// NumKeysZset: ZUNION, ZINTER, ZDIFF, ZINTERCARD and their STORE forms:
	// at least 1, and at most the arguments that follow.
	NumKeysZset
	// NumKeysSinter: SINTERCARD.
	NumKeysSinter
	// NumKeysPop: LMPOP, ZMPOP, BLMPOP, BZMPOP: at least 1, and an argument
	// (LEFT|RIGHT, MIN|MAX) must follow the keys.
	NumKeysPop
)

// CheckArity returns the Redis error reply for a request of nargs
// arguments (including the command name) when c does not accept that many:
// "ERR wrong number of arguments for 'get' command".
func (c *Command) CheckArity(nargs int) error {
	if c.Arity > 0 && nargs != c.Arity || c.Arity < 0 && nargs < -c.Arity ||
		c.MaxArgs > 0 && nargs > c.MaxArgs {
		return c.arityErr
	}
	return nil
}

// Resolve finds the command of a request, descending into a container's
// subcommand table (OBJECT ENCODING, XINFO STREAM, …), and checks that the
// request may be served: the returned error is the reply for an unknown
// command or subcommand, an Unsupported command, or a wrong argument count,
// worded as Redis 7.0 words it. The command is returned whenever it was
// found, even with an error, for statistics and logs. Resolve does not
// allocate unless it fails.
func Resolve(args [][]byte) (*Command, error) {
	if len(args) == 0 {
		return nil, unknownCommand(args)
	}
	c := Lookup(args[0])
	if c == nil {
		return nil, unknownCommand(args)
	}
	if c.subs != nil {
		if len(args) < 2 {
			if err := c.CheckArity(len(args)); err != nil {
				return c, err
			}
			// Only COMMAND may be called alone; it is served as itself.
		} else {
			s := c.Sub(args[1])
			if s == nil {
				return c, unknownSubcommand(c, args[1])
			}
			c = s
		}
	}
	if c.Kind == Unsupported {
		return c, c.Err()
	}
	if err := c.CheckArity(len(args)); err != nil {
		return c, err
	}
	return c, nil
}

// KeyIndexes appends to dst the indexes into args of the key arguments of a
// request of c, in the order Redis's COMMAND GETKEYS lists them, and
// returns the extended slice. It does not allocate when dst has room.
//
// It validates what it must to find the keys, with Redis's words: a bad
// numkeys argument, a STREAMS list without IDs, or MSET without a value for
// its last key. A SingleKey or MultiKey request with no key at all (EVAL
// with numkeys 0) is an ErrUnsupported error, because nothing says which
// server should run it; twemproxy closes the connection instead.
// XREAD and XREADGROUP with BLOCK are refused too (ErrUnsupported).
//
// Call it after CheckArity (or Resolve); it never panics on a short
// request but then reports a wrong argument count.
func (c *Command) KeyIndexes(args [][]byte, dst []int) ([]int, error) {
	start := len(dst)
	ks := &c.Keys
	n := len(args)
	if ks.FirstKey > 0 {
		last := ks.LastKey
		if last < 0 {
			last += n
		}
		step := max(ks.KeyStep, 1)
		// With a step, the range must end on a whole group: MSET's last
		// key needs its value (msetGenericCommand replies with the arity
		// error).
		if ks.FirstKey >= n || last < ks.FirstKey || last >= n ||
			ks.LastKey < 0 && (n-ks.FirstKey)%step != 0 {
			return dst, c.arityErr
		}
		for i := ks.FirstKey; i <= last; i += step {
			dst = append(dst, i)
		}
	}
	if ks.NumKeysAt > 0 {
		var err error
		if dst, err = c.numKeys(args, dst); err != nil {
			return dst, err
		}
	}
	if ks.Extra != nil {
		var err error
		if dst, err = ks.Extra(c, args, dst); err != nil {
			return dst, err
		}
	}
	if len(dst) == start && c.noKeysErr != nil {
		return dst, c.noKeysErr
	}
	return dst, nil
}

// numKeys appends the keys counted by the numkeys argument at
// c.Keys.NumKeysAt, validating it as the command does in Redis 7.0.
func (c *Command) numKeys(args [][]byte, dst []int) ([]int, error) {
	at := c.Keys.NumKeysAt
	if at >= len(args) {
		return dst, c.arityErr
	}
	avail := int64(len(args) - at - 1) // arguments after numkeys
	n, ok := parseInt(args[at])
	switch c.Keys.NumKeys {
	case NumKeysEval, NumKeysFcall: // evalGenericCommand, fcallCommandGeneric
		switch {
		case !ok && c.Keys.NumKeys == NumKeysFcall:
			return dst, errFcallNumKeys
		case !ok:
			return dst, errNotInteger
		case n > avail:
			return dst, errKeysTooMany
		case n < 0:
			return dst, errKeysNegative
		}
	case NumKeysZset: // zunionInterDiffGenericCommand
		switch {
		case !ok:
			return dst, errNotInteger
		case n < 1:
			return dst, &Error{Kind: ErrBadKeys, Msg: "ERR at least 1 input key is needed for '" + c.Name + "' command"}
		case n > avail:
			return dst, errSyntax
		}
	case NumKeysSinter: // sinterCardCommand
		switch {
		case !ok || n < 1:
			return dst, errNumKeysPos
		case n > avail:
			return dst, errKeysTooMany
		}
	case NumKeysPop: // lmpopGenericCommand, zmpopGenericCommand
		switch {
		case !ok || n < 1:
			return dst, errNumKeysPos
		case n > avail-1:
			return dst, errSyntax
		}
	default:
		return dst, errSyntax
	}
	for i := at + 1; i <= at+int(n); i++ {
		dst = append(dst, i)
	}
	return dst, nil
}

// parseInt parses b as Redis's string2ll does: an optional '-', then digits
// without a leading zero (except "0" itself), within int64. "+1", " 1",
// "01" and "-0" are not integers to Redis.
func parseInt(b []byte) (int64, bool) {
	if len(b) == 1 && b[0] == '0' {
		return 0, true
	}
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	// 19 digits fit a uint64; 20 exceed int64 anyway.
	if len(b) == 0 || len(b) > 19 || b[0] < '1' || b[0] > '9' {
		return 0, false
	}
	var v uint64
	for _, ch := range b {
		if ch < '0' || ch > '9' {
			return 0, false
		}
		v = v*10 + uint64(ch-'0')
	}
	switch {
	case neg && v <= 1<<63:
		return int64(-v), true // -v wraps to math.MinInt64 for v == 1<<63
	case !neg && v <= math.MaxInt64:
		return int64(v), true
	}
	return 0, false
}

// EqualFold reports whether b is word, ignoring ASCII case (Redis's
// strcasecmp); word is lower case.
func EqualFold(b []byte, word string) bool {
	if len(b) != len(word) {
		return false
	}
	for i, ch := range b {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		if ch != word[i] {
			return false
		}
	}
	return true
}

// sortStoreKey finds SORT's STORE destination as Redis's sortGetKeys does:
// options are scanned from argv[2], LIMIT skips two arguments, GET and BY
// one, and the last STORE that has an argument after it wins. The
// destination is not skipped, so it is examined as an option in turn.
func sortStoreKey(_ *Command, args [][]byte, dst []int) ([]int, error) {
	store := 0
	for i := 2; i < len(args); i++ {
		switch a := args[i]; {
		case EqualFold(a, "limit"):
			i += 2
		case EqualFold(a, "store") && i+1 < len(args):
			store = i + 1
		case EqualFold(a, "get"), EqualFold(a, "by"):
			i++
		}
	}
	if store > 0 {
		dst = append(dst, store)
	}
	return dst, nil
}

// geoStoreKey finds the STORE or STOREDIST destination of GEORADIUS and
// GEORADIUSBYMEMBER as Redis's georadiusGetKeys does: options are scanned
// from argv[5], and the last one wins.
func geoStoreKey(_ *Command, args [][]byte, dst []int) ([]int, error) {
	store := 0
	for i := 5; i < len(args); i++ {
		if (EqualFold(args[i], "store") || EqualFold(args[i], "storedist")) && i+1 < len(args) {
			store = i + 1
			i++
		}
	}
	if store > 0 {
		dst = append(dst, store)
	}
	return dst, nil
}

// streamKeys finds the keys of XREAD and XREADGROUP as Redis's xreadGetKeys
// does: options are skipped up to STREAMS, whose arguments are the keys
// followed by as many IDs.
func streamKeys(c *Command, args [][]byte, dst []int) ([]int, error) {
	streams := 0
scan:
	for i := 1; i < len(args); i++ {
		switch a := args[i]; {
		case EqualFold(a, "block"), EqualFold(a, "count"):
			i++
		case EqualFold(a, "group"):
			i += 2
		case EqualFold(a, "noack"):
		case EqualFold(a, "streams"):
			streams = i
			break scan
		default:
			break scan
		}
	}
	num := len(args) - streams - 1
	switch {
	case streams == 0 || num == 0:
		return dst, errSyntax
	case num%2 != 0:
		return dst, errUnbalancedXRD
	}
	for i := streams + 1; i <= streams+num/2; i++ {
		dst = append(dst, i)
	}
	return dst, nil
}
