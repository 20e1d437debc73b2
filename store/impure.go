package store

import (
	"errors"
	"fmt"
	"strings"

	"github.com/nexisos/nexis/store/storepath"
)

// ErrImpure is wrapped by every refusal to let an impure path
// (PathInfo.Impure) leave this machine or arrive on trust.
var ErrImpure = errors.New("impure path")

// ImpureError is the refusal to share Path.
type ImpureError struct {
	// Path is the logical path, Why its PathInfo.Impure.
	Path string
	Why  string
	// Doing is what was refused ("copy it to a cache").
	Doing string
}

func (e *ImpureError) Error() string {
	return fmt.Sprintf("refusing to %s: %s is impure (%s): its bytes may depend on this machine's host paths, so nexis never signs it, copies it to a cache, exports it, substitutes it or builds it for another machine. To share it, build it without [nexis] sandbox_paths (see docs/build-model.md, \"Host paths\")", e.Doing, e.Path, e.Why)
}

// Is makes errors.Is(err, ErrImpure) true.
func (e *ImpureError) Is(target error) bool { return target == ErrImpure }

// SandboxPathsImpurity is the Impure of an output built seeing the host
// paths paths ([nexis] sandbox_paths).
func SandboxPathsImpurity(paths []string) string {
	return "built with [nexis] sandbox_paths = [" + strings.Join(paths, " ") + "]"
}

// RefuseImpure returns an *ImpureError for the first impure path of ps
// (nil when all are pure): what every exit of bytes from this store
// (signing, copies to caches, exports, remote builds) checks before it
// sends anything. doing says what is refused, for the message.
func (s *Store) RefuseImpure(ps []storepath.Path, doing string) error {
	for _, p := range ps {
		pi, err := s.QueryPathInfo(p)
		if err != nil {
			return err
		}
		if pi.Impure != "" {
			return &ImpureError{Path: s.Logical(p), Why: pi.Impure, Doing: doing}
		}
	}
	return nil
}
