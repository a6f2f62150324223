package tenants

import (
	"bytes"
	"strings"
	"sync"
	"time"

	"github.com/sloworks/broker/db"
)

// DefaultRowTTL is how long a Service serves a tenant, app or connection from memory before it
// reads the row again.
const DefaultRowTTL = time.Second

// maxRows bounds the row cache: past it, expired entries are dropped, and if none had expired the
// whole cache is.
const maxRows = 50_000

// rowCache holds the rows every sign-in and logout reads — tenants (by slug and ID), apps (by ID
// and entity ID), connections (by ID) and each tenant's login connection — for at most ttl.
//
// Apps and connections are never updated, only created and deleted, and the Service that
// creates or deletes anything drops the whole cache at once; a deletion made through another
// process on the same database (another replica, the CLI) is seen within ttl. Absent rows are
// never cached, so a new tenant, app or connection works at once everywhere. Callers get copies.
type rowCache struct {
	ttl time.Duration
	now func() time.Time

	mu  sync.Mutex
	m   map[string]cachedRow
	gen uint64 // counts resets: a row loaded before a reset is not cached after it
}

type cachedRow struct {
	v  any // *db.Tenant, *db.App or *db.Connection
	at time.Time
}

func newRowCache(ttl time.Duration, now func() time.Time) *rowCache {
	return &rowCache{ttl: ttl, now: now, m: map[string]cachedRow{}}
}

// rowKey is a cache key: a kind, then the lookup's fields, joined by NUL (which no slug or ID
// contains).
func rowKey(kind string, parts ...string) string {
	return kind + "\x00" + strings.Join(parts, "\x00")
}

func (c *rowCache) get(key string) (any, bool) {
	if c.ttl <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok {
		return nil, false
	}
	if c.now().Sub(e.at) >= c.ttl {
		delete(c.m, key)
		return nil, false
	}
	return e.v, true
}

// begin is taken before a load: the time and the reset count it is cached under.
func (c *rowCache) begin() (time.Time, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now(), c.gen
}

// put caches v, read from the store after begin returned at and gen: the entry's age counts from
// before the read, and a row read across a reset (a create or delete here) is not cached.
func (c *rowCache) put(key string, v any, at time.Time, gen uint64) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if len(c.m) >= maxRows {
		now := c.now()
		for k, e := range c.m {
			if now.Sub(e.at) >= c.ttl {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxRows {
			clear(c.m)
		}
	}
	c.m[key] = cachedRow{v: v, at: at}
}

// reset drops every entry: after any create or delete.
func (c *rowCache) reset() {
	c.mu.Lock()
	clear(c.m)
	c.gen++
	c.mu.Unlock()
}

func copyTenant(t *db.Tenant) *db.Tenant { c := *t; return &c }

func copyApp(a *db.App) *db.App {
	c := *a
	c.Metadata = bytes.Clone(a.Metadata)
	return &c
}

func copyConnection(x *db.Connection) *db.Connection {
	c := *x
	c.Config = bytes.Clone(x.Config)
	c.Metadata = bytes.Clone(x.Metadata)
	return &c
}

// cachedLookup returns the row under key from the cache, else loads it, caches it and returns a
// copy. Errors (db.ErrNotFound included) are not cached.
func cachedLookup[T any](c *rowCache, key string, copyOf func(*T) *T, load func() (*T, error)) (*T, error) {
	if v, ok := c.get(key); ok {
		return copyOf(v.(*T)), nil
	}
	at, gen := c.begin()
	row, err := load()
	if err != nil {
		return nil, err
	}
	c.put(key, copyOf(row), at, gen)
	return row, nil
}
