package rediscmd

// connectionCommands are the connection commands. PING, ECHO, QUIT, AUTH,
// SELECT and RESET are answered by the proxy. twemproxy answers PING (only without
// a message) and AUTH itself, closes the connection without a reply on
// QUIT, and closes it as on a parse error on ECHO, SELECT and PING with a
// message.
var connectionCommands = []Command{
	{Name: "asking", Arity: 1, Kind: Unsupported, Reason: ReasonCluster},
	// AUTH is checked against the pool's redis_auth, as twemproxy does.
	{Name: "auth", Arity: -2, Kind: Local, Twemproxy: true},
	{Name: "echo", Arity: 2, Kind: Local},
	// HELLO is answered as by a Redis without it (unknown command), so
	// that clients fall back to RESP2; RESP3 is not served yet.
	{Name: "hello", Arity: -1, Kind: Local},
	// PING replies +PONG, or its message as a bulk string. Redis checks
	// the argument count itself, hence MaxArgs.
	{Name: "ping", Arity: -1, MaxArgs: 2, Kind: Local, Twemproxy: true},
	// QUIT replies +OK, as Redis does, and closes the connection.
	{Name: "quit", Arity: -1, Kind: Local, Twemproxy: true},
	{Name: "readonly", Arity: 1, Kind: Unsupported, Reason: ReasonCluster},
	{Name: "readwrite", Arity: 1, Kind: Unsupported, Reason: ReasonCluster},
	// RESET resets what the proxy keeps of the connection (name, reply
	// mode, transaction, authentication) and replies +RESET.
	{Name: "reset", Arity: 1, Kind: Local},
	// SELECT n moves the client to database n of every server (checked
	// against the pool's databases key).
	{Name: "select", Arity: 2, Kind: Local},
}
