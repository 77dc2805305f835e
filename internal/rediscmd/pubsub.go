package rediscmd

// pubsubCommands are the pub/sub commands, refused for now.
var pubsubCommands = []Command{
	{Name: "psubscribe", Arity: -2, Kind: Unsupported, Reason: ReasonPubSub},
	{Name: "publish", Arity: 3, Kind: Unsupported, Reason: ReasonPubSub},
	{Name: "pubsub", Arity: -2, Kind: Unsupported, Reason: ReasonPubSub},
	{Name: "punsubscribe", Arity: -1, Kind: Unsupported, Reason: ReasonPubSub},
	{Name: "spublish", Arity: 3, Keys: keyAt1, Kind: Unsupported, Reason: ReasonPubSub},
	{Name: "ssubscribe", Arity: -2, Keys: keysFrom1, Kind: Unsupported, Reason: ReasonPubSub},
	{Name: "subscribe", Arity: -2, Kind: Unsupported, Reason: ReasonPubSub},
	{Name: "sunsubscribe", Arity: -1, Keys: keysFrom1, Kind: Unsupported, Reason: ReasonPubSub},
	{Name: "unsubscribe", Arity: -1, Kind: Unsupported, Reason: ReasonPubSub},
}
