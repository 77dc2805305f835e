package rediscmd

// genericCommands are the commands on keys of any type (Redis's @keyspace),
// SORT, and the containers OBJECT and MEMORY.
//
// twemproxy splits DEL, UNLINK and TOUCH per server, but sends EXISTS with
// several keys to the server of the first key, so "EXISTS a b" counts only
// the keys that live there. The proxy splits EXISTS and sums the counts (a
// deliberate difference).
var genericCommands = []Command{
	{Name: "copy", Arity: -3, Keys: keysAt1To2, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "dbsize", Arity: 1, Kind: Unsupported, Reason: ReasonKeyspace},
	{Name: "del", Arity: -2, Keys: keysFrom1, Kind: MultiKey, Merge: MergeSum, Flags: Write, Twemproxy: true},
	{Name: "dump", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	// twemproxy sends EXISTS to the server of its first key, unsplit.
	{Name: "exists", Arity: -2, Keys: keysFrom1, Kind: MultiKey, Merge: MergeSum, Twemproxy: true},
	// twemproxy accepts EXPIRE, EXPIREAT, PEXPIRE and PEXPIREAT only with
	// exactly 3 arguments: it closes the connection on Redis 7's NX, XX,
	// GT and LT options.
	{Name: "expire", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "expireat", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "expiretime", Arity: 2, Keys: keyAt1, Kind: SingleKey},
	{Name: "flushall", Arity: -1, Kind: Unsupported, Flags: Write, Reason: ReasonKeyspace},
	{Name: "flushdb", Arity: -1, Kind: Unsupported, Flags: Write, Reason: ReasonKeyspace},
	{Name: "keys", Arity: 2, Kind: Unsupported, Reason: ReasonKeyspace},
	{Name: "memory", Arity: -2, Kind: Unsupported, subcommands: memorySubcommands},
	{Name: "migrate", Arity: -6, Keys: KeySpec{FirstKey: 3, LastKey: 3, KeyStep: 1}, Kind: Unsupported, Flags: Write, Reason: ReasonAdmin},
	{Name: "move", Arity: 3, Keys: keyAt1, Kind: Unsupported, Flags: Write, Reason: ReasonDatabase},
	// OBJECT and MEMORY are containers: their subcommand names the key.
	{Name: "object", Arity: -2, Kind: Unsupported, subcommands: objectSubcommands},
	{Name: "persist", Arity: 2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "pexpire", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "pexpireat", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "pexpiretime", Arity: 2, Keys: keyAt1, Kind: SingleKey},
	{Name: "pttl", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "randomkey", Arity: 1, Kind: Unsupported, Reason: ReasonKeyspace},
	{Name: "rename", Arity: 3, Keys: keysAt1To2, Kind: SingleKey, Flags: Write | AllKeysOneServer},
	{Name: "renamenx", Arity: 3, Keys: keysAt1To2, Kind: SingleKey, Flags: Write | AllKeysOneServer},
	{Name: "restore", Arity: -4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "restore-asking", Arity: -4, Keys: keyAt1, Kind: Unsupported, Flags: Write, Reason: ReasonCluster},
	{Name: "scan", Arity: -2, Kind: Unsupported, Reason: ReasonKeyspace},
	// The STORE destination must share the key's server; so must the keys
	// that BY and GET patterns read, which the proxy cannot see.
	{Name: "sort", Arity: -2, Keys: KeySpec{FirstKey: 1, LastKey: 1, KeyStep: 1, Extra: sortStoreKey}, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "sort_ro", Arity: -2, Keys: keyAt1, Kind: SingleKey},
	{Name: "swapdb", Arity: 3, Kind: Unsupported, Flags: Write, Reason: ReasonDatabase},
	{Name: "touch", Arity: -2, Keys: keysFrom1, Kind: MultiKey, Merge: MergeSum, Twemproxy: true},
	{Name: "ttl", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "type", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "unlink", Arity: -2, Keys: keysFrom1, Kind: MultiKey, Merge: MergeSum, Flags: Write, Twemproxy: true},
}

// memorySubcommands are MEMORY's subcommands; only USAGE names a key.
var memorySubcommands = []Command{
	{Name: "memory|doctor", Arity: 2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "memory|help", Arity: 2, Kind: Keyless},
	{Name: "memory|malloc-stats", Arity: 2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "memory|purge", Arity: 2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "memory|stats", Arity: 2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "memory|usage", Arity: -3, Keys: keyAt2, Kind: SingleKey},
}

// objectSubcommands are OBJECT's subcommands.
var objectSubcommands = []Command{
	{Name: "object|encoding", Arity: 3, Keys: keyAt2, Kind: SingleKey},
	{Name: "object|freq", Arity: 3, Keys: keyAt2, Kind: SingleKey},
	{Name: "object|help", Arity: 2, Kind: Keyless},
	{Name: "object|idletime", Arity: 3, Keys: keyAt2, Kind: SingleKey},
	{Name: "object|refcount", Arity: 3, Keys: keyAt2, Kind: SingleKey},
}
