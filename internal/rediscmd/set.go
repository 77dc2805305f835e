package rediscmd

// setCommands are the set commands.
//
// twemproxy forwards SDIFF, SINTER, SUNION, their STORE forms and SMOVE to
// the server of the first key without checking the others; the proxy
// checks that all the keys share that server.
var setCommands = []Command{
	{Name: "sadd", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "scard", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "sdiff", Arity: -2, Keys: keysFrom1, Kind: SingleKey, Flags: AllKeysOneServer, Twemproxy: true},
	{Name: "sdiffstore", Arity: -3, Keys: keysFrom1, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "sinter", Arity: -2, Keys: keysFrom1, Kind: SingleKey, Flags: AllKeysOneServer, Twemproxy: true},
	{Name: "sintercard", Arity: -3, Keys: KeySpec{NumKeysAt: 1, NumKeys: NumKeysSinter}, Kind: SingleKey, Flags: AllKeysOneServer},
	{Name: "sinterstore", Arity: -3, Keys: keysFrom1, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "sismember", Arity: 3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "smembers", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "smismember", Arity: -3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "smove", Arity: 4, Keys: keysAt1To2, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "spop", Arity: -2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "srandmember", Arity: -2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "srem", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "sscan", Arity: -3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "sunion", Arity: -2, Keys: keysFrom1, Kind: SingleKey, Flags: AllKeysOneServer, Twemproxy: true},
	{Name: "sunionstore", Arity: -3, Keys: keysFrom1, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
}
