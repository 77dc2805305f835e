package rediscmd

// listCommands are the list commands.
//
// The blocking commands are of Kind Block: they run on a server connection
// of their own (see the proxy's redis_block.go). BRPOPLPUSH and BLMOVE move
// an element between two keys, which must be on one server.
var listCommands = []Command{
	{Name: "blmove", Arity: 6, Keys: keysAt1To2, Kind: Block, Flags: Write | Blocking | AllKeysOneServer},
	{Name: "blmpop", Arity: -5, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysPop}, Kind: Block, Flags: Write | Blocking},
	{Name: "blpop", Arity: -3, Keys: KeySpec{FirstKey: 1, LastKey: -2, KeyStep: 1}, Kind: Block, Flags: Write | Blocking},
	{Name: "brpop", Arity: -3, Keys: KeySpec{FirstKey: 1, LastKey: -2, KeyStep: 1}, Kind: Block, Flags: Write | Blocking},
	{Name: "brpoplpush", Arity: 4, Keys: keysAt1To2, Kind: Block, Flags: Write | Blocking | AllKeysOneServer},
	{Name: "lindex", Arity: 3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "linsert", Arity: 5, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "llen", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "lmove", Arity: 5, Keys: keysAt1To2, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "lmpop", Arity: -4, Keys: KeySpec{NumKeysAt: 1, NumKeys: NumKeysPop}, Kind: SingleKey, Flags: Write | AllKeysOneServer},
	{Name: "lpop", Arity: -2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "lpos", Arity: -3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "lpush", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "lpushx", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "lrange", Arity: 4, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "lrem", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "lset", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "ltrim", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "rpop", Arity: -2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	// twemproxy routes RPOPLPUSH, LMOVE and SMOVE by the source without
	// checking the destination.
	{Name: "rpoplpush", Arity: 3, Keys: keysAt1To2, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "rpush", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "rpushx", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
}
