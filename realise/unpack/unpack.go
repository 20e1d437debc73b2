// Package unpack extracts source archives (tar, optionally compressed
// with gzip, xz, bzip2 or zstd, and zip) without trusting them.
//
// An archive comes from the network: its hash says it is the archive the
// config asked for, not that it is harmless. Extraction refuses entries
// with absolute names or ".." elements, entries written through a
// symbolic link, hard links to anything but a regular file already in the
// tree, symbolic links that resolve outside the tree, and device nodes,
// FIFOs and sockets. Modes are reduced to what the store keeps (the
// execute bit); owners and times are ignored.
//
// Like Nix, an archive whose entries all live under one top-level
// directory unpacks to that directory's contents.
package unpack

import (
	"archive/tar"
	"archive/zip"
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"
)

// ErrUnsafe is wrapped by every refusal of a malicious or unsupported
// entry, so callers can tell a bad archive from an I/O error.
var ErrUnsafe = errors.New("unsafe archive entry")

// Format names an archive format.
type Format string

const (
	Tar     Format = "tar"
	TarGz   Format = "tar.gz"
	TarXz   Format = "tar.xz"
	TarBz2  Format = "tar.bz2"
	TarZstd Format = "tar.zst"
	Zip     Format = "zip"
)

// Detect recognises an archive by its first bytes; file names lie.
func Detect(head []byte) (Format, error) {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return TarGz, nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return TarXz, nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return TarBz2, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return TarZstd, nil
	case bytes.HasPrefix(head, []byte("PK\x03\x04")), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return Zip, nil
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return Tar, nil
	}
	return "", fmt.Errorf("not an archive nexis can unpack (want tar, tar.gz, tar.xz, tar.bz2, tar.zst or zip)")
}

// File unpacks the archive file src into dst, which must not exist. The
// format is detected from the contents. On error dst may hold a partial
// tree; the caller removes it.
func File(src, dst string) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("unpacking: %w", err)
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("unpacking %s: %w", src, err)
	}
	format, err := Detect(head[:n])
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", filepath.Base(src), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	stage := dst + ".unpack"
	if err := os.Mkdir(stage, 0o755); err != nil {
		return fmt.Errorf("unpacking: %w", err)
	}
	defer os.RemoveAll(stage)
	x := &extractor{root: stage, dirs: map[string]bool{"": true}}
	if format == Zip {
		st, err := f.Stat()
		if err != nil {
			return err
		}
		err = x.zip(f, st.Size())
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", filepath.Base(src), err)
		}
	} else {
		r, closeFn, err := decompress(format, bufio.NewReaderSize(f, 1<<16))
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", filepath.Base(src), err)
		}
		err = x.tar(r)
		closeFn()
		if err != nil {
			return fmt.Errorf("unpacking %s: %w", filepath.Base(src), err)
		}
	}
	if err := promote(stage, dst); err != nil {
		return fmt.Errorf("unpacking %s: %w", filepath.Base(src), err)
	}
	// Links are checked where they end up: stripping the top directory
	// changes what "../" means.
	if err := CheckLinks(dst); err != nil {
		return fmt.Errorf("unpacking %s: %w", filepath.Base(src), err)
	}
	return nil
}

func decompress(format Format, r io.Reader) (io.Reader, func(), error) {
	nop := func() {}
	switch format {
	case Tar:
		return r, nop, nil
	case TarGz:
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return z, func() { z.Close() }, nil
	case TarXz:
		z, err := xz.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return z, nop, nil
	case TarBz2:
		return bzip2.NewReader(r), nop, nil
	case TarZstd:
		z, err := zstd.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return z, z.Close, nil
	}
	return nil, nil, fmt.Errorf("unknown format %q", format)
}

// promote moves the unpacked tree to dst, stripping a single top-level
// directory as Nix does.
func promote(stage, dst string) error {
	ents, err := os.ReadDir(stage)
	if err != nil {
		return err
	}
	if len(ents) == 1 && ents[0].Type().IsDir() {
		return os.Rename(filepath.Join(stage, ents[0].Name()), dst)
	}
	return os.Rename(stage, dst)
}

type extractor struct {
	root string
	// dirs holds the relative paths known to be real directories made by
	// us, so that no entry is ever written through a symbolic link.
	dirs map[string]bool
}

