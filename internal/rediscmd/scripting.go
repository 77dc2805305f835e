package rediscmd

// scriptingCommands are the script and function commands.
//
// twemproxy serves EVAL and EVALSHA with at least one key, routed by the
// first key (argv[3]) without checking the others; with numkeys 0 it closes
// the connection. The proxy checks that all the keys share a server and
// refuses numkeys 0 with an error reply (see KeyIndexes). SCRIPT and
// FUNCTION will have to be broadcast to every server.
//
// twemproxy serves EVAL and EVALSHA with at least one key, routed by the
// first key (argv[3]), without checking the other keys; with numkeys 0 it
// closes the connection. The proxy checks that all the keys share a server
// and refuses numkeys 0 with an error (see KeyIndexes).
var scriptingCommands = []Command{
	{Name: "eval", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysEval}, Kind: SingleKey, Flags: AllKeysOneServer, Twemproxy: true},
	{Name: "eval_ro", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysEval}, Kind: SingleKey, Flags: AllKeysOneServer},
	{Name: "evalsha", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysEval}, Kind: SingleKey, Flags: AllKeysOneServer, Twemproxy: true},
	{Name: "evalsha_ro", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysEval}, Kind: SingleKey, Flags: AllKeysOneServer},
	{Name: "fcall", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysFcall}, Kind: SingleKey, Flags: AllKeysOneServer},
	{Name: "fcall_ro", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysFcall}, Kind: SingleKey, Flags: AllKeysOneServer},
	{Name: "function", Arity: -2, Kind: Unsupported, Reason: ReasonScripting, subcommands: functionSubcommands},
	{Name: "script", Arity: -2, Kind: Unsupported, Reason: ReasonScripting, subcommands: scriptSubcommands},
}

// functionSubcommands are FUNCTION's subcommands, all refused for now.
var functionSubcommands = []Command{
	{Name: "function|delete", Arity: 3, Kind: Unsupported, Flags: Write, Reason: ReasonScripting},
	{Name: "function|dump", Arity: 2, Kind: Unsupported, Reason: ReasonScripting},
	{Name: "function|flush", Arity: -2, Kind: Unsupported, Flags: Write, Reason: ReasonScripting},
	{Name: "function|help", Arity: 2, Kind: Unsupported, Reason: ReasonScripting},
	{Name: "function|kill", Arity: 2, Kind: Unsupported, Reason: ReasonScripting},
	{Name: "function|list", Arity: -2, Kind: Unsupported, Reason: ReasonScripting},
	{Name: "function|load", Arity: -3, Kind: Unsupported, Flags: Write, Reason: ReasonScripting},
	{Name: "function|restore", Arity: -3, Kind: Unsupported, Flags: Write, Reason: ReasonScripting},
	{Name: "function|stats", Arity: 2, Kind: Unsupported, Reason: ReasonScripting},
}

// scriptSubcommands are SCRIPT's subcommands, all refused for now.
var scriptSubcommands = []Command{
	{Name: "script|debug", Arity: 3, Kind: Unsupported, Reason: ReasonScripting},
	{Name: "script|exists", Arity: -3, Kind: Unsupported, Reason: ReasonScripting},
	{Name: "script|flush", Arity: -2, Kind: Unsupported, Reason: ReasonScripting},
	{Name: "script|help", Arity: 2, Kind: Unsupported, Reason: ReasonScripting},
	{Name: "script|kill", Arity: 2, Kind: Unsupported, Reason: ReasonScripting},
	{Name: "script|load", Arity: 3, Kind: Unsupported, Reason: ReasonScripting},
}
