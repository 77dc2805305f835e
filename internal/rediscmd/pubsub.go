package rediscmd

// pubsubCommands are the publish/subscribe commands, served by the proxy's
// subscription layer (see the proxy's redis_pubsub.go): a channel lives on
// the server its name hashes to, patterns on every server. SSUBSCRIBE,
// SUNSUBSCRIBE and SPUBLISH name shard channels at key positions, as in
// Redis 7's COMMAND INFO, though they are not keys.
var pubsubCommands = []Command{
	{Name: "psubscribe", Arity: -2, Kind: PubSub},
	{Name: "publish", Arity: 3, Kind: PubSub},
	{Name: "pubsub", Arity: -2, Kind: PubSub},
	{Name: "punsubscribe", Arity: -1, Kind: PubSub},
	{Name: "spublish", Arity: 3, Keys: keyAt1, Kind: PubSub},
	{Name: "ssubscribe", Arity: -2, Keys: keysFrom1, Kind: PubSub},
	{Name: "subscribe", Arity: -2, Kind: PubSub},
	{Name: "sunsubscribe", Arity: -1, Keys: keysFrom1, Kind: PubSub},
	{Name: "unsubscribe", Arity: -1, Kind: PubSub},
}