// clean validates an entry name and returns it relative, slash-separated.
func clean(name string) (string, error) {
	orig := name
	name = strings.ReplaceAll(name, "\\", "/")
	if strings.HasPrefix(name, "/") || (len(name) >= 2 && name[1] == ':') {
		return "", fmt.Errorf("%w: %q has an absolute path", ErrUnsafe, orig)
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return "", fmt.Errorf("%w: %q climbs out of the archive with \"..\"", ErrUnsafe, orig)
		}
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("%w: %q contains a NUL byte", ErrUnsafe, orig)
	}
	c := path.Clean(name)
	if c == "." {
		return "", nil
	}
	return c, nil
}

// parent makes sure every directory above rel exists as a real directory
// (never a symlink), creating missing ones.
func (x *extractor) parent(rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	return x.mkdirAll(dir)
}

func (x *extractor) mkdirAll(rel string) error {
	if x.dirs[rel] {
		return nil
	}
	if d := path.Dir(rel); d != "." {
		if err := x.mkdirAll(d); err != nil {
			return err
		}
	}
	p := filepath.Join(x.root, filepath.FromSlash(rel))
	st, err := os.Lstat(p)
	switch {
	case err == nil && st.IsDir():
	case err == nil:
		return fmt.Errorf("%w: %q is used as a directory but the archive made it a %s", ErrUnsafe, rel, kind(st.Mode()))
	case errors.Is(err, fs.ErrNotExist):
		if err := os.Mkdir(p, 0o755); err != nil {
			return err
		}
	default:
		return err
	}
	x.dirs[rel] = true
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	case m.IsRegular():
		return "file"
	}
	return "special file"
}

// replace removes a non-directory already at p: a later entry of a tar
// replaces an earlier one, as tar itself does.
func (x *extractor) replace(rel, p string) error {
	st, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%w: %q replaces a directory", ErrUnsafe, rel)
	}
	return os.Remove(p)
}

func (x *extractor) file(rel string, r io.Reader, exec bool) error {
	if rel == "" {
		return fmt.Errorf("%w: a file entry names the archive root", ErrUnsafe)
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	p := filepath.Join(x.root, filepath.FromSlash(rel))
	if err := x.replace(rel, p); err != nil {
		return err
	}
	mode := uint32(0o644)
	if exec {
		mode = 0o755
	}
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return fmt.Errorf("creating %s: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), p)
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", rel, err)
	}
	return nil
}

func (x *extractor) symlink(rel, target string) error {
	if rel == "" {
		return fmt.Errorf("%w: a symbolic link names the archive root", ErrUnsafe)
	}
	if err := checkTarget(rel, target); err != nil {
		return err
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	p := filepath.Join(x.root, filepath.FromSlash(rel))
	if err := x.replace(rel, p); err != nil {
		return err
	}
	return os.Symlink(target, p)
}

// checkTarget refuses link targets that leave the tree on their face;
// CheckLinks does the full resolution once the tree is complete.
func checkTarget(rel, target string) error {
	if target == "" {
		return fmt.Errorf("%w: symbolic link %q has an empty target", ErrUnsafe, rel)
	}
	if strings.HasPrefix(target, "/") {
		return fmt.Errorf("%w: symbolic link %q points to the absolute path %q, outside the archive", ErrUnsafe, rel, target)
	}
	if strings.HasPrefix(path.Clean(path.Join(path.Dir(rel), target)), "../") || path.Clean(path.Join(path.Dir(rel), target)) == ".." {
		return fmt.Errorf("%w: symbolic link %q -> %q escapes the archive", ErrUnsafe, rel, target)
	}
	return nil
}

func (x *extractor) hardlink(rel, target string) error {
	t, err := clean(target)
	if err != nil {
		return err
	}
	if rel == "" || t == "" {
		return fmt.Errorf("%w: hard link %q -> %q names the archive root", ErrUnsafe, rel, target)
	}
	if err := x.parent(t); err != nil {
		return err
	}
	tp := filepath.Join(x.root, filepath.FromSlash(t))
	st, err := os.Lstat(tp)
	if err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("%w: hard link %q -> %q does not name a regular file earlier in the archive", ErrUnsafe, rel, target)
	}
	if err := x.parent(rel); err != nil {
		return err
	}
	p := filepath.Join(x.root, filepath.FromSlash(rel))
	if err := x.replace(rel, p); err != nil {
		return err
	}
	// A copy, not a link: the store dedupes by content anyway, and a
	// shared inode would let one name's chmod change the other.
	src, err := os.Open(tp)
	if err != nil {
		return err
	}
	defer src.Close()
	return x.file(rel, src, st.Mode()&0o111 != 0)
}

func (x *extractor) tar(r io.Reader) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading tar: %w", err)
		}
		rel, err := clean(h.Name)
		if err != nil {
			return err
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if rel != "" {
				if err := x.mkdirAll(rel); err != nil {
					return err
				}
			}
		case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
			if err := x.file(rel, tr, h.Mode&0o111 != 0); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := x.symlink(rel, h.Linkname); err != nil {
				return err
			}
		case tar.TypeLink:
			if err := x.hardlink(rel, h.Linkname); err != nil {
				return err
			}
		case tar.TypeChar, tar.TypeBlock:
			return fmt.Errorf("%w: %q is a device node", ErrUnsafe, h.Name)
		case tar.TypeFifo:
			return fmt.Errorf("%w: %q is a FIFO", ErrUnsafe, h.Name)
		case tar.TypeXGlobalHeader, tar.TypeXHeader, tar.TypeGNULongName, tar.TypeGNULongLink:
			// Metadata the reader already applied.
		default:
			return fmt.Errorf("%w: %q has tar entry type %q, which nexis does not unpack", ErrUnsafe, h.Name, h.Typeflag)
		}
	}
}

