package rediscmd

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/shardproxy/shardproxy/internal/resp"
)

// The blocking commands (Kind Block, and XREAD/XREADGROUP with BLOCK) as
// the proxy runs them. A request whose keys are on one server is sent as it
// is. One whose keys are on several servers (BLPOP, BRPOP, BLMPOP,
// BZPOPMIN, BZPOPMAX, BZMPOP only: the others move data between keys of
// one server) is run as Redis would serve it from one keyspace: first a
// non-blocking pop of each key in the client's order (NonBlockingPop,
// BlockingReply), then, when every key was empty, the blocking command
// with each server's keys on every server at once (AppendBlockingWith); the
// first element wins, and what the other servers popped meanwhile is put
// back (AppendPushBack). These functions build and read those commands and
// replies; they allocate nothing beyond dst.

// Errors of Redis 7.0's getTimeoutFromObjectOrReply, for a timeout the
// proxy checks before it pops anything.
var (
	errTimeoutFloat    = &Error{Kind: ErrBadKeys, Msg: "ERR timeout is not a float or out of range"}
	errTimeoutInteger  = &Error{Kind: ErrBadKeys, Msg: "ERR timeout is not an integer or out of range"}
	errTimeoutNegative = &Error{Kind: ErrBadKeys, Msg: "ERR timeout is negative"}
	errTimeoutRange    = &Error{Kind: ErrBadKeys, Msg: "ERR timeout is out of range"}
)

// maxBlockTimeout is the longest timeout Redis accepts that a
// time.Duration holds; longer ones block for ever here (about 292 years).
const maxBlockTimeout = time.Duration(math.MaxInt64)

// BlockTimeout returns how long the request args of c may block, 0 meaning
// for ever, and whether it blocks at all (XREAD and XREADGROUP only with
// BLOCK; WAIT and the Kind Block commands always). A timeout Redis would refuse is
// an error with Redis's own words.
func (c *Command) BlockTimeout(args [][]byte) (timeout time.Duration, blocks bool, err error) {
	var arg []byte
	ms := false
	switch c.Name {
	case "blmpop", "bzmpop":
		arg = args[1]
	case "wait":
		arg, ms = args[2], true
	case "xread", "xreadgroup":
		for i := 1; i+1 < len(args); i++ {
			if EqualFold(args[i], "streams") {
				break
			}
			if EqualFold(args[i], "block") {
				arg, ms = args[i+1], true
				break
			}
		}
		if arg == nil {
			return 0, false, nil
		}
	default:
		if c.Kind != Block {
			return 0, false, nil
		}
		arg = args[len(args)-1]
	}
	if ms {
		n, ok := parseInt(arg)
		switch {
		case !ok:
			return 0, true, errTimeoutInteger
		case n < 0:
			return 0, true, errTimeoutNegative
		case n > math.MaxInt64/int64(time.Millisecond):
			return maxBlockTimeout, true, nil
		}
		return time.Duration(n) * time.Millisecond, true, nil
	}
	f, perr := strconv.ParseFloat(string(arg), 64)
	switch {
	case perr != nil || math.IsNaN(f):
		return 0, true, errTimeoutFloat
	case f < 0:
		return 0, true, errTimeoutNegative
	case f*1000 > math.MaxInt64:
		return 0, true, errTimeoutRange
	}
	// Redis counts whole milliseconds, rounded up: 0.0001 is 1 ms, not
	// 0 (which blocks for ever).
	msecs := math.Ceil(f * 1000)
	if msecs >= float64(math.MaxInt64/int64(time.Millisecond)) {
		return maxBlockTimeout, true, nil
	}
	return time.Duration(msecs) * time.Millisecond, true, nil
}

// CrossServer reports whether a request of c may have its keys on several
// servers: the proxy then runs it as described above.
func (c *Command) CrossServer() bool {
	switch c.Name {
	case "blpop", "brpop", "bzpopmin", "bzpopmax", "blmpop", "bzmpop":
		return true
	}
	return false
}

// errNotCrossServer is returned for a command CrossServer rejects.
var errNotCrossServer = errors.New("rediscmd: not a cross-server blocking command")

