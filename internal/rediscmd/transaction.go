package rediscmd

// transactionCommands are the transaction commands. MULTI, EXEC, DISCARD
// and UNWATCH are served by the proxy: it answers MULTI and queues the
// commands itself, and EXEC sends the whole transaction to the one server
// its keys are on, as one block that no other client's request can enter
// (see internal/proxy/redis_tx.go). WATCH needs a server connection of the
// client's own, which the proxy does not open yet.
var transactionCommands = []Command{
	{Name: "discard", Arity: 1, Kind: Local},
	{Name: "exec", Arity: 1, Kind: Local},
	{Name: "multi", Arity: 1, Kind: Local},
	// UNWATCH: no key is ever watched through the proxy, so there is
	// nothing to forget.
	{Name: "unwatch", Arity: 1, Kind: Local},
	// WATCH pins the client to a connection of its own to the keys' server
	// until the watch ends (internal/proxy/redis_watch.go).
	{Name: "watch", Arity: -2, Keys: keysFrom1, Kind: Local},
}
