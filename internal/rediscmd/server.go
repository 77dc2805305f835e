package rediscmd

// serverCommands are the server commands. COMMAND and LOLWUT are forwarded
// to the server of PlaceholderKey, as twemproxy forwards them; twemproxy
// accepts COMMAND only alone, while the proxy serves its subcommands
// (COUNT, DOCS, INFO, …) the same way. The rest administer one server and
// are refused.
var serverCommands = []Command{
	{Name: "acl", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "bgrewriteaof", Arity: 1, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "bgsave", Arity: -1, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "client", Arity: -2, Kind: Unsupported, Reason: ReasonConnection},
	{Name: "cluster", Arity: -2, Kind: Unsupported, Reason: ReasonCluster},
	{Name: "command", Arity: -1, Kind: Keyless, Twemproxy: true, subcommands: commandSubcommands},
	{Name: "config", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "debug", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "failover", Arity: -1, Kind: Unsupported, Reason: ReasonReplication},
	// INFO is answered by the proxy (twemproxy does not serve it): its own
	// sections, and the servers' keyspace lines added up.
	{Name: "info", Arity: -1, Kind: Local},
	{Name: "lastsave", Arity: 1, Kind: Unsupported, Reason: ReasonNoKey},
	{Name: "latency", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "lolwut", Arity: -1, Kind: Keyless, Twemproxy: true},
	{Name: "module", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "monitor", Arity: 1, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "psync", Arity: -3, Kind: Unsupported, Reason: ReasonReplication},
	{Name: "replconf", Arity: -1, Kind: Unsupported, Reason: ReasonReplication},
	{Name: "replicaof", Arity: 3, Kind: Unsupported, Reason: ReasonReplication},
	{Name: "role", Arity: 1, Kind: Unsupported, Reason: ReasonReplication},
	{Name: "save", Arity: 1, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "shutdown", Arity: -1, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "slaveof", Arity: 3, Kind: Unsupported, Reason: ReasonReplication},
	{Name: "slowlog", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "sync", Arity: 1, Kind: Unsupported, Reason: ReasonReplication},
	// twemproxy refuses TIME on purpose: the servers' clocks may differ.
	{Name: "time", Arity: 1, Kind: Unsupported, Reason: ReasonNoKey},
	{Name: "wait", Arity: 3, Kind: Unsupported, Reason: ReasonReplication},
}

// commandSubcommands are COMMAND's subcommands. They describe the
// server's command table, the same on every server.
var commandSubcommands = []Command{
	{Name: "command|count", Arity: 2, Kind: Keyless},
	{Name: "command|docs", Arity: -2, Kind: Keyless},
	{Name: "command|getkeys", Arity: -4, Kind: Keyless},
	{Name: "command|getkeysandflags", Arity: -4, Kind: Keyless},
	{Name: "command|help", Arity: 2, Kind: Keyless},
	{Name: "command|info", Arity: -2, Kind: Keyless},
	{Name: "command|list", Arity: -2, Kind: Keyless},
}
