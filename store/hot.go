package store

import "sync"

// hotCache keeps, in a writable store, the path records and reference
// counts this process has read or committed. One process writes a store
// at a time (the writer lock), and in it every write goes through a
// commit, so what the cache holds stays what the database holds as long
// as commits keep it current. Registration reads the records and counts
// of every reference; with the cache, a bulk registration (a closure
// copied in batches, a long build) finds paths it registered or read
// before without a RocksDB lookup, which otherwise searches memtables and
// more table files as the store grows.
type hotCache struct {
	mu sync.Mutex
	m  map[hotKey][]byte
}

type hotKey struct {
	cf  int // index in cfNames
	key string
}

// hotMax bounds the cache (about 100 MB at the largest records); beyond
// it the cache starts over.
const hotMax = 1 << 20

func hotFamily(cf int) bool { return cf == cfIndex[cfPaths] || cf == cfIndex[cfRefcount] }

// get returns the cached values of keys in family cf (nil where unknown)
// and which keys were not cached.
func (h *hotCache) get(cf int, keys [][]byte) (vals [][]byte, missing []int) {
	vals = make([][]byte, len(keys))
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, k := range keys {
		if v, ok := h.m[hotKey{cf, string(k)}]; ok {
			vals[i] = v
		} else {
			missing = append(missing, i)
		}
	}
	return vals, missing
}

// remember caches values read from the database (nil: absent, not
// cached, since absent keys are the ones about to be written).
func (h *hotCache) remember(cf int, keys, vals [][]byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, v := range vals {
		if v != nil {
			h.set(hotKey{cf, string(keys[i])}, v)
		}
	}
}

func (h *hotCache) set(k hotKey, v []byte) {
	if h.m == nil || len(h.m) >= hotMax {
		h.m = map[hotKey][]byte{}
	}
	h.m[k] = v
}

// committed applies a committed batch's operations (every write of the
// store goes through a txn's operation list).
func (h *hotCache) committed(ops []op) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, o := range ops {
		if !hotFamily(o.cf) {
			continue
		}
		k := hotKey{o.cf, string(o.key)}
		if o.del {
			delete(h.m, k)
		} else {
			h.set(k, o.val)
		}
	}
}
