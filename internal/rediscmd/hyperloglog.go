package rediscmd

// hyperloglogCommands are the HyperLogLog commands.
var hyperloglogCommands = []Command{
	{Name: "pfadd", Arity: -2, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "pfcount", Arity: -2, Keys: keysFrom1, Kind: SingleKey, Flags: AllKeysOneServer, Twemproxy: true},
	{Name: "pfdebug", Arity: 3, Keys: keyAt2, Kind: Unsupported, Flags: Write, Reason: ReasonAdmin},
	{Name: "pfmerge", Arity: -2, Keys: keysFrom1, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "pfselftest", Arity: 1, Kind: Unsupported, Reason: ReasonAdmin},
}
