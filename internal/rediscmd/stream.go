package rediscmd

// streamCommands are the stream commands. twemproxy 0.5.0 supports none of
// them.
var streamCommands = []Command{
	{Name: "xack", Arity: -4, Keys: keyAt1, Kind: SingleKey, Flags: Write},
	{Name: "xadd", Arity: -5, Keys: keyAt1, Kind: SingleKey, Flags: Write},
	{Name: "xautoclaim", Arity: -6, Keys: keyAt1, Kind: SingleKey, Flags: Write},
	{Name: "xclaim", Arity: -6, Keys: keyAt1, Kind: SingleKey, Flags: Write},
	{Name: "xdel", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write},
	{Name: "xgroup", Arity: -2, Kind: Unsupported, subcommands: xgroupSubcommands},
	{Name: "xinfo", Arity: -2, Kind: Unsupported, subcommands: xinfoSubcommands},
	{Name: "xlen", Arity: 2, Keys: keyAt1, Kind: SingleKey},
	{Name: "xpending", Arity: -3, Keys: keyAt1, Kind: SingleKey},
	{Name: "xrange", Arity: -4, Keys: keyAt1, Kind: SingleKey},
	// XREAD and XREADGROUP with BLOCK run as blocking commands (see
	// BlockTimeout), their streams on one server.
	{Name: "xread", Arity: -4, Keys: KeySpec{Extra: streamKeys}, Kind: SingleKey, Flags: AllKeysOneServer | Blocking},
	{Name: "xreadgroup", Arity: -7, Keys: KeySpec{Extra: streamKeys}, Kind: SingleKey, Flags: Write | AllKeysOneServer | Blocking},
	{Name: "xrevrange", Arity: -4, Keys: keyAt1, Kind: SingleKey},
	{Name: "xsetid", Arity: -3, Keys: keyAt1, Kind: SingleKey, Flags: Write},
	{Name: "xtrim", Arity: -4, Keys: keyAt1, Kind: SingleKey, Flags: Write},
}

// xgroupSubcommands are XGROUP's subcommands; the key is argv[2].
var xgroupSubcommands = []Command{
	{Name: "xgroup|create", Arity: -5, Keys: keyAt2, Kind: SingleKey, Flags: Write},
	{Name: "xgroup|createconsumer", Arity: 5, Keys: keyAt2, Kind: SingleKey, Flags: Write},
	{Name: "xgroup|delconsumer", Arity: 5, Keys: keyAt2, Kind: SingleKey, Flags: Write},
	{Name: "xgroup|destroy", Arity: 4, Keys: keyAt2, Kind: SingleKey, Flags: Write},
	{Name: "xgroup|help", Arity: 2, Kind: Keyless},
	{Name: "xgroup|setid", Arity: -5, Keys: keyAt2, Kind: SingleKey, Flags: Write},
}

// xinfoSubcommands are XINFO's subcommands; the key is argv[2].
var xinfoSubcommands = []Command{
	{Name: "xinfo|consumers", Arity: 4, Keys: keyAt2, Kind: SingleKey},
	{Name: "xinfo|groups", Arity: 3, Keys: keyAt2, Kind: SingleKey},
	{Name: "xinfo|help", Arity: 2, Kind: Keyless},
	{Name: "xinfo|stream", Arity: -3, Keys: keyAt2, Kind: SingleKey},
}
