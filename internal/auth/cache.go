package auth

import (
	"sync"
	"time"
)

// DefaultKeyCacheTTL is how long a replica trusts an access key it loaded
// from the store before loading it again.
const DefaultKeyCacheTTL = 2 * time.Second

// maxCachedKeys bounds the cache; it is emptied when full. Only keys that
// exist and are enabled are cached, so unknown key ids cannot fill it.
const maxCachedKeys = 4096

// keyCache keeps recently loaded access keys for a short time, so that the
// many requests of one push do not each query the store (one lookup costs
// 0.05-0.4 ms, more than the rest of authentication). Changes made through
// this Service drop their entry at once; changes made by another replica
// are seen within the TTL.
type keyCache struct {
	ttl time.Duration
	mu  sync.Mutex
	m   map[string]cachedKey
}

type cachedKey struct {
	key     activeKey
	expires time.Time
}

func (c *keyCache) get(id string, now time.Time) (activeKey, bool) {
	if c.ttl <= 0 {
		return activeKey{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok || !now.Before(e.expires) || now.Before(e.expires.Add(-c.ttl)) {
		return activeKey{}, false
	}
	return e.key, true
}

func (c *keyCache) put(id string, k activeKey, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedKeys {
		c.m = make(map[string]cachedKey)
	}
	c.m[id] = cachedKey{key: k, expires: now.Add(c.ttl)}
}

// forget drops one key, or every key when id is "".
func (c *keyCache) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id == "" {
		c.m = nil
		return
	}
	delete(c.m, id)
}