// mpopRest returns the arguments of BLMPOP or BZMPOP after its keys: the
// direction and the optional COUNT. The request's keys have been
// validated (KeyIndexes), so numkeys is a number that fits.
func mpopRest(args [][]byte) [][]byte {
	n, _ := parseInt(args[2])
	return args[3+int(n):]
}

// NonBlockingPop appends to dst the command that pops from key what the
// blocking request args would, without blocking: LPOP, RPOP, ZPOPMIN,
// ZPOPMAX, or LMPOP/ZMPOP of that one key with the request's direction and
// COUNT.
func (c *Command) NonBlockingPop(dst []byte, args [][]byte, key []byte) ([]byte, error) {
	switch c.Name {
	case "blpop":
		return appendCommand(dst, "LPOP", key), nil
	case "brpop":
		return appendCommand(dst, "RPOP", key), nil
	case "bzpopmin":
		return appendCommand(dst, "ZPOPMIN", key), nil
	case "bzpopmax":
		return appendCommand(dst, "ZPOPMAX", key), nil
	case "blmpop", "bzmpop":
		rest := mpopRest(args)
		dst = resp.AppendArrayHeader(dst, 3+len(rest))
		dst = resp.AppendBulk(dst, []byte(strings.ToUpper(c.Name[1:]))) // LMPOP, ZMPOP
		dst = resp.AppendBulk(dst, []byte("1"))
		dst = resp.AppendBulk(dst, key)
		for _, a := range rest {
			dst = resp.AppendBulk(dst, a)
		}
		return dst, nil
	}
	return dst, errNotCrossServer
}

// BlockingReply turns the reply to NonBlockingPop(key) into the reply the
// blocking command gives when it pops from key, appended to dst. It
// reports false when the pop found nothing (a null reply, or ZPOPMIN's
// empty array); an error reply is returned as it is, with true.
func (c *Command) BlockingReply(dst, key, reply []byte) ([]byte, bool) {
	if len(reply) == 0 {
		return dst, false
	}
	if reply[0] == '-' {
		return append(dst, reply...), true
	}
	switch c.Name {
	case "blpop", "brpop":
		if reply[0] != '$' || bytes.HasPrefix(reply, []byte("$-1\r\n")) {
			return dst, false
		}
		dst = resp.AppendArrayHeader(dst, 2)
		dst = resp.AppendBulk(dst, key)
		return append(dst, reply...), true
	case "bzpopmin", "bzpopmax":
		// ZPOPMIN answers [member, score], or an empty array.
		if reply[0] != '*' || !bytes.HasPrefix(reply, []byte("*2\r\n")) {
			return dst, false
		}
		dst = resp.AppendArrayHeader(dst, 3)
		dst = resp.AppendBulk(dst, key)
		return append(dst, reply[4:]...), true
	case "blmpop", "bzmpop":
		// LMPOP and ZMPOP answer as BLMPOP and BZMPOP do, null when empty.
		if reply[0] != '*' || bytes.HasPrefix(reply, []byte("*-1\r\n")) {
			return dst, false
		}
		return append(dst, reply...), true
	}
	return dst, false
}

// AppendBlockingWith appends the blocking request args with its keys
// replaced by keys (a subset, in the client's order): what one server is
// sent when the request's keys are on several.
func (c *Command) AppendBlockingWith(dst []byte, args [][]byte, keys [][]byte) ([]byte, error) {
	switch c.Name {
	case "blpop", "brpop", "bzpopmin", "bzpopmax":
		dst = resp.AppendArrayHeader(dst, 2+len(keys))
		dst = resp.AppendBulk(dst, args[0])
		for _, k := range keys {
			dst = resp.AppendBulk(dst, k)
		}
		return resp.AppendBulk(dst, args[len(args)-1]), nil
	case "blmpop", "bzmpop":
		rest := mpopRest(args)
		dst = resp.AppendArrayHeader(dst, 3+len(keys)+len(rest))
		dst = resp.AppendBulk(dst, args[0])
		dst = resp.AppendBulk(dst, args[1])
		dst = resp.AppendBulk(dst, strconv.AppendInt(nil, int64(len(keys)), 10))
		for _, k := range keys {
			dst = resp.AppendBulk(dst, k)
		}
		for _, a := range rest {
			dst = resp.AppendBulk(dst, a)
		}
		return dst, nil
	}
	return dst, errNotCrossServer
}

