package realise

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/gc"
	"github.com/nexisos/nexis/store/storepath"
)

// OutLink makes link a symbolic link to p (as this machine reaches it)
// and registers it as the GC root "out-link:<absolute link>", in that
// order: a root exists only for a link that does. Only a missing entry
// or an out-link (a link into this store) is replaced; a file, a
// directory or another link at link is left exactly as it was, and
// nothing is registered. p must be a temporary root of this process
// (Build makes every output one) until the root is registered.
func OutLink(st *store.Store, p storepath.Path, link string) error {
	abs, err := filepath.Abs(link)
	if err != nil {
		return fmt.Errorf("out-link %s: %w", link, err)
	}
	host, err := durable.OpenRoot("/")
	if err != nil {
		return err
	}
	defer host.Close()
	ours := func(old string) bool {
		return strings.HasPrefix(old, st.Dir()+"/") || strings.HasPrefix(old, st.LogicalDir()+"/")
	}
	if err := host.ReplaceLink(st.Physical(p), abs, ours); err != nil {
		if errors.Is(err, durable.ErrNotOurs) {
			return fmt.Errorf("out-link: %w; it was left as it is and nothing was registered (remove it, name another out-link with -o PATH, or pass --no-out-link)", err)
		}
		return fmt.Errorf("out-link: %w (nothing was registered)", err)
	}
	if err := st.AddRoot(gc.OutLinkRootPrefix+abs, p); err != nil {
		return fmt.Errorf("out-link %s was made but not registered as a GC root: %w (build again to register it)", abs, err)
	}
	return nil
}
