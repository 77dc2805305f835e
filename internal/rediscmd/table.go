// Package rediscmd is the Redis command table as data: for every command
// Redis 7.0 knows, its arity, where its keys are, and how the proxy serves
// it (routed by key, split per server, answered locally, forwarded to any
// server, sent to every server, or refused with a reason).
//
// Each command family has its own file (string.go, list.go, …) holding one
// row per command. Adding a command is adding a row: see [Command]. The
// arities and key positions are those of redis-server 7.0's COMMAND INFO,
// which redis_test.go checks against a real server; the Twemproxy column
// records what nutcracker 0.5.0 accepts, which twemproxy_test.go checks
// against the nutcracker binary.
//
// A request is resolved with [Resolve] (or [Lookup] and [Command.Sub]) and its
// keys found with [Command.KeyIndexes]; none of these allocate on success.
// Errors are [*Error] values whose text is the reply Redis would give (after
// the leading '-').
//
// The table is built once when the package is initialised and is read-only
// afterwards: callers must not modify a *Command.
package rediscmd

import (
	"slices"
	"strconv"
	"strings"
)

// Kind says how the proxy serves a command.
type Kind uint8

const (
	// Unsupported commands are refused with an error naming the reason
	// (see [Reason]); the connection stays usable.
	Unsupported Kind = iota
	// SingleKey commands go to the server of their first key. When a
	// request names several keys (RPOPLPUSH, SINTER, EVAL with numkeys 2,
	// …; see [AllKeysOneServer]) they must all map to that one server: the
	// proxy checks.
	SingleKey
	// MultiKey commands may be split into one request per server, each with
	// that server's keys, and the replies merged (see [Merge]): MGET, MSET,
	// DEL, UNLINK, TOUCH and EXISTS.
	MultiKey
	// Local commands are answered by the proxy itself: PING, ECHO, QUIT,
	// AUTH, SELECT, RESET, INFO, TIME, ROLE, most CLIENT subcommands, and
	// the transaction commands MULTI, EXEC, DISCARD and UNWATCH.
	Local
	// Keyless commands have no key but give the same answer on any server,
	// so they are forwarded to one: the server of [PlaceholderKey], as
	// twemproxy does for COMMAND and LOLWUT.
	Keyless
	// Broadcast commands have no key and must reach every server of the
	// pool (SCRIPT LOAD, FUNCTION LOAD, …): the proxy sends the request to
	// each server in the ring and merges the replies (see [Merge]).
	Broadcast
	// Block commands may block until data arrives (BLPOP, BRPOP, BLMOVE,
	// BZPOPMIN, …): they run on a dedicated server connection, never on a
	// shared one, and keys on several servers block on each of them (see
	// the proxy's redis_block.go).
	Block
	// PubSub commands are the publish/subscribe commands (SUBSCRIBE,
	// PUBLISH, PUBSUB, …), served by the proxy's subscription layer: a
	// channel lives on the server its name hashes to (see the proxy's
	// redis_pubsub.go).
	PubSub
)

// PlaceholderKey is the key whose server answers Keyless commands.
// twemproxy 0.5.0 routes COMMAND and LOLWUT by this literal key
// (msg_set_placeholder_key in nc_message.c), so the same server answers
// through either proxy.
const PlaceholderKey = "placeholder"

