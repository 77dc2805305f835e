package rediscmd

// scriptingCommands are the script and function commands.
//
// twemproxy serves EVAL and EVALSHA with at least one key, routed by the
// first key (argv[3]), without checking the other keys; with numkeys 0 it
// closes the connection, and it closes it on SCRIPT and FUNCTION too. The
// proxy routes EVAL, EVALSHA and FCALL (and their _RO forms) by their keys,
// which must all be on one server; a request without keys is refused by
// KeyIndexes, and the proxy may then run it on the server of
// PlaceholderKey instead (its script_no_keys setting).
//
// Script and function management reaches every server (Broadcast): a
// script loaded through the proxy is then there whichever server its keys
// are on. What only describes one server's state is forwarded to the
// server of PlaceholderKey (FUNCTION LIST and DUMP: the same everywhere
// when functions are loaded through the proxy) or refused (FUNCTION STATS,
// which reports the function running on one server; SCRIPT DEBUG, which
// changes the state of a shared connection).
var scriptingCommands = []Command{
	{Name: "eval", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysEval}, Kind: SingleKey, Flags: AllKeysOneServer, Script: ScriptBody, Twemproxy: true},
	{Name: "eval_ro", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysEval}, Kind: SingleKey, Flags: AllKeysOneServer, Script: ScriptBody},
	{Name: "evalsha", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysEval}, Kind: SingleKey, Flags: AllKeysOneServer, Script: ScriptSHA, Twemproxy: true},
	{Name: "evalsha_ro", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysEval}, Kind: SingleKey, Flags: AllKeysOneServer, Script: ScriptSHA},
	{Name: "fcall", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysFcall}, Kind: SingleKey, Flags: AllKeysOneServer, Script: ScriptFunction},
	{Name: "fcall_ro", Arity: -3, Keys: KeySpec{NumKeysAt: 2, NumKeys: NumKeysFcall}, Kind: SingleKey, Flags: AllKeysOneServer, Script: ScriptFunction},
	{Name: "function", Arity: -2, Kind: Unsupported, subcommands: functionSubcommands},
	{Name: "script", Arity: -2, Kind: Unsupported, subcommands: scriptSubcommands},
}

// functionSubcommands are FUNCTION's subcommands.
var functionSubcommands = []Command{
	{Name: "function|delete", Arity: 3, Kind: Broadcast, Merge: MergeAll, Flags: Write},
	{Name: "function|dump", Arity: 2, Kind: Keyless},
	{Name: "function|flush", Arity: -2, Kind: Broadcast, Merge: MergeAll, Flags: Write},
	{Name: "function|help", Arity: 2, Kind: Keyless},
	{Name: "function|kill", Arity: 2, Kind: Broadcast, Merge: MergeAnyOK, Flags: Interrupt},
	{Name: "function|list", Arity: -2, Kind: Keyless},
	{Name: "function|load", Arity: -3, Kind: Broadcast, Merge: MergeAll, Flags: Write},
	{Name: "function|restore", Arity: -3, Kind: Broadcast, Merge: MergeAll, Flags: Write},
	{Name: "function|stats", Arity: 2, Kind: Unsupported, Reason: ReasonNoKey},
}

// scriptSubcommands are SCRIPT's subcommands.
var scriptSubcommands = []Command{
	{Name: "script|debug", Arity: 3, Kind: Unsupported, Reason: ReasonConnection},
	{Name: "script|exists", Arity: -3, Kind: Broadcast, Merge: MergeAnd},
	{Name: "script|flush", Arity: -2, Kind: Broadcast, Merge: MergeAll},
	{Name: "script|help", Arity: 2, Kind: Keyless},
	{Name: "script|kill", Arity: 2, Kind: Broadcast, Merge: MergeAnyOK, Flags: Interrupt},
	{Name: "script|load", Arity: 3, Kind: Broadcast, Merge: MergeAll, Script: ScriptBody},
}
