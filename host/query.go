package host

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Query opens the store for queries, asks q, and closes it.
func Query[T any](h *Host, q func(*store.Store) (T, error)) (T, error) {
	s, err := h.OpenStoreRead()
	if err != nil {
		var zero T
		return zero, err
	}
	defer s.Close()
	return q(s)
}

// QueryPaths is Query of the valid store paths args name.
func QueryPaths[T any](h *Host, args []string, q func(*store.Store, []storepath.Path) (T, error)) (T, error) {
	s, ps, err := h.OpenStorePaths(args)
	if err != nil {
		var zero T
		return zero, err
	}
	defer s.Close()
	return q(s, ps)
}

// Relations are the paths each named path relates to (store refs,
// store referrers): one a line, or as JSON an object of each path's.
type Relations struct {
	order   []string
	related map[string][]string
}

// Relate lists what rel gives for each path args name.
func (h *Host) Relate(args []string, rel func(*store.Store, storepath.Path) ([]storepath.Path, error)) (*Relations, error) {
	return QueryPaths(h, args, func(s *store.Store, ps []storepath.Path) (*Relations, error) {
		r := &Relations{related: map[string][]string{}}
		for _, p := range ps {
			rs, err := rel(s, p)
			if err != nil {
				return nil, err
			}
			related := []string{}
			for _, x := range rs {
				related = append(related, s.Logical(x))
			}
			r.order = append(r.order, s.Logical(p))
			r.related[s.Logical(p)] = related
		}
		return r, nil
	})
}

// Print writes every related path, one a line, in the order the paths
// were named.
func (r *Relations) Print(w io.Writer) {
	for _, p := range r.order {
		for _, x := range r.related[p] {
			fmt.Fprintln(w, x)
		}
	}
}

// MarshalJSON is each named path with the paths it relates to.
func (r *Relations) MarshalJSON() ([]byte, error) { return json.Marshal(r.related) }

// PathInfos are what the store knows of paths (store path-info).
type PathInfos struct {
	reports []*store.PathReport
	size    bool
}

// PathInfo describes the paths args name, with recursive their
// closures, with size their sizes (and with both, closure sizes).
func (h *Host) PathInfo(args []string, recursive, size bool) (*PathInfos, error) {
	return QueryPaths(h, args, func(s *store.Store, ps []storepath.Path) (*PathInfos, error) {
		var err error
		if recursive {
			if ps, err = s.Closure(ps); err != nil {
				return nil, err
			}
		}
		out := &PathInfos{size: size}
		for _, p := range ps {
			r, err := s.Describe(p, size && recursive)
			if err != nil {
				return nil, err
			}
			out.reports = append(out.reports, r)
		}
		return out, nil
	})
}

// Print writes each path (and its size when asked), one a line.
func (p *PathInfos) Print(w io.Writer) {
	for _, r := range p.reports {
		r.Print(w, p.size)
	}
}

// MarshalJSON is every path's report.
func (p *PathInfos) MarshalJSON() ([]byte, error) { return json.Marshal(p.reports) }

// Listing is a store directory's entries (store ls).
type Listing []treehash.Entry

// List lists the directory of a store path arg names (the path itself
// when it names no directory inside), with recursive everything below.
func (h *Host) List(arg string, recursive bool) (Listing, error) {
	s, p, rest, files, err := h.OpenManifest(arg)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	entries, ok := treehash.ListDir(files, strings.Trim(rest, "/"), recursive)
	if !ok {
		return nil, fmt.Errorf("%s has no %s", s.Logical(p), rest)
	}
	if entries == nil {
		entries = []treehash.Entry{}
	}
	return entries, nil
}

// Print writes the entries as ls -l would, without owners and times.
func (l Listing) Print(w io.Writer) {
	for _, e := range l {
		e.Print(w)
	}
}

// Cat writes the regular file arg names inside a store path to w.
func (h *Host) Cat(arg string, w io.Writer) error {
	s, p, rest, files, err := h.OpenManifest(arg)
	if err != nil {
		return err
	}
	defer s.Close()
	rel := strings.Trim(rest, "/")
	for _, f := range files {
		if f.Path != rel {
			continue
		}
		if !f.Type.IsRegular() {
			if f.Type == treehash.Symlink {
				return fmt.Errorf("%s%s is a symlink to %s", s.Logical(p), rest, f.Target)
			}
			return fmt.Errorf("%s%s is a %s", s.Logical(p), rest, f.Type)
		}
		fh, err := os.Open(filepath.Join(s.Physical(p), filepath.FromSlash(rel)))
		if err != nil {
			return err
		}
		defer fh.Close()
		_, err = io.Copy(w, fh)
		return err
	}
	return fmt.Errorf("%s has no file %s", s.Logical(p), rest)
}

// Update opens the store for writing (waiting for another writer), runs
// u, and closes it: a failed close fails the update.
func (h *Host) Update(u func(*store.Store) error) error {
	s, err := h.OpenStore()
	if err != nil {
		return err
	}
	defer s.Close()
	if err := u(s); err != nil {
		return err
	}
	return s.Close()
}
