package host

import (
	"fmt"
	"io"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/store"
)

// Recover rebuilds the metadata of the host's store from the paths on
// disk (store.Recover), with the generations its profile links name.
// What those links cannot tell is written to warn, one warning a line.
func (h *Host) Recover(warn io.Writer, progress func(done, total int)) (*store.RecoverReport, error) {
	root, err := h.OpenRoot()
	if err != nil {
		return nil, err
	}
	dir, err := h.PhysicalStoreDir()
	if err != nil {
		return nil, err
	}
	gens, problems, err := activate.ProfileGenerations(root, h.StateDir(), h.StoreDir())
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		fmt.Fprintf(warn, "nexis: warning: %s\n", p)
	}
	return store.Recover(dir, store.RecoverOptions{LogicalDir: h.StoreDir(), Generations: gens, Progress: progress})
}
