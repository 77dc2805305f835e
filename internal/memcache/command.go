package memcache

// Command identifies a request. The zero value is Unknown.
type Command uint8

// The commands of memcached 1.6's text protocol (proto_text.c,
// process_command_ascii), classic and meta.
const (
	Unknown Command = iota

	// Retrieval: any number of keys, a VALUE block per hit, then END.
	Get  // get <key>*  (also the legacy "bget")
	Gets // gets <key>*
	Gat  // gat <exptime> <key>*
	Gats // gats <exptime> <key>*

	// Storage: a command line, then a data block.
	Set     // set <key> <flags> <exptime> <bytes> [noreply]
	Add     // add ...
	Replace // replace ...
	Append  // append ...
	Prepend // prepend ...
	Cas     // cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]

	// One key, one line in reply.
	Delete // delete <key> [0] [noreply]
	Incr   // incr <key> <delta> [noreply]
	Decr   // decr <key> <delta> [noreply]
	Touch  // touch <key> <exptime> [noreply]

	// Meta commands: one key (mn: none) and flags.
	MetaGet        // mg <key> <flag>*
	MetaSet        // ms <key> <datalen> <flag>*, then a data block
	MetaDelete     // md <key> <flag>*
	MetaArithmetic // ma <key> <flag>*
	MetaNoop       // mn
	MetaDebug      // me <key> [b]

	// No key: the proxy answers these itself, broadcasts or refuses them.
	Version       // version
	Quit          // quit
	FlushAll      // flush_all [delay] [noreply]
	Stats         // stats [group ...]
	Verbosity     // verbosity <level> [noreply]
	Shutdown      // shutdown [graceful]
	CacheMemlimit // cache_memlimit <megabytes> [noreply]
	Slabs         // slabs reassign|automove ...
	LruCrawler    // lru_crawler ...
	Lru           // lru tune|mode|temp_ttl ...
	Watch         // watch [stream ...]: turns the connection into a log stream
	Extstore      // extstore <setting> <value>
	RefreshCerts  // refresh_certs

	numCommands
)

// class groups the commands that ParseRequest validates alike.
type class uint8

const (
	classNone      class = iota // no validation beyond the token count
	classRetrieval              // get, gets, bget
	classTouchGet               // gat, gats
	classStorage                // set, add, replace, append, prepend, cas
	classArith                  // incr, decr
	classTouch                  // touch
	classDelete                 // delete
	classMeta                   // mg, md, ma
	classMetaSet                // ms
	classMetaDebug              // me
	classVerbosity              // verbosity
	classFlushAll               // flush_all
	classMemlimit               // cache_memlimit
)

// replyKind says how a server's reply to a command is framed.
type replyKind uint8

const (
	replyLine   replyKind = iota // one line
	replyValues                  // VALUE blocks, then END
	replyMetaVA                  // "VA <len> ..." and a data block, or one line
	replyStats                   // STAT/ITEM/PREFIX lines, then END; or one line
)

// commandInfo is one row of the command table.
type commandInfo struct {
	name string
	// minTok and maxTok bound memcached's ntokens: the tokens of the line
	// plus its terminal pseudo-token, the line's word count capped at 23
	// plus one (tokenize_command, MAX_TOKENS 24). 0 means no bound. Out of
	// bounds, memcached answers "ERROR" (WANT_TOKENS).
	minTok, maxTok int
	class          class
	reply          replyKind
	// noreply: a last token "noreply" silences the reply, errors included
	// (set_noreply_maybe, out_string).
	noreply bool
	// cas: a storage command with a <cas unique> argument.
	cas bool
	// keyed: the first argument is a key the proxy routes by.
	keyed bool
}