var kindNames = [...]string{"unsupported", "single-key", "multi-key", "local", "keyless", "broadcast", "blocking", "pubsub"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Merge says how the replies of a split MultiKey request, or of a
// Broadcast request's servers, are combined.
type Merge uint8

const (
	MergeNone  Merge = iota
	MergeArray       // MGET: one array of the values, in the request's key order
	MergeSum         // DEL, UNLINK, TOUCH, EXISTS: the sum of the integer replies
	MergeAllOK       // MSET: +OK once every part replied +OK
	// MergeAll: every server must succeed; the reply is the first
	// server's (SCRIPT LOAD's SHA1, FUNCTION LOAD's library name, +OK),
	// else the first server's error.
	MergeAll
	// MergeAnd: arrays of 0 and 1, combined element by element: 1 only
	// where every server answered 1 (SCRIPT EXISTS).
	MergeAnd
	// MergeAnyOK: +OK if any server answered +OK, else an error
	// (SCRIPT KILL, FUNCTION KILL: only the server running the script
	// kills it; the others answer -NOTBUSY).
	MergeAnyOK
)

var mergeNames = [...]string{"none", "array", "sum", "all-ok", "all", "and", "any-ok"}

func (m Merge) String() string {
	if int(m) < len(mergeNames) {
		return mergeNames[m]
	}
	return "merge(" + strconv.Itoa(int(m)) + ")"
}

// Flags are facts about a command that the proxy or the documentation use.
type Flags uint8

const (
	// Write marks commands that may modify data (Redis's "write" flag).
	Write Flags = 1 << iota
	// AllKeysOneServer marks SingleKey commands that may name more than
	// one key; all of a request's keys must map to one server. Use the same
	// hash tag for them, e.g. {user1}:a and {user1}:b.
	AllKeysOneServer
	// Blocking marks commands that may block the connection (Redis's
	// "blocking" flag): BLPOP and friends, and XREAD/XREADGROUP with BLOCK.
	Blocking
	// Interrupt marks SCRIPT KILL and FUNCTION KILL: a server busy with a
	// script does not read the connection that sent the script, which
	// other clients' requests share, so these go on a short-lived
	// connection of their own.
	Interrupt
)

// Has reports whether all of want are set.
func (f Flags) Has(want Flags) bool { return f&want == want }

// Script says what the first argument of a command that runs or loads a
// script is, for the proxy's cache of script bodies (see [Command.FirstArg]).
type Script uint8

const (
	NotScript Script = iota
	// ScriptBody: the script itself (EVAL, EVAL_RO, SCRIPT LOAD).
	ScriptBody
	// ScriptSHA: the SHA1 of a script the server may have cached
	// (EVALSHA, EVALSHA_RO); the server answers -NOSCRIPT if it has not.
	ScriptSHA
	// ScriptFunction: the name of a function (FCALL, FCALL_RO).
	ScriptFunction
)

// Reason says why an Unsupported command is refused. Its String is the
// explanation the error reply ends with.
type Reason uint8

const (
	NoReason Reason = iota
	// ReasonKeyspace: KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHDB, FLUSHALL act
	// on the whole keyspace, which is spread over every server.
	ReasonKeyspace
	// ReasonDatabase: MOVE and SWAPDB move keys between the databases of
	// one server.
	ReasonDatabase
	// ReasonConnection: commands that change the state of a server
	// connection, which many clients share.
	ReasonConnection
	// ReasonAdmin: CONFIG, DEBUG, SAVE, SHUTDOWN, MONITOR, … administer
	// one server.
	ReasonAdmin
	// ReasonReplication: REPLICAOF, SYNC, FAILOVER, …
	ReasonReplication
	// ReasonCluster: CLUSTER, ASKING, READONLY, READWRITE, RESTORE-ASKING.
	ReasonCluster
	// ReasonNoKey: commands that describe one server, with no key to
	// choose it by.
	ReasonNoKey
	// ReasonTracking: CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO.
	ReasonTracking
)

var reasonTexts = [...]string{
	NoReason:          "",
	ReasonKeyspace:    "it acts on the keys of every server, which the proxy does not gather yet",
	ReasonDatabase:    "it moves keys between the databases of one server, which the proxy does not do",
	ReasonConnection:  "server connections are shared by many clients, so their state cannot be changed through the proxy",
	ReasonAdmin:       "server administration is not supported through the proxy; connect to the server directly",
	ReasonReplication: "replication commands are not supported through the proxy; connect to the server directly",
	ReasonCluster:     "the proxy is not a Redis Cluster node",
	ReasonNoKey:       "the command has no key to choose a server by",
	ReasonTracking:    "client-side caching (tracking) needs a server connection of the client's own, which the proxy does not give",
}

func (r Reason) String() string {
	if int(r) < len(reasonTexts) {
		return reasonTexts[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Command is one row of the table.
type Command struct {
	// Name is the lower-case command name; a subcommand's is
	// "container|sub" (e.g. "object|encoding"), as in Redis 7's COMMAND
	// INFO and its error texts.
	Name string
	// Arity counts the arguments including the name, as Redis does: N > 0
	// means exactly N, N < 0 at least -N.
	Arity int
	// MaxArgs, if not 0, is the most arguments (including the name) the
	// command accepts, which Redis checks in the command itself: PING
	// takes at most one message.
	MaxArgs int
	// Keys says which arguments are keys.
	Keys KeySpec
	// Kind says how the proxy serves the command.
	Kind Kind
	// Merge says how the parts of a split MultiKey request, or the
	// servers' replies to a Broadcast request, are combined.
	Merge Merge
	// Flags are facts about the command (Write, AllKeysOneServer,
	// Blocking, Interrupt).
	Flags Flags
	// Script says what the first argument is for commands that run or load
	// a script; NotScript for the others.
	Script Script
	// Reason explains why an Unsupported command is refused.
	Reason Reason
	// Twemproxy reports whether nutcracker 0.5.0 serves the command
	// (rather than closing the client connection).
	Twemproxy bool
	// Family is the command's group (Redis's COMMAND DOCS "group"): the
	// label of the per-family latency histograms. Set by newTable.
	Family Family

	// subcommands lists the rows of a container command such as OBJECT;
	// newTable indexes them in subs.
	subcommands []Command

	// Set by newTable; read-only afterwards.
	subs      map[string]*Command // subcommands by lower-case name
	subMaxLen int                 // the longest key of subs
	arityErr  *Error              // the reply to a wrong argument count
	refusal   *Error              // the reply to an Unsupported command
	noKeysErr *Error              // the reply to a keyed command given no key (EVAL … 0)
}

// HasSubcommands reports whether c is a container such as OBJECT or XINFO,
// whose second argument names a subcommand (see [Command.Sub]). A
// container's own Kind applies only when it is called alone, which only
// COMMAND allows.
func (c *Command) HasSubcommands() bool { return c.subs != nil }

// Err returns the error reply for a request of an Unsupported command, such
// as "ERR unsupported command 'subscribe': pub/sub is not supported through
// the proxy yet", and nil for any other Kind.
func (c *Command) Err() error {
	if c.refusal == nil {
		return nil
	}
	return c.refusal
}

// FirstArg returns the index of the first argument after the command's
// name, or after the subcommand's name for a subcommand such as SCRIPT
// LOAD: where EVAL's script and SCRIPT LOAD's are.
func (c *Command) FirstArg() int {
	if strings.IndexByte(c.Name, '|') >= 0 {
		return 2
	}
	return 1
}

// IsNoKeys reports whether err is the error [Command.KeyIndexes] returned
// because a request of c names no key (EVAL with numkeys 0).
func (c *Command) IsNoKeys(err error) bool {
	return c.noKeysErr != nil && err == error(c.noKeysErr)
}

// Key specifications shared by many rows.
var (
	keyAt1     = KeySpec{FirstKey: 1, LastKey: 1, KeyStep: 1}  // GET key
	keyAt2     = KeySpec{FirstKey: 2, LastKey: 2, KeyStep: 1}  // OBJECT ENCODING key
	keysAt1To2 = KeySpec{FirstKey: 1, LastKey: 2, KeyStep: 1}  // RPOPLPUSH source destination
	keysFrom1  = KeySpec{FirstKey: 1, LastKey: -1, KeyStep: 1} // DEL key [key …]
)

// maxNameLen bounds the names Lookup and Sub try: longer names are not
// commands. newTable checks that every name fits.
const maxNameLen = 32

// table indexes the rows of every family file.
type table struct {
	byName map[string]*Command
	all    []*Command // every command and subcommand, sorted by Name
}

// Family is a group of commands, as Redis's COMMAND DOCS groups them.
type Family uint8

// The families, in the order of the table's family files.
const (
	FamilyConnection Family = iota
	FamilyGeneric
	FamilyGeo
	FamilyHash
	FamilyHyperLogLog
	FamilyList
	FamilyPubSub
	FamilyScripting
	FamilyServer
	FamilySet
	FamilyStream
	FamilyString
	FamilyTransactions
	FamilySortedSet
	NumFamilies int = iota
)

var familyNames = [NumFamilies]string{"connection", "generic", "geo", "hash", "hyperloglog", "list",
	"pubsub", "scripting", "server", "set", "stream", "string", "transactions", "sorted-set"}

// String returns Redis's name of the group, e.g. "sorted-set".
func (f Family) String() string {
	if int(f) < NumFamilies {
		return familyNames[f]
	}
	return "family(" + strconv.Itoa(int(f)) + ")"
}

// commands is the table. It is built once and never modified. The files
// are listed in Family order.
var commands = newTable(
	connectionCommands,
	genericCommands,
	geoCommands,
	hashCommands,
	hyperloglogCommands,
	listCommands,
	pubsubCommands,
	scriptingCommands,
	serverCommands,
	setCommands,
	streamCommands,
	stringCommands,
	transactionCommands,
	zsetCommands,
)

// newTable indexes the rows of families and prepares each row's error
// replies. The rows are package data, so a malformed row is a programming
// error that table_test.go reports; newTable itself never fails, and a
// duplicate name simply replaces the earlier row (which the test also
// reports).
func newTable(families ...[]Command) *table {
	t := &table{byName: make(map[string]*Command)}
	for fam, rows := range families {
		for i := range rows {
			c := &rows[i]
			c.Family = Family(fam)
			prepare(c)
			t.byName[c.Name] = c
			t.all = append(t.all, c)
			if c.subcommands == nil {
				continue
			}
			c.subs = make(map[string]*Command, len(c.subcommands))
			for j := range c.subcommands {
				s := &c.subcommands[j]
				s.Family = Family(fam)
				prepare(s)
				sub := s.Name[strings.IndexByte(s.Name, '|')+1:]
				c.subs[sub] = s
				c.subMaxLen = max(c.subMaxLen, len(sub))
				t.all = append(t.all, s)
			}
		}
	}
	slices.SortFunc(t.all, func(a, b *Command) int { return strings.Compare(a.Name, b.Name) })
	return t
}

// prepare builds the error replies of c once, so that replying with them
// never allocates.
func prepare(c *Command) {
	c.arityErr = &Error{Kind: ErrWrongArity, Msg: "ERR wrong number of arguments for '" + c.Name + "' command"}
	if c.Kind == Unsupported && c.Reason != NoReason {
		c.refusal = &Error{Kind: ErrUnsupported, Msg: "ERR unsupported command '" + c.Name + "': " + c.Reason.String()}
	}
	if c.Kind == SingleKey || c.Kind == MultiKey {
		c.noKeysErr = &Error{Kind: ErrUnsupported,
			Msg: "ERR unsupported command '" + c.Name + "' without keys: the proxy needs a key to choose a server"}
	}
}

// Lookup finds a command by name, ignoring ASCII case, without allocating.
// It returns nil for a name that is not in the table. For a container such
// as OBJECT it returns the container: see [Command.Sub] and [Resolve].
func Lookup(name []byte) *Command {
	return lookupFold(commands.byName, name, maxNameLen)
}

// Sub finds the subcommand of container c named name, ignoring ASCII case,
// without allocating. It returns nil when c has no such subcommand or is
// not a container.
func (c *Command) Sub(name []byte) *Command {
	if c.subs == nil {
		return nil
	}
	return lookupFold(c.subs, name, c.subMaxLen)
}

// lookupFold looks name up in m after lower-casing it into a stack buffer.
// The conversion in m[string(b)] does not allocate: the compiler looks the
// bytes up in place.
func lookupFold(m map[string]*Command, name []byte, limit int) *Command {
	if len(name) > limit || len(name) > maxNameLen {
		return nil
	}
	var buf [maxNameLen]byte
	b := buf[:len(name)]
	for i, ch := range name {
		if 'A' <= ch && ch <= 'Z' {
			ch += 'a' - 'A'
		}
		b[i] = ch
	}
	return m[string(b)]
}

// All returns every command and subcommand, sorted by name, for
// documentation and tests. The slice is the caller's; the commands are not.
func All() []*Command {
	return slices.Clone(commands.all)
}
