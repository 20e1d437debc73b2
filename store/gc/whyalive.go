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
	temp, err := store.ReadTempRoots(s.Dir(), false)
	if err != nil {
		return nil, err
	}
	return whyAlive(s, p, temp)
}

// whyAlive is WhyAlive on any graph, with the temporary roots read.
func whyAlive(g Graph, p storepath.Path, temp map[string]store.TempRoot) (*Liveness, error) {
	ns, err := g.GCNodes([]string{p.Hash})
	if err != nil {
		return nil, err
	}
	if ns[0] == nil || ns[0].Path != p {
		return nil, fmt.Errorf("%s: %w", g.Logical(p), store.ErrNotValid)
	}
	out := &Liveness{Path: g.Logical(p), Refcount: ns[0].Refcount}
	roots, err := g.RootsWithPrefix("")
	if err != nil {
		return nil, err
	}
	rootOf := map[string][]string{}
	for _, r := range roots {
		rootOf[r.Path.Hash] = append(rootOf[r.Path.Hash], r.Name)
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
			var chain []string
			for c := h; c != ""; c = next[c] {
				chain = append(chain, c)
			}
			nodes, err := g.GCNodes(chain)
			if err != nil {
				return nil, err
			}
			for i, n := range nodes {
				if n == nil {
					return nil, fmt.Errorf("%s vanished while it was being read", chain[i])
				}
				out.Chain = append(out.Chain, g.Logical(n.Path))
			}
			return out, nil
		}
		refs, err := g.ReferrerHashes(h)
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
	ancestry := make([]string, 0, len(next))
	for h := range next {
		ancestry = append(ancestry, h)
	}
	counts, _, err := g.RefcountsOf(ancestry)
	if err != nil {
		return nil, err
	}
	for _, n := range counts {
		if n == 0 {
			out.Cycle = false
			break
		}
	}
	return out, nil
}
