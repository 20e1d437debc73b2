package lang

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/store/treehash"
)

// Every file an evaluation reads, whoever names it (the config's
// [includes], load(), path(), template(), a section of the stdlib, the
// lock file, the eval cache checking its inputs), is opened through one
// configDir. A configDir holds an os.Root of the config directory, so the
// kernel walk that opens a file cannot leave the directory: a `..` or a
// symbolic link that leads out of it fails, and so does one swapped in
// after it was checked. Before opening, resolve walks the name itself
// (following links that stay inside) to say in the error which link or
// which `..` leaves the directory; the os.Root is what guarantees it.
//
// Names are written relative to the file that names them and are never
// absolute: a config evaluates the same wherever it is, and no file of
// the host reaches a store path because a module named it.

// maxLinks bounds the symbolic links one name may pass, as the kernel's
// ELOOP does.
const maxLinks = 40

// configDir is the config directory as evaluation reads it.
type configDir struct {
	abs    string // absolute, symbolic links resolved
	root   *os.Root
	inputs *Inputs
}

// openConfigDir opens the directory abs (already absolute and resolved)
// for confined reading, recording what is read in inputs (if set).
func openConfigDir(abs string, inputs *Inputs) (*configDir, error) {
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("opening the config directory: %w", err)
	}
	return &configDir{abs: abs, root: root, inputs: inputs}, nil
}

func (d *configDir) close() { d.root.Close() }

// localName turns rel, written in the file from (a display name relative
// to the config directory), into a display name, refusing what cannot be
// inside the config directory whatever its links are.
func localName(from, rel string) (string, error) {
	if rel == "" {
		return "", errors.New("the file name is empty")
	}
	if path.IsAbs(rel) {
		return "", fmt.Errorf("%s is absolute: name files relative to the config (evaluation reads only inside the config directory, so the result does not depend on this machine)", rel)
	}
	name := path.Join(path.Dir(from), rel)
	if path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
		return "", fmt.Errorf("%s leaves the config directory (evaluation reads only inside it)", rel)
	}
	return name, nil
}

// escapeError says that a name leads out of the config directory.
type escapeError struct{ msg string }

func (e *escapeError) Error() string { return e.msg }

// resolve follows the symbolic links of name (a display name) inside the
// config directory and returns the name of what it designates. A link
// that is absolute or climbs out of the directory is an error naming it.
func (d *configDir) resolve(name string) (string, error) {
	var done []string
	todo := strings.Split(name, "/")
	links := 0
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", &escapeError{fmt.Sprintf("%s leaves the config directory (evaluation reads only inside it)", name)}
			}
			done = done[:len(done)-1]
			continue
		}
		p := path.Join(append(done, c)...)
		fi, err := d.root.Lstat(p)
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			done = append(done, c)
			continue
		}
		if links++; links > maxLinks {
			return "", fmt.Errorf("%s: too many levels of symbolic links", name)
		}
		target, err := d.root.Readlink(p)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			return "", &escapeError{fmt.Sprintf("%s is a symbolic link to %s, outside the config directory (evaluation reads only inside it)", p, target)}
		}
		if t := path.Join(path.Dir(p), target); t == ".." || strings.HasPrefix(t, "../") {
			return "", &escapeError{fmt.Sprintf("%s is a symbolic link to %s, outside the config directory (evaluation reads only inside it)", p, target)}
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

// open opens the resolved name for reading, refusing anything but a
// regular file: a FIFO would hang the evaluation and a device never ends.
func (d *configDir) open(name string) (*os.File, fs.FileInfo, error) {
	resolved, err := d.resolve(name)
	if err != nil {
		return nil, nil, err
	}
	f, err := d.root.OpenFile(resolved, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s is a %s, not a regular file", name, describeType(fi.Mode()))
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

func describeType(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "directory"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// readFile reads the file name (a display name) and records it.
func (d *configDir) readFile(name string) ([]byte, error) {
	b, err := d.read(name)
	d.inputs.file(name, b, err)
	return b, err
}

func (d *configDir) read(name string) ([]byte, error) {
	f, fi, err := d.open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// The size read is the size stat gave: a file that grows while it
	// is read cannot make the evaluation read without end.
	b := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return b, nil
}

// stat resolves name and says what it is, recording the answer.
func (d *configDir) stat(name string) (string, fs.FileInfo, error) {
	resolved, fi, err := d.lstatResolved(name)
	d.inputs.stat(name, resolved, fi, err)
	return resolved, fi, err
}

func (d *configDir) lstatResolved(name string) (string, fs.FileInfo, error) {
	resolved, err := d.resolve(name)
	if err != nil {
		return "", nil, err
	}
	fi, err := d.root.Lstat(resolved)
	return resolved, fi, err
}

// treeHash computes the tree hash (store/treehash) of the resolved file
// or directory name, walking it inside the root: links below it are
// kept as data (their targets are hashed, never followed), as the store
// keeps them.
func (d *configDir) treeHash(name string) (treehash.Digest, error) {
	t, err := d.hashTree(name)
	d.inputs.tree(name, t, err)
	return t, err
}

func (d *configDir) hashTree(name string) (treehash.Digest, error) {
	resolved, err := d.resolve(name)
	if err != nil {
		return treehash.Digest{}, err
	}
	fsys := d.root.FS()
	var files []treehash.File
	err = fs.WalkDir(fsys, resolved, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := ""
		if p != resolved {
			rel = strings.TrimPrefix(p, resolved+"/")
			if resolved == "." {
				rel = p
			}
		}
		f := treehash.File{Path: rel}
		switch mt := de.Type(); {
		case mt.IsDir():
			f.Type = treehash.Directory
		case mt.IsRegular():
			f.Type = treehash.Regular
			f.Digest, f.Size, err = d.hashFile(p)
			if err != nil {
				return err
			}
			fi, err := de.Info()
			if err != nil {
				return err
			}
			if fi.Mode()&0o111 != 0 {
				f.Type = treehash.Executable
			}
		case mt&fs.ModeSymlink != 0:
			if f.Target, err = fs.ReadLink(fsys, p); err != nil {
				return err
			}
			f.Type = treehash.Symlink
		default:
			return fmt.Errorf("%s is a %s: %w", p, describeType(mt), treehash.ErrSpecialFile)
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return treehash.Digest{}, err
	}
	treehash.Sort(files)
	return treehash.Hash(files), nil
}

// hashFile hashes a regular file of a source tree through the root.
func (d *configDir) hashFile(name string) (treehash.Digest, int64, error) {
	f, err := d.root.OpenFile(name, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return treehash.Digest{}, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return treehash.Digest{}, 0, err
	}
	if !fi.Mode().IsRegular() {
		return treehash.Digest{}, 0, fmt.Errorf("%s is no longer a regular file", name)
	}
	return treehash.HashFD(int(f.Fd()), name, nil, nil)
}

// file is what builtins get for a name they resolved.
func (d *configDir) file(display, resolved string) builtins.File {
	return builtins.File{Display: display, Abs: filepath.Join(d.abs, filepath.FromSlash(resolved))}
}
