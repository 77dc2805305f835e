package rediscmd

// stringCommands are the string and bitmap commands.
//
// MGET and MSET are split per server as twemproxy does. MSETNX is atomic
// across its keys, so it is not split: its keys must share a server.
var stringCommands = []Command{
	{Name: "append", Arity: 3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "bitcount", Arity: -2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "bitfield", Arity: -2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "bitfield_ro", Arity: -2, Keys: keyAt1, Kind: SingleKey},
	{Name: "bitop", Arity: -4, Keys: KeySpec{FirstKey: 2, LastKey: -1, KeyStep: 1}, Kind: SingleKey, Flags: Write | AllKeysOneServer},
	{Name: "bitpos", Arity: -3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "decr", Arity: 2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "decrby", Arity: 3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "get", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "getbit", Arity: 3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "getdel", Arity: 2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "getex", Arity: -2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "getrange", Arity: 4, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "getset", Arity: 3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "incr", Arity: 2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "incrby", Arity: 3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "incrbyfloat", Arity: 3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "lcs", Arity: -3, Keys: keysAt1To2, Kind: SingleKey, Flags: AllKeysOneServer},
	{Name: "mget", Arity: -2, Keys: keysFrom1, Kind: MultiKey, Merge: MergeArray, Twemproxy: true},
	// Split per server, as twemproxy splits it, MSET is not atomic.
	{Name: "mset", Arity: -3, Keys: KeySpec{FirstKey: 1, LastKey: -1, KeyStep: 2}, Kind: MultiKey, Merge: MergeAllOK, Flags: Write, Twemproxy: true},
	{Name: "msetnx", Arity: -3, Keys: KeySpec{FirstKey: 1, LastKey: -1, KeyStep: 2}, Kind: SingleKey, Flags: Write | AllKeysOneServer},
	{Name: "psetex", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "set", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "setbit", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "setex", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "setnx", Arity: 3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "setrange", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "strlen", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "substr", Arity: 4, Keys: keyAt1, Kind: SingleKey},
}
