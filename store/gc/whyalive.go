package gc

import (
	"fmt"
	"sort"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// Liveness is the answer of WhyAlive.
type Liveness struct {
	Path  string `json:"path"`
	Alive bool   `json:"alive"`
	// Root names what holds the chain: a root's name ("generation/system/4",
	// "out-link:/home/me/result", a user root) or "temporary root of
	// process N".
	Root string `json:"root,omitempty"`
	// Chain runs from the rooted path down to Path, each element
	// referring to the next.
	Chain []string `json:"chain,omitempty"`
	// Refcount is the path's stored count.
	Refcount uint64 `json:"refcount"`
	// Cycle is set for a dead path that every ancestor refers to: held
	// only by a reference cycle, collected by `nexis gc --full`.
	Cycle bool `json:"cycle,omitempty"`
}

// WhyAlive finds the shortest chain from a root (or a running process's
// temporary root) down to p, searching upwards through the referrers:
// the work is bounded by p's ancestry, not the store. A path no root
// reaches is dead.
func WhyAlive(s *store.Store, p storepath.Path) (*Liveness, error) {
	ok, err := s.IsValid(p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w", s.Logical(p), store.ErrNotValid)
	}
	out := &Liveness{Path: s.Logical(p)}
	if out.Refcount, err = s.Refcount(p); err != nil {
		return nil, err
	}
	roots, err := s.Roots()
	if err != nil {
		return nil, err
	}
	rootOf := map[string][]string{}
	for _, r := range roots {
		rootOf[r.Path.Hash] = append(rootOf[r.Path.Hash], r.Name)
	}
	temp, err := store.ReadTempRoots(s.Dir(), false)
	if err != nil {
		return nil, err
	}
	// Breadth first, so the chain printed is a shortest one; "next"
	// points from a referrer back down towards p.
	next := map[string]string{p.Hash: ""}
	queue := []string{p.Hash}
	for len(queue) > 0 {
		h := queue[0]
		queue = queue[1:]
		name := ""
		if names := rootOf[h]; len(names) > 0 {
			sort.Strings(names)
			name = names[0]
		} else if t, ok := temp[h]; ok {
			name = fmt.Sprintf("temporary root of process %d", t.Owner)
		}
		if name != "" {
			out.Alive = true
			out.Root = name
			for c := h; c != ""; c = next[c] {
				cp, ok, err := s.PathByHash(c)
				if err != nil {
					return nil, err
				}
				if !ok {
					return nil, fmt.Errorf("%s vanished while it was being read", c)
				}
				out.Chain = append(out.Chain, s.Logical(cp))
			}
			return out, nil
		}
		refs, err := s.ReferrerHashes(h)
		if err != nil {
			return nil, err
		}
		sort.Strings(refs)
		for _, r := range refs {
			if _, seen := next[r]; !seen {
				next[r] = h
				queue = append(queue, r)
			}
		}
	}
	// Dead. The next collection takes it if some ancestor (or p itself)
	// is at zero; if every ancestor is referred to, they refer to each
	// other in a cycle, which only a mark-and-sweep collects.
	out.Cycle = true
	for h := range next {
		n, _, err := s.RefcountOf(h)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			out.Cycle = false
			break
		}
	}
	return out, nil
}
