package realise

import (
	"strings"
	"sync"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// Outputs of a build that sees host paths ([nexis] sandbox_paths) are
// impure (store.PathInfo.Impure), and so is everything built from them:
// their bytes may depend on the host's, which no identity names. They
// are never substituted (the cache's copy says nothing about this
// host's) and never built on, or for, another machine.

// hostPaths finds, among d and the derivations it is built from, one
// that sees host paths, memoised over a run: a system's graph is walked
// once whatever asks.
type hostPaths struct {
	mu   sync.Mutex
	seen map[string]*builtins.Derivation
}

// find is the derivation of d's build closure (d first) that names
// SandboxPathsEnv, nil when none does.
func (h *hostPaths) find(d *builtins.Derivation) *builtins.Derivation {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil {
		h.seen = map[string]*builtins.Derivation{}
	}
	return h.findLocked(d)
}

func (h *hostPaths) findLocked(d *builtins.Derivation) *builtins.Derivation {
	id := d.ID()
	if by, ok := h.seen[id]; ok {
		return by
	}
	var by *builtins.Derivation
	if d.Getenv(SandboxPathsEnv) != "" {
		by = d
	}
	for _, in := range d.Drvs {
		if by != nil {
			break
		}
		by = h.findLocked(in)
	}
	h.seen[id] = by
	return by
}

// SeesHostPaths is the derivation of d's build closure (d first) that
// sees host paths ([nexis] sandbox_paths), nil when none does: d's
// outputs are impure when it is not nil.
func SeesHostPaths(d *builtins.Derivation) *builtins.Derivation {
	var h hostPaths
	return h.find(d)
}

// HostPathsImpurity says why d's outputs are impure (store.PathInfo's
// Impure) given by, what SeesHostPaths found.
func HostPathsImpurity(d, by *builtins.Derivation) string {
	why := store.SandboxPathsImpurity(strings.Fields(by.Getenv(SandboxPathsEnv)))
	if by == d {
		return why
	}
	return store.InheritedImpurity(by.FullName(), why)
}

// impurity is the Impure of j's outputs: its own host paths, else the
// first impure path of its input closure (which the store also carries
// to whatever refers to one, but a build may use an input it does not
// refer to).
func (j *job) impurity(closure []storepath.Path) (string, error) {
	if j.d.Getenv(SandboxPathsEnv) != "" {
		return HostPathsImpurity(j.d, j.d), nil
	}
	for _, p := range closure {
		pi, err := j.s.st.QueryPathInfo(p)
		if err != nil {
			return "", err
		}
		if pi.Impure != "" {
			return store.InheritedImpurity(j.s.st.Logical(p), pi.Impure), nil
		}
	}
	return "", nil
}
