package store

import (
	"fmt"
	"os"

	"github.com/nexisos/nexis/store/storepath"
)

// MakePrivate makes the registered single-file path p readable by root
// only (mode 0400). Secrets (password hashes, private files) are stored
// as single files by builtin:write_file with secret = "1"; ingest
// normalises modes to 0444 like every other file, so activation calls
// this before it copies a secret into place. The tree hash records only
// the execute bit, so the path stays valid and verifies; a hard-linked
// pool copy of the same content turns private with it, which only
// narrows who can read those bytes.
func (s *Store) MakePrivate(p storepath.Path) error {
	if ok, err := s.IsValid(p); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%s: %w", s.Logical(p), ErrNotValid)
		}
		return err
	}
	phys := s.Physical(p)
	fi, err := os.Lstat(phys)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a single file: only a file can be made private", s.Logical(p))
	}
	if fi.Mode().Perm() == 0o400 {
		return nil
	}
	if err := os.Chmod(phys, 0o400); err != nil {
		return fmt.Errorf("making %s private: %w", s.Logical(p), err)
	}
	return nil
}
