package deploy

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// A config travels to a build host (switch --build-host) as a tar of its
// directory: evaluation reads files relative to the config, and never
// their absolute paths, so the same directory anywhere evaluates to the
// same system.

// SendConfig writes dir as a tar to w: regular files, directories and
// symlinks. A link that leads out of dir is left out (and skipped is
// told why): the build host refuses such links, and what they point at
// is not on the build host anyway (a `result` out-link, typically).
func SendConfig(w io.Writer, dir string, skipped func(name string, why error)) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		return sendEntry(tw, dir, path, filepath.ToSlash(rel), d, skipped)
	})
	if err != nil {
		return fmt.Errorf("sending the config directory %s: %w", dir, err)
	}
	return tw.Close()
}

func sendEntry(tw *tar.Writer, dir, path, name string, d fs.DirEntry, skipped func(string, error)) error {
	info, err := d.Info()
	if err != nil {
		return err
	}
	h := &tar.Header{Name: name, Mode: int64(info.Mode().Perm())}
	switch {
	case d.IsDir():
		h.Typeflag, h.Name = tar.TypeDir, name+"/"
	case d.Type()&fs.ModeSymlink != 0:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		if err := linkInside(dir, path, name, target); err != nil {
			skipped(name, err)
			return nil
		}
		h.Typeflag, h.Linkname = tar.TypeSymlink, target
	case d.Type().IsRegular():
		h.Typeflag, h.Size = tar.TypeReg, info.Size()
	default:
		// A socket or fifo: nothing an evaluation reads.
		return nil
	}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// CopyN: a file that grows while it is sent must not overrun its header.
	_, err = io.CopyN(tw, f, h.Size)
	return err
}

// linkInside checks that the link name (at path, relative to dir, with
// target) stays inside dir: lexically, and where it resolves (a chain of
// links can leave a directory that each link alone stays in).
func linkInside(dir, path, name, target string) error {
	if filepath.IsAbs(target) || !filepath.IsLocal(filepath.Join(filepath.Dir(filepath.FromSlash(name)), target)) {
		return fmt.Errorf("it links to %s, outside the config directory", target)
	}
	resolved, err := filepath.EvalSymlinks(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // dangling, and lexically inside: it can lead nowhere else
	}
	if err != nil {
		return err
	}
	base, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(base, resolved); err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("it resolves to %s, outside the config directory", resolved)
	}
	return nil
}

// ReceiveConfig unpacks a tar written by SendConfig into dir, which
// must be empty. It refuses what could reach outside dir: absolute names,
// "..", links that lead out. The tar comes from another machine.
func ReceiveConfig(r io.Reader, dir string) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	var links []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the config tar: %w", err)
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if !filepath.IsLocal(name) {
			return fmt.Errorf("the config tar holds %q, a name outside its directory: refusing it", h.Name)
		}
		if h.Typeflag == tar.TypeSymlink {
			links = append(links, name)
		}
		if err := receiveEntry(root, tr, h, name); err != nil {
			return fmt.Errorf("the config tar: %s: %w", h.Name, err)
		}
	}
	// Checked once all are there: one link can lead through another.
	for _, l := range links {
		target, err := root.Readlink(l)
		if err != nil {
			return err
		}
		if err := linkInside(dir, filepath.Join(dir, l), l, target); err != nil {
			return fmt.Errorf("the config tar: %s: %v: refusing it", l, err)
		}
	}
	return nil
}

// receiveEntry creates one entry through root, which confines every
// step (a link in a parent included) to the directory.
func receiveEntry(root *os.Root, tr *tar.Reader, h *tar.Header, name string) error {
	if dir := filepath.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	mode := fs.FileMode(h.Mode).Perm()
	switch h.Typeflag {
	case tar.TypeDir:
		return root.MkdirAll(name, 0o755)
	case tar.TypeSymlink:
		if strings.ContainsRune(h.Linkname, 0) || h.Linkname == "" {
			return errors.New("a link with an empty or malformed target")
		}
		return root.Symlink(h.Linkname, name)
	case tar.TypeReg:
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode|0o600)
		if err != nil {
			return err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}
	return fmt.Errorf("type %q is neither a file, a directory nor a link", h.Typeflag)
}

// ReceiveConfigIn unpacks the config tar r into a new directory under
// parent (made when missing) and returns the path of the config rel in
// it, and the function that removes the directory again.
func ReceiveConfigIn(parent string, r io.Reader, rel string) (string, func(), error) {
	if !filepath.IsLocal(rel) {
		return "", nil, fmt.Errorf("--config-tar %s: want a path relative to the config directory", rel)
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", nil, fmt.Errorf("--config-tar: %w (is the state directory writable?)", err)
	}
	dir, err := os.MkdirTemp(parent, "config-")
	if err != nil {
		return "", nil, fmt.Errorf("--config-tar: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	if err := ReceiveConfig(r, dir); err != nil {
		cleanup()
		return "", nil, err
	}
	return filepath.Join(dir, rel), cleanup, nil
}
