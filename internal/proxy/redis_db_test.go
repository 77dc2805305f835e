package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// serverGet reads key from database db of the server at addr.
func serverGet(t *testing.T, addr string, db int, key string) string {
	t.Helper()
	c := dialRaw(t, addr)
	c.send(cmd("SELECT", fmt.Sprint(db)) + cmd("GET", key))
	if got := c.readReply(); got != "+OK\r\n" {
		t.Fatalf("SELECT %d on %s: %q", db, addr, got)
	}
	return c.readReply()
}

// TestSelect: SELECT n moves a client's requests to database n of every
// server; other clients stay where they are; Redis's own errors for a bad
// index; RESET goes back to redis_db.
func TestSelect(t *testing.T) {
	servers := startRedises(t, 2)
	px, addr := redisPool(t, "  redis_db: 1\n", servers...)
	a, b := dialRaw(t, addr), dialRaw(t, addr)
	for _, tc := range []struct{ req, want string }{
		{cmd("SELECT", "3"), "+OK\r\n"},
		{cmd("SET", "k", "in3"), "+OK\r\n"},
		{cmd("MSET", "k1", "x", "k2", "y", "k3", "z", "k4", "w"), "+OK\r\n"}, // split over both servers, in db 3
		{cmd("GET", "k"), "$3\r\nin3\r\n"},
		{cmd("SELECT", "16"), "-ERR DB index is out of range\r\n"},
		{cmd("SELECT", "-1"), "-ERR DB index is out of range\r\n"},
		{cmd("SELECT", "x"), "-ERR value is not an integer or out of range\r\n"},
		{cmd("GET", "k"), "$3\r\nin3\r\n"}, // a refused SELECT changes nothing
	} {
		if got := a.roundTrip(tc.req); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.req, got, tc.want)
		}
	}
	if got := b.roundTrip(cmd("GET", "k")); got != "$-1\r\n" {
		t.Errorf("another client (database 1) sees k: %q", got)
	}
	owner := backendOf(px, "k")
	if got := serverGet(t, owner, 3, "k"); got != "$3\r\nin3\r\n" {
		t.Errorf("database 3 of %s: k = %q", owner, got)
	}
	if got := serverGet(t, owner, 1, "k"); got != "$-1\r\n" {
		t.Errorf("database 1 of %s: k = %q", owner, got)
	}
	for i := 1; i <= 4; i++ {
		k := fmt.Sprintf("k%d", i)
		if got := serverGet(t, backendOf(px, k), 3, k); !strings.HasPrefix(got, "$1\r\n") {
			t.Errorf("%s in database 3 of its server: %q", k, got)
		}
	}
	if got := a.roundTrip(cmd("CLIENT", "INFO")); !strings.Contains(got, " db=3 ") {
		t.Errorf("CLIENT INFO after SELECT 3: %q", got)
	}
	// A transaction runs in the client's database.
	a.send(cmd("MULTI") + cmd("INCR", "n") + cmd("EXEC"))
	for range 2 {
		a.readReply()
	}
	if got := a.readReply(); got != "*1\r\n:1\r\n" {
		t.Errorf("EXEC in database 3: %q", got)
	}
	if got := serverGet(t, backendOf(px, "n"), 3, "n"); got != "$1\r\n1\r\n" {
		t.Errorf("n in database 3: %q", got)
	}
	if got := a.roundTrip(cmd("RESET")); got != "+RESET\r\n" {
		t.Errorf("RESET: %q", got)
	}
	if got := a.roundTrip(cmd("GET", "k")); got != "$-1\r\n" {
		t.Errorf("after RESET (database 1): k = %q", got)
	}
}

// TestSelectBounded: at most maxDatabases databases besides redis_db.
func TestSelectBounded(t *testing.T) {
	servers := startRedises(t, 1)
	_, addr := redisPool(t, "  databases: 64\n", servers...)
	c := dialRaw(t, addr)
	for db := 1; db <= maxDatabases; db++ {
		if got := c.roundTrip(cmd("SELECT", fmt.Sprint(db))); got != "+OK\r\n" {
			t.Fatalf("SELECT %d: %q", db, got)
		}
	}
	got := c.roundTrip(cmd("SELECT", fmt.Sprint(maxDatabases+1)))
	if !strings.HasPrefix(got, "-ERR SELECT 17: this pool already serves 16 databases") {
		t.Errorf("SELECT %d: %q", maxDatabases+1, got)
	}
	for _, db := range []string{"0", "5"} { // redis_db and one in use: always
		if got := c.roundTrip(cmd("SELECT", db)); got != "+OK\r\n" {
			t.Errorf("SELECT %s: %q", db, got)
		}
	}
}

// TestSelectGoRedis: go-redis with Options.DB = 3 (it SELECTs on each new
// connection) writes into database 3 of the key's server.
func TestSelectGoRedis(t *testing.T) {
	servers := startRedises(t, 2)
	px, addr := redisPool(t, "", servers...)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: addr, DB: 3})
	defer c.Close()
	for i := range 20 {
		k := fmt.Sprintf("g%d", i)
		if err := c.Set(ctx, k, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		k := fmt.Sprintf("g%d", i)
		if got := serverGet(t, backendOf(px, k), 3, k); got != "$1\r\nv\r\n" {
			t.Errorf("%s in database 3: %q", k, got)
		}
		if got := serverGet(t, backendOf(px, k), 0, k); got != "$-1\r\n" {
			t.Errorf("%s in database 0: %q", k, got)
		}
	}
}
