package rediscmd

import (
	"bytes"
	"errors"
	"strings"
)

// The classes of [*Error]; test for them with errors.Is.
var (
	// ErrUnknownCommand: the command or subcommand is not in the table.
	ErrUnknownCommand = errors.New("unknown command")
	// ErrUnsupported: the command is known but the proxy does not serve it
	// (a Kind of Unsupported, XREAD with BLOCK, EVAL with no keys).
	ErrUnsupported = errors.New("unsupported command")
	// ErrWrongArity: the request has too few or too many arguments.
	ErrWrongArity = errors.New("wrong number of arguments")
	// ErrBadKeys: a numkeys argument or a STREAMS list does not say where
	// the keys are, so the request cannot be routed.
	ErrBadKeys = errors.New("bad key arguments")
)

// Error is an error reply. Msg is the reply's text without the leading '-',
// worded as redis-server 7.0 words it where Redis has the same error, e.g.
// "ERR wrong number of arguments for 'get' command".
type Error struct {
	Kind error // ErrUnknownCommand, ErrUnsupported, ErrWrongArity or ErrBadKeys
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the error's class.
func (e *Error) Unwrap() error { return e.Kind }

// Error replies of the key finders, worded as redis-server 7.0 words them.
var (
	errNotInteger    = &Error{Kind: ErrBadKeys, Msg: "ERR value is not an integer or out of range"}
	errSyntax        = &Error{Kind: ErrBadKeys, Msg: "ERR syntax error"}
	errKeysNegative  = &Error{Kind: ErrBadKeys, Msg: "ERR Number of keys can't be negative"}
	errKeysTooMany   = &Error{Kind: ErrBadKeys, Msg: "ERR Number of keys can't be greater than number of args"}
	errFcallNumKeys  = &Error{Kind: ErrBadKeys, Msg: "ERR Bad number of keys provided"}
	errNumKeysPos    = &Error{Kind: ErrBadKeys, Msg: "ERR numkeys should be greater than 0"}
	errUnbalancedXRD = &Error{Kind: ErrBadKeys,
		Msg: "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."}
)

// unknownCommand is Redis 7.0's reply to an unknown command (processCommand
// in server.c): "ERR unknown command '<name>', with args beginning with:
// '<arg>' '<arg>' " with the name cut to 128 bytes and the quoted arguments
// listed while they total less than 128 bytes.
func unknownCommand(args [][]byte) *Error {
	var b strings.Builder
	b.WriteString("ERR unknown command '")
	if len(args) > 0 {
		b.Write(cString(args[0], 128))
	}
	b.WriteString("', with args beginning with: ")
	listed := 0
	for i := 1; i < len(args) && listed < 128; i++ {
		a := cString(args[i], 128-listed)
		b.WriteByte('\'')
		b.Write(a)
		b.WriteString("' ")
		listed += len(a) + 3
	}
	return &Error{Kind: ErrUnknownCommand, Msg: oneLine(b.String())}
}

// UnknownCommand returns Redis 7.0's reply to a command it does not know,
// for the commands the proxy answers as unknown although the table has a
// row for them (HELLO, until RESP3 is served): client libraries match the
// words to fall back.
func UnknownCommand(args [][]byte) error { return unknownCommand(args) }

// unknownSubcommand is Redis 7.0's reply to an unknown subcommand of a
// container: "ERR unknown subcommand '<sub>'. Try OBJECT HELP."
func unknownSubcommand(c *Command, sub []byte) *Error {
	msg := "ERR unknown subcommand '" + string(cString(sub, 128)) + "'. Try " + strings.ToUpper(c.Name) + " HELP."
	return &Error{Kind: ErrUnknownCommand, Msg: oneLine(msg)}
}

// cString is what C's "%.*s" prints of b: at most n bytes, and nothing
// from the first NUL byte on.
func cString(b []byte, n int) []byte {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	if len(b) > n {
		b = b[:n]
	}
	return b
}

// oneLine replaces CR and LF with spaces, as Redis's rejectCommandFormat
// does, so that a client's bytes cannot break the reply's framing.
func oneLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}
