package host

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/store/storepath"
)

// Completions of the shell (nexis completion): they read the profile
// links and the store's directories, never the store's database, and
// build nothing.

// Completion is one word a shell may complete to, and what it is.
type Completion struct{ Word, About string }

// CompleteStorePath completes a store path being typed: the store
// directory, then its bucket levels (<store>/ab/cd/abcd...-name), from
// the directories of the store under the root, one read per level. ok
// false means typed is no store path (or names something inside one):
// the shell's file completion is what fits. dirs tells that the words
// are directories to go on into.
func (h *Host) CompleteStorePath(typed string) (words []string, dirs, ok bool) {
	logical := h.StoreDir()
	if !strings.HasPrefix(typed, logical+"/") {
		if strings.HasPrefix(logical+"/", typed) && typed != "" {
			return []string{logical + "/"}, true, true
		}
		return nil, false, false
	}
	phys, err := h.PhysicalStoreDir()
	if err != nil {
		return nil, false, true
	}
	levels := strings.Split(strings.TrimPrefix(typed, logical+"/"), "/")
	if len(levels) > 3 {
		return nil, false, false
	}
	last, parent := levels[len(levels)-1], levels[:len(levels)-1]
	ents, err := os.ReadDir(filepath.Join(append([]string{phys}, parent...)...))
	if err != nil {
		return nil, false, true
	}
	dirs = len(parent) < 2
	for _, e := range ents {
		n := e.Name()
		if !strings.HasPrefix(n, last) {
			continue
		}
		if dirs {
			if !storepath.IsBucket(n) {
				continue
			}
			n += "/"
		}
		words = append(words, logical+"/"+strings.Join(append(append([]string(nil), parent...), n), "/"))
	}
	return words, dirs, true
}

// GenerationNames are the generations of the root, newest first, and
// the names every generation argument takes.
func (h *Host) GenerationNames() []Completion {
	r, err := h.OpenRoot()
	if err != nil {
		return nil
	}
	gens, _, err := activate.ProfileGenerations(r, h.StateDir(), h.StoreDir())
	if err != nil {
		return nil
	}
	var out []Completion
	for i := len(gens) - 1; i >= 0; i-- {
		g := gens[i]
		out = append(out, Completion{strconv.FormatUint(g.Number, 10), g.Time.Format("2006-01-02 15:04") + " " + g.Path.Base()})
	}
	if len(gens) > 0 {
		out = append(out, Completion{"current", "the current generation"}, Completion{"previous", "the one before the current (where rollback goes)"})
	}
	return out
}