// ErrBadBlockingReply: a reply AppendPushBack cannot read.
var ErrBadBlockingReply = errors.New("rediscmd: not a blocking command's reply")

// AppendPushBack appends the command that puts back, where they were taken
// from, the elements a blocking request args popped in reply: LPUSH or
// RPUSH (elements in the order that restores the list), or ZADD with their
// scores. It reports false, appending nothing, when the reply popped
// nothing (null, or an error).
func (c *Command) AppendPushBack(dst []byte, args [][]byte, reply []byte) ([]byte, bool, error) {
	if len(reply) == 0 || reply[0] != '*' || bytes.HasPrefix(reply, []byte("*-1\r\n")) {
		return dst, false, nil
	}
	var top [3][]byte
	elems, err := resp.ArrayElements(reply, top[:0])
	if err != nil {
		return dst, false, err
	}
	switch c.Name {
	case "blpop", "brpop":
		if len(elems) != 2 || !allBulks(elems) {
			return dst, false, ErrBadBlockingReply
		}
		push := "LPUSH"
		if c.Name == "brpop" {
			push = "RPUSH"
		}
		return appendRaw(dst, 3, push, elems[0], elems[1]), true, nil
	case "bzpopmin", "bzpopmax":
		if len(elems) != 3 || !allBulks(elems) {
			return dst, false, ErrBadBlockingReply
		}
		return appendRaw(dst, 4, "ZADD", elems[0], elems[2], elems[1]), true, nil
	case "blmpop", "bzmpop":
		if len(elems) != 2 || !allBulks(elems[:1]) {
			return dst, false, ErrBadBlockingReply
		}
		popped, err := resp.ArrayElements(elems[1], nil)
		if err != nil || len(popped) == 0 || c.Name == "blmpop" && !allBulks(popped) {
			return dst, false, ErrBadBlockingReply
		}
		if c.Name == "blmpop" {
			// The first popped was nearest the end they came from: push
			// the last first, so that it ends up nearest again.
			push := "LPUSH"
			if EqualFold(mpopRest(args)[0], "right") {
				push = "RPUSH"
			}
			dst = resp.AppendArrayHeader(dst, 2+len(popped))
			dst = resp.AppendBulk(dst, []byte(push))
			dst = append(dst, elems[0]...)
			for i := len(popped) - 1; i >= 0; i-- {
				dst = append(dst, popped[i]...)
			}
			return dst, true, nil
		}
		dst = resp.AppendArrayHeader(dst, 2+2*len(popped))
		dst = resp.AppendBulk(dst, []byte("ZADD"))
		dst = append(dst, elems[0]...)
		var pair [2][]byte
		for _, p := range popped {
			ms, err := resp.ArrayElements(p, pair[:0])
			if err != nil || len(ms) != 2 || !allBulks(ms) {
				return dst, false, ErrBadBlockingReply
			}
			dst = append(dst, ms[1]...)
			dst = append(dst, ms[0]...)
		}
		return dst, true, nil
	}
	return dst, false, errNotCrossServer
}

// allBulks reports whether every element is a bulk string, not null: what
// may be copied into a command as an argument.
func allBulks(elems [][]byte) bool {
	for _, e := range elems {
		if _, null, ok := resp.ParseBulk(e); !ok || null {
			return false
		}
	}
	return true
}

// appendRaw appends a command of n parts: name, then parts that are
// already encoded bulk strings (elements of a reply).
func appendRaw(dst []byte, n int, name string, parts ...[]byte) []byte {
	dst = resp.AppendArrayHeader(dst, n)
	dst = resp.AppendBulk(dst, []byte(name))
	for _, p := range parts {
		dst = append(dst, p...)
	}
	return dst
}

func appendCommand(dst []byte, name string, key []byte) []byte {
	dst = resp.AppendArrayHeader(dst, 2)
	dst = resp.AppendBulk(dst, []byte(name))
	return resp.AppendBulk(dst, key)
}
