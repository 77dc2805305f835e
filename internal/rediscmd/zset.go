package rediscmd

// zsetCommands are the sorted set commands.
//
// twemproxy routes ZUNIONSTORE, ZINTERSTORE and ZDIFFSTORE by their
// destination (argv[1]), which is also their first key here. It routes
// ZUNION, ZINTER and ZDIFF by argv[1] too, which for them is numkeys, not a
// key: "ZUNION 2 a b" goes to the server of the string "2". The proxy
// routes them by their keys instead (a deliberate difference), which puts
// them on the server that holds the data.
var zsetCommands = []Command{
	{Name: "bzmpop", Arity: -5, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysPop}, Kind: Block, Flags: Write | Blocking},
	{Name: "bzpopmax", Arity: -3, Keys: KeySpec{FirstKey: 1, LastKey: -2, KeyStep: 1}, Kind: Block, Flags: Write | Blocking},
	{Name: "bzpopmin", Arity: -3, Keys: KeySpec{FirstKey: 1, LastKey: -2, KeyStep: 1}, Kind: Block, Flags: Write | Blocking},
	{Name: "zadd", Arity: -4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "zcard", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zcount", Arity: 4, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zdiff", Arity: -3, Keys: KeySpec{NumKeysAt: 1, NumKeys: NumKeysZset}, Kind: SingleKey, Flags: AllKeysOneServer, Twemproxy: true},
	{Name: "zdiffstore", Arity: -4, Keys: KeySpec{FirstKey: 1, LastKey: 1, KeyStep: 1, NumKeysAt: 2, NumKeys: NumKeysZset}, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "zincrby", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "zinter", Arity: -3, Keys: KeySpec{NumKeysAt: 1, NumKeys: NumKeysZset}, Kind: SingleKey, Flags: AllKeysOneServer, Twemproxy: true},
	{Name: "zintercard", Arity: -3, Keys: KeySpec{NumKeysAt: 1, NumKeys: NumKeysZset}, Kind: SingleKey, Flags: AllKeysOneServer},
	{Name: "zinterstore", Arity: -4, Keys: KeySpec{FirstKey: 1, LastKey: 1, KeyStep: 1, NumKeysAt: 2, NumKeys: NumKeysZset}, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "zlexcount", Arity: 4, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zmpop", Arity: -4, Keys: KeySpec{NumKeysAt: 1, NumKeys: NumKeysPop}, Kind: SingleKey, Flags: Write | AllKeysOneServer},
	{Name: "zmscore", Arity: -3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zpopmax", Arity: -2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "zpopmin", Arity: -2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "zrandmember", Arity: -2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zrange", Arity: -4, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zrangebylex", Arity: -4, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zrangebyscore", Arity: -4, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zrangestore", Arity: -5, Keys: keysAt1To2, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "zrank", Arity: 3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zrem", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "zremrangebylex", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "zremrangebyrank", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "zremrangebyscore", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "zrevrange", Arity: -4, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zrevrangebylex", Arity: -4, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zrevrangebyscore", Arity: -4, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zrevrank", Arity: 3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zscan", Arity: -3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zscore", Arity: 3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "zunion", Arity: -3, Keys: KeySpec{NumKeysAt: 1, NumKeys: NumKeysZset}, Kind: SingleKey, Flags: AllKeysOneServer, Twemproxy: true},
	{Name: "zunionstore", Arity: -4, Keys: KeySpec{FirstKey: 1, LastKey: 1, KeyStep: 1, NumKeysAt: 2, NumKeys: NumKeysZset}, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
}
