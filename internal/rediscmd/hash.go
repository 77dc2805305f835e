package rediscmd

// hashCommands are the hash commands. Each has one key, so all are served as
// twemproxy serves them.
var hashCommands = []Command{
	{Name: "hdel", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "hexists", Arity: 3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "hget", Arity: 3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "hgetall", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "hincrby", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "hincrbyfloat", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "hkeys", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "hlen", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "hmget", Arity: -3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "hmset", Arity: -4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "hrandfield", Arity: -2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "hscan", Arity: -3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "hset", Arity: -4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "hsetnx", Arity: 4, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "hstrlen", Arity: 3, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "hvals", Arity: 2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
}