func (x *extractor) zip(r io.ReaderAt, size int64) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("reading zip: %w", err)
	}
	for _, zf := range zr.File {
		rel, err := clean(zf.Name)
		if err != nil {
			return err
		}
		m := zf.Mode()
		switch {
		case m.IsDir():
			if rel != "" {
				if err := x.mkdirAll(rel); err != nil {
					return err
				}
			}
		case m&fs.ModeSymlink != 0:
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			target, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return fmt.Errorf("reading %s: %w", zf.Name, err)
			}
			if err := x.symlink(rel, string(target)); err != nil {
				return err
			}
		case m.IsRegular():
			rc, err := zf.Open()
			if err != nil {
				return fmt.Errorf("reading %s: %w", zf.Name, err)
			}
			err = x.file(rel, rc, m&0o111 != 0)
			rc.Close()
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%w: %q is a %s", ErrUnsafe, zf.Name, kind(m))
		}
	}
	return nil
}

// CheckLinks resolves every symbolic link under root as the kernel would,
// following links inside the tree, and refuses any that leaves it. Links
// whose target does not exist are allowed as long as the path they name
// stays inside.
func CheckLinks(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		if _, err := resolve(root, path.Dir(rel), target, 0); err != nil {
			return fmt.Errorf("%w: symbolic link %q -> %q %v", ErrUnsafe, rel, target, err)
		}
		return nil
	})
}

// resolve follows target from directory dir (both relative to root) and
// returns the resolved relative path, or an error when it leaves root.
func resolve(root, dir, target string, depth int) (string, error) {
	if depth > 40 {
		return "", errors.New("loops")
	}
	if strings.HasPrefix(target, "/") {
		return "", errors.New("points outside the archive")
	}
	cur := []string{}
	if dir != "." && dir != "" {
		cur = strings.Split(dir, "/")
	}
	els := strings.Split(target, "/")
	for _, el := range els {
		switch el {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return "", errors.New("escapes the archive")
			}
			cur = cur[:len(cur)-1]
			continue
		}
		next := append(append([]string{}, cur...), el)
		rel := strings.Join(next, "/")
		st, err := os.Lstat(filepath.Join(root, filepath.FromSlash(rel)))
		if err == nil && st.Mode()&fs.ModeSymlink != 0 {
			t, err := os.Readlink(filepath.Join(root, filepath.FromSlash(rel)))
			if err != nil {
				return "", err
			}
			r, err := resolve(root, strings.Join(cur, "/"), t, depth+1)
			if err != nil {
				return "", err
			}
			cur = nil
			if r != "" {
				cur = strings.Split(r, "/")
			}
			continue
		}
		cur = next
	}
	return strings.Join(cur, "/"), nil
}
