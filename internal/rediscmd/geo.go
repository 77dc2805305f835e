package rediscmd

// geoCommands are the geospatial commands.
var geoCommands = []Command{
	{Name: "geoadd", Arity: -5, Keys: keyAt1, Kind: SingleKey, Flags: Write, Twemproxy: true},
	{Name: "geodist", Arity: -4, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "geohash", Arity: -2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "geopos", Arity: -2, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	// GEORADIUS and GEORADIUSBYMEMBER may name a STORE or STOREDIST
	// destination (see geoStoreKey), which must share the key's server.
	{Name: "georadius", Arity: -6, Keys: KeySpec{FirstKey: 1, LastKey: 1, KeyStep: 1, Extra: geoStoreKey}, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "georadius_ro", Arity: -6, Keys: keyAt1, Kind: SingleKey},
	{Name: "georadiusbymember", Arity: -5, Keys: KeySpec{FirstKey: 1, LastKey: 1, KeyStep: 1, Extra: geoStoreKey}, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
	{Name: "georadiusbymember_ro", Arity: -5, Keys: keyAt1, Kind: SingleKey},
	{Name: "geosearch", Arity: -7, Keys: keyAt1, Kind: SingleKey, Twemproxy: true},
	{Name: "geosearchstore", Arity: -8, Keys: keysAt1To2, Kind: SingleKey, Flags: Write | AllKeysOneServer, Twemproxy: true},
}
