package store

import (
	"errors"
	"fmt"

	"github.com/nexisos/nexis/store/contentaddr"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// ErrContentAddress is wrapped by every refusal of a content-addressed
// path whose name or contents do not match its content address.
var ErrContentAddress = errors.New("content address mismatch")

// checkContentAddress checks that p, recorded with the content address
// ca ("" for none), is the path ca gives its name, and (unless
// metaOnly) that the tree at root, with sorted entries files and tree
// hash tree, is what ca says. metaOnly checks what the entries tell
// without reading file contents again (a flat sha256 address needs
// them).
func (s *Store) checkContentAddress(p storepath.Path, ca, root string, files []treehash.File, tree treehash.Digest, metaOnly bool) error {
	if ca == "" {
		return nil
	}
	c, err := contentaddr.Parse(ca)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrContentAddress, err)
	}
	want, err := c.Path(s.logical, p.Name)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrContentAddress, err)
	}
	if want != p {
		return fmt.Errorf("%w: the content address %s names the path %s, not this one", ErrContentAddress, ca, s.Logical(want))
	}
	if metaOnly && c.Method == contentaddr.Flat && c.Algo != "blake3" {
		return nil
	}
	if err := c.Check(root, files, tree); err != nil {
		var m *contentaddr.MismatchError
		if errors.As(err, &m) {
			return fmt.Errorf("%w: %v", ErrContentAddress, err)
		}
		return err
	}
	return nil
}
