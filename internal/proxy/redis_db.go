package proxy

import (
	"strconv"

	"github.com/shardproxy/shardproxy/internal/resp"
)

// SELECT n through the proxy: the client's requests run on database n of
// every server from then on. The servers' connections for redis_db (the
// database new clients start in) are the pool's usual ones; each other
// database a client selects gets connections of its own to every server,
// made when first needed and then shared, pipelined, by every client that
// selected it, as the default ones are. maxDatabases bounds how many
// databases a pool serves at once besides redis_db, so that clients
// cannot make it open connections without bound.
const maxDatabases = 16

// selectDB answers SELECT as Redis does, against the pool's databases key
// (the servers' own `databases` setting, 16 by default): the proxy knows
// the answer without asking a server, so requests pipelined after a
// SELECT run where the client expects. A server that has fewer databases
// than the key says refuses the SELECT its new connection sends, and every
// request queued on that connection gets the server's error: none runs on
// another database.
func (rp *redisProtocol) selectDB(s *session, r *request, args [][]byte) {
	n, ok := resp.ParseInt(args[1])
	switch {
	case !ok || n != int64(int32(n)):
		s.replyError(r, "value is not an integer or out of range")
		return
	case n < 0 || n >= int64(rp.pool.cfg.Databases):
		s.replyError(r, "DB index is out of range")
		return
	}
	db := int(n)
	if !rp.pool.useDB(db) {
		s.replyError(r, "SELECT "+strconv.Itoa(db)+": this pool already serves "+strconv.Itoa(maxDatabases)+
			" databases besides its redis_db, the most it opens server connections for")
		return
	}
	s.db = db
	s.client.db.Store(int32(db))
	s.reply(r, replyOK)
}

// useDB reports whether clients may select db: redis_db and the databases
// already in use always, another one while fewer than maxDatabases are.
func (p *Pool) useDB(db int) bool {
	if db == p.cfg.RedisDB {
		return true
	}
	p.dbMu.Lock()
	defer p.dbMu.Unlock()
	if p.dbs[db] {
		return true
	}
	if len(p.dbs) >= maxDatabases {
		return false
	}
	if p.dbs == nil {
		p.dbs = make(map[int]bool)
	}
	p.dbs[db] = true
	return true
}
