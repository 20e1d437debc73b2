package activate

import (
	"errors"
	"fmt"
	"io/fs"
	"path"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// ProfileGenerations reads the generations the profile links of the
// target's state directory name (<state>/profiles/system-N-link, each a
// link to a logical path in storeDir), through root: what `nexis store
// recover` roots again when the store's metadata was lost. A
// generation's time is its link's. Links that name no store path are
// returned as problems.
func ProfileGenerations(root *durable.Root, stateDir, storeDir string) ([]store.Generation, []string, error) {
	dir := path.Join(stateDir, "profiles")
	ents, err := root.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("profiles: %w", err)
	}
	var gens []store.Generation
	var problems []string
	for _, e := range ents {
		n, ok := parseGenLink(e.Name())
		if !ok || e.Type()&fs.ModeSymlink == 0 {
			continue
		}
		link := path.Join(dir, e.Name())
		target, err := root.Readlink(link)
		if err != nil {
			return nil, nil, fmt.Errorf("profiles: %w", err)
		}
		p, rest, err := storepath.Parse(storeDir, target)
		if err != nil || rest != "" {
			problems = append(problems, fmt.Sprintf("%s points at %q, not a store path", link, target))
			continue
		}
		fi, err := root.Lstat(link)
		if err != nil {
			return nil, nil, fmt.Errorf("profiles: %w", err)
		}
		gens = append(gens, store.Generation{Profile: Profile, Number: n, Path: p, Time: fi.ModTime().UTC()})
	}
	return gens, problems, nil
}
