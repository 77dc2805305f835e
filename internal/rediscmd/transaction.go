package rediscmd

// transactionCommands are the transaction commands, refused: a transaction
// needs every command on one server connection.
var transactionCommands = []Command{
	{Name: "discard", Arity: 1, Kind: Unsupported, Reason: ReasonTransaction},
	{Name: "exec", Arity: 1, Kind: Unsupported, Reason: ReasonTransaction},
	{Name: "multi", Arity: 1, Kind: Unsupported, Reason: ReasonTransaction},
	{Name: "unwatch", Arity: 1, Kind: Unsupported, Reason: ReasonTransaction},
	{Name: "watch", Arity: -2, Keys: keysFrom1, Kind: Unsupported, Reason: ReasonTransaction},
}