// commands is the command table, indexed by Command. Adding a command is
// one row here.
var commands = [numCommands]commandInfo{
	Unknown: {name: "", reply: replyLine},

	Get:  {name: "get", minTok: 3, class: classRetrieval, reply: replyValues, keyed: true},
	Gets: {name: "gets", minTok: 3, class: classRetrieval, reply: replyValues, keyed: true},
	Gat:  {name: "gat", minTok: 3, class: classTouchGet, reply: replyValues, keyed: true},
	Gats: {name: "gats", minTok: 3, class: classTouchGet, reply: replyValues, keyed: true},

	Set:     {name: "set", minTok: 6, maxTok: 7, class: classStorage, noreply: true, keyed: true},
	Add:     {name: "add", minTok: 6, maxTok: 7, class: classStorage, noreply: true, keyed: true},
	Replace: {name: "replace", minTok: 6, maxTok: 7, class: classStorage, noreply: true, keyed: true},
	Append:  {name: "append", minTok: 6, maxTok: 7, class: classStorage, noreply: true, keyed: true},
	Prepend: {name: "prepend", minTok: 6, maxTok: 7, class: classStorage, noreply: true, keyed: true},
	Cas:     {name: "cas", minTok: 7, maxTok: 8, class: classStorage, noreply: true, cas: true, keyed: true},

	Delete: {name: "delete", minTok: 3, maxTok: 5, class: classDelete, noreply: true, keyed: true},
	Incr:   {name: "incr", minTok: 4, maxTok: 5, class: classArith, noreply: true, keyed: true},
	Decr:   {name: "decr", minTok: 4, maxTok: 5, class: classArith, noreply: true, keyed: true},
	Touch:  {name: "touch", minTok: 4, maxTok: 5, class: classTouch, noreply: true, keyed: true},

	MetaGet:        {name: "mg", minTok: 3, class: classMeta, reply: replyMetaVA, keyed: true},
	MetaSet:        {name: "ms", minTok: 3, class: classMetaSet, keyed: true},
	MetaDelete:     {name: "md", minTok: 3, class: classMeta, keyed: true},
	MetaArithmetic: {name: "ma", minTok: 3, class: classMeta, reply: replyMetaVA, keyed: true},
	MetaNoop:       {name: "mn"},
	MetaDebug:      {name: "me", class: classMetaDebug, keyed: true},

	Version:       {name: "version"},
	Quit:          {name: "quit"},
	FlushAll:      {name: "flush_all", minTok: 2, maxTok: 4, class: classFlushAll, noreply: true},
	Stats:         {name: "stats", reply: replyStats},
	Verbosity:     {name: "verbosity", minTok: 3, maxTok: 4, class: classVerbosity, noreply: true},
	Shutdown:      {name: "shutdown"},
	CacheMemlimit: {name: "cache_memlimit", minTok: 3, maxTok: 4, class: classMemlimit, noreply: true},
	Slabs:         {name: "slabs"},
	LruCrawler:    {name: "lru_crawler"},
	Lru:           {name: "lru", minTok: 3, noreply: true},
	Watch:         {name: "watch", noreply: true},
	Extstore:      {name: "extstore", minTok: 3, noreply: true},
	RefreshCerts:  {name: "refresh_certs", noreply: true},
}

// lookup returns the command named name, or Unknown. It scans the table
// in order, so the commands listed first (get, gets, set, ...) are found
// after a comparison or two; most comparisons stop at the length.
func lookup(name []byte) Command {
	for c := Get; c < numCommands; c++ {
		if string(name) == commands[c].name {
			return c
		}
	}
	if string(name) == "bget" { // an ancient alias memcached still serves
		return Get
	}
	return Unknown
}

// String returns the command's name as memcached spells it ("get", "mg"),
// or "unknown".
func (c Command) String() string {
	if c == Unknown || c >= numCommands {
		return "unknown"
	}
	return commands[c].name
}

// IsRetrieval reports whether c is get, gets, gat or gats: a request with
// any number of keys, whose reply is VALUE blocks and END.
func (c Command) IsRetrieval() bool { return c < numCommands && commands[c].reply == replyValues }

// IsStorage reports whether a data block follows c's command line (set,
// add, replace, append, prepend, cas, ms).
func (c Command) IsStorage() bool {
	return c < numCommands && (commands[c].class == classStorage || c == MetaSet)
}

// IsMeta reports whether c is a meta command (mg, ms, md, ma, mn, me).
func (c Command) IsMeta() bool { return c >= MetaGet && c <= MetaDebug }

// HasKey reports whether c carries keys the proxy routes by. Commands
// without one (version, stats, flush_all, mn, ...) are the proxy's to answer,
// broadcast or refuse.
func (c Command) HasKey() bool { return c < numCommands && commands[c].keyed }
