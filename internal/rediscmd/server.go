package rediscmd

// serverCommands are the server commands. COMMAND, LOLWUT and LASTSAVE are
// forwarded to the server of PlaceholderKey, as twemproxy forwards COMMAND
// and LOLWUT; twemproxy accepts COMMAND only alone, while the proxy serves
// its subcommands (COUNT, DOCS, INFO, …) the same way. INFO, TIME, ROLE and
// most of CLIENT are answered by the proxy (internal/proxy/redis_info.go,
// redis_client.go). The rest administer one server and are refused.
var serverCommands = []Command{
	{Name: "acl", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "bgrewriteaof", Arity: 1, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "bgsave", Arity: -1, Kind: Unsupported, Reason: ReasonAdmin},
	// CLIENT is answered by the proxy about the pool's own clients; the
	// subcommands about one server's state are refused.
	{Name: "client", Arity: -2, Kind: Unsupported, subcommands: clientSubcommands},
	{Name: "cluster", Arity: -2, Kind: Unsupported, Reason: ReasonCluster},
	{Name: "command", Arity: -1, Kind: Keyless, Twemproxy: true, subcommands: commandSubcommands},
	{Name: "config", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "debug", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "failover", Arity: -1, Kind: Unsupported, Reason: ReasonReplication},
	// INFO is answered by the proxy (twemproxy does not serve it): its own
	// sections, and the servers' keyspace lines added up.
	{Name: "info", Arity: -1, Kind: Local},
	// LASTSAVE: the last save of the server of PlaceholderKey (each server
	// saves on its own; there is no pool-wide answer).
	{Name: "lastsave", Arity: 1, Kind: Keyless},
	{Name: "latency", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "lolwut", Arity: -1, Kind: Keyless, Twemproxy: true},
	{Name: "module", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "monitor", Arity: 1, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "psync", Arity: -3, Kind: Unsupported, Reason: ReasonReplication},
	{Name: "replconf", Arity: -1, Kind: Unsupported, Reason: ReasonReplication},
	{Name: "replicaof", Arity: 3, Kind: Unsupported, Reason: ReasonReplication},
	// ROLE: the proxy is a master without replicas, as INFO's Replication
	// section says; the servers' own roles are behind it.
	{Name: "role", Arity: 1, Kind: Local},
	{Name: "save", Arity: 1, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "shutdown", Arity: -1, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "slaveof", Arity: 3, Kind: Unsupported, Reason: ReasonReplication},
	{Name: "slowlog", Arity: -2, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "sync", Arity: 1, Kind: Unsupported, Reason: ReasonReplication},
	// TIME: the proxy's own clock. twemproxy refuses TIME because the
	// servers' clocks may differ; the proxy's is one clock for every client.
	{Name: "time", Arity: 1, Kind: Local},
	// WAIT is answered by the proxy from every server's own WAIT (see the
	// proxy's redis_block.go).
	{Name: "wait", Arity: 3, Kind: Local},
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

// clientSubcommands are CLIENT's subcommands. The proxy answers those about
// the client's own connection (ID, SETNAME, GETNAME, SETINFO, REPLY,
// NO-EVICT, NO-TOUCH, INFO) and about the pool's clients (LIST, KILL):
// its clients are not the servers' clients, which are the proxy's shared
// connections. Those about one server's state are refused.
//
// SETINFO and NO-TOUCH are Redis 7.2's; client libraries send SETINFO when
// they connect (go-redis, redis-py, Jedis, …) and ignore an error.
var clientSubcommands = []Command{
	{Name: "client|caching", Arity: 3, Kind: Unsupported, Reason: ReasonTracking},
	{Name: "client|getname", Arity: 2, Kind: Local},
	{Name: "client|getredir", Arity: 2, Kind: Unsupported, Reason: ReasonTracking},
	{Name: "client|help", Arity: 2, Kind: Local},
	{Name: "client|id", Arity: 2, Kind: Local},
	{Name: "client|info", Arity: 2, Kind: Local},
	{Name: "client|kill", Arity: -3, Kind: Local},
	{Name: "client|list", Arity: -2, Kind: Local},
	{Name: "client|no-evict", Arity: 3, Kind: Local},
	{Name: "client|no-touch", Arity: 3, Kind: Local},
	{Name: "client|pause", Arity: -3, Kind: Unsupported, Reason: ReasonAdmin},
	{Name: "client|reply", Arity: 3, Kind: Local},
	{Name: "client|setinfo", Arity: 4, Kind: Local},
	{Name: "client|setname", Arity: 3, Kind: Local},
	{Name: "client|tracking", Arity: -3, Kind: Unsupported, Reason: ReasonTracking},
	{Name: "client|trackinginfo", Arity: 2, Kind: Unsupported, Reason: ReasonTracking},
	// CLIENT UNBLOCK takes a proxy client ID and unblocks that client's
	// blocking command on the servers it waits on.
	{Name: "client|unblock", Arity: -3, Kind: Local},
	{Name: "client|unpause", Arity: 2, Kind: Unsupported, Reason: ReasonAdmin},
}
