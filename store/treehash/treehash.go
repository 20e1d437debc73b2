// Package treehash defines the canonical serialisation of a file tree and
// its BLAKE3 hash. It is pure Go without cgo so that evaluation (a `path()`
// source) computes exactly the hash the store computes on ingest, without
// linking RocksDB.
//
// # Canonical serialisation
//
// A tree is the list of its entries: the root itself (relative path "")
// and everything under it, never following symbolic links. Each entry has
// a relative path (elements joined with '/', no leading '/'), and a type:
//
//	'd' directory
//	'f' regular file, not executable
//	'x' regular file, executable (any execute bit set in the source)
//	'l' symbolic link, kept as data: its target is recorded, never followed
//
// Owners, timestamps and all other mode bits are not part of a tree: the
// store normalises them. Device nodes, sockets and FIFOs have no
// serialisation: a tree holding one is refused.
//
// The serialisation is the magic "nexis-tree-1\n" followed by every entry
// in ascending bytewise order of its relative path, each encoded as
//
//	uvarint(len(path)) path type
//	'f', 'x': uint64 big-endian size, then the 32-byte BLAKE3-256 of the contents
//	'l':      uvarint(len(target)) target
//	'd':      nothing more
//
// The tree hash is BLAKE3-256 of that byte stream. A directory's content is
// given by the entries below it, so empty directories count and two trees
// hash equal exactly when they are equal up to the normalised attributes.
package treehash

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"
	"lukechampine.com/blake3/guts"

	par "github.com/nexisos/nexis/internal/parallel"
	"github.com/nexisos/nexis/store/storepath"
)

// Magic starts every serialisation; it changes if the format ever does.
const Magic = "nexis-tree-1\n"

// Digest is a BLAKE3-256 digest.
type Digest [32]byte

// String formats the digest as "blake3:<hex>".
func (d Digest) String() string { return "blake3:" + hex.EncodeToString(d[:]) }

// Hex is the lowercase hex of the digest.
func (d Digest) Hex() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is the zero value (no digest).
func (d Digest) IsZero() bool { return d == Digest{} }

// ParseDigest parses "blake3:<hex>" or bare hex.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	b, err := hex.DecodeString(strings.TrimPrefix(s, "blake3:"))
	if err != nil || len(b) != len(d) {
		return d, fmt.Errorf("%q is not a BLAKE3 digest: want blake3:<64 hex digits>", s)
	}
	copy(d[:], b)
	return d, nil
}

// Type is the kind of a tree entry.
type Type byte

// Entry types, as written in the serialisation.
const (
	Directory  Type = 'd'
	Regular    Type = 'f'
	Executable Type = 'x'
	Symlink    Type = 'l'
)

// IsRegular reports whether t is a regular file, executable or not.
func (t Type) IsRegular() bool { return t == Regular || t == Executable }

func (t Type) String() string {
	switch t {
	case Directory:
		return "directory"
	case Regular:
		return "file"
	case Executable:
		return "executable"
	case Symlink:
		return "symlink"
	}
	return fmt.Sprintf("type(%d)", byte(t))
}

// File is one entry of a tree.
type File struct {
	Path   string // relative, '/'-separated; "" is the root
	Type   Type
	Size   int64  // regular files only
	Digest Digest // regular files only: BLAKE3-256 of the contents
	Target string // symlinks only
}

// Hash computes the tree hash of files, which must be sorted by Path
// (see Sort) and hold every entry of the tree including the root.
func Hash(files []File) Digest {
	h := streams.Get().(*Stream)
	defer streams.Put(h)
	h.Reset()
	var buf []byte
	buf = append(buf, Magic...)
	for i := range files {
		f := &files[i]
		buf = binary.AppendUvarint(buf, uint64(len(f.Path)))
		buf = append(buf, f.Path...)
		buf = append(buf, byte(f.Type))
		switch f.Type {
		case Regular, Executable:
			buf = binary.BigEndian.AppendUint64(buf, uint64(f.Size))
			buf = append(buf, f.Digest[:]...)
		case Symlink:
			buf = binary.AppendUvarint(buf, uint64(len(f.Target)))
			buf = append(buf, f.Target...)
		}
		if len(buf) >= 64<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return h.Sum()
}

// Sort orders files as the serialisation wants them.
func Sort(files []File) {
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
}

// ContentPath is the store path that `nexis store add` gives a tree (or a
// file) named name whose tree hash is tree, in the logical store storeDir.
// The name and the store directory are hashed in, as Nix does, so the same
// bytes under two names are two paths and a relocated store is a separate
// namespace.
func ContentPath(storeDir, name string, tree Digest) (storepath.Path, error) {
	if err := storepath.ValidName(name); err != nil {
		return storepath.Path{}, err
	}
	d := Sum([]byte("nexis-source-1\x00"+path.Clean(storeDir)+"\x00"+name+"\x00"), tree[:])
	return storepath.Path{Hash: storepath.EncodeHash(d[:]), Name: name}, nil
}

// ContentAddress is the content address recorded for a path made by
// ContentPath.
func ContentAddress(tree Digest) string { return "source:" + tree.String() }

// Tree is a scanned tree: its sorted entries, its hash, and the store path
// hashes found in it.
type Tree struct {
	Files []File
	Hash  Digest
	// Size is the sum of the sizes of the regular files.
	Size int64
	// Refs holds the candidate hashes (ScanOptions.RefCandidates) found in
	// file contents or symlink targets.
	Refs map[string]struct{}
}

// ScanOptions tunes Scan.
type ScanOptions struct {
	// RefCandidates are store path hash parts to look for in contents and
	// symlink targets. Only these count: anything else that looks like a
	// hash is a coincidence.
	RefCandidates map[string]struct{}
	// Workers is the number of files hashed in parallel (default GOMAXPROCS).
	Workers int
}

// ErrSpecialFile is wrapped by errors about device nodes, sockets and FIFOs.
var ErrSpecialFile = errors.New("special files (devices, sockets, FIFOs) cannot be stored")

// TreeHash computes the tree hash of the file or directory at root.
func TreeHash(root string) (Digest, error) {
	t, err := Scan(root, ScanOptions{})
	if err != nil {
		return Digest{}, err
	}
	return t.Hash, nil
}

// Scan walks root without following symbolic links, hashes every regular
// file (in parallel across files) and computes the tree hash.
func Scan(root string, opts ScanOptions) (*Tree, error) {
	files, err := List(root)
	if err != nil {
		return nil, err
	}
	t := &Tree{Files: files, Refs: map[string]struct{}{}}
	var regular []int
	for i := range files {
		f := &files[i]
		switch {
		case f.Type.IsRegular():
			regular = append(regular, i)
			t.Size += f.Size
		case f.Type == Symlink && len(opts.RefCandidates) > 0:
			scanRefs([]byte(f.Target), opts.RefCandidates, t.Refs)
		}
	}
	var mu sync.Mutex
	err = parallel(len(regular), opts.Workers, func(w *worker, k int) error {
		f := &files[regular[k]]
		var refs map[string]struct{}
		if len(opts.RefCandidates) > 0 {
			refs = map[string]struct{}{}
		}
		d, n, err := w.hashFile(filepath.Join(root, filepath.FromSlash(f.Path)), opts.RefCandidates, refs)
		if err != nil {
			return err
		}
		if n != f.Size {
			return fmt.Errorf("%s changed while it was read (%d bytes, then %d)", filepath.Join(root, f.Path), f.Size, n)
		}
		f.Digest = d
		if len(refs) > 0 {
			mu.Lock()
			for r := range refs {
				t.Refs[r] = struct{}{}
			}
			mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.Hash = Hash(files)
	return t, nil
}

// List walks root without following symbolic links and returns its
// entries sorted, without digests. Special files are refused.
func List(root string) ([]File, error) {
	var files []File
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			rel = ""
		}
		rel = filepath.ToSlash(rel)
		f := File{Path: rel}
		switch mt := de.Type(); {
		case mt.IsDir():
			f.Type = Directory
		case mt.IsRegular():
			fi, err := de.Info()
			if err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
			f.Type, f.Size = Regular, fi.Size()
			if fi.Mode()&0o111 != 0 {
				f.Type = Executable
			}
		case mt&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("reading %s: %w", p, err)
			}
			f.Type, f.Target = Symlink, target
		default:
			return fmt.Errorf("%s is a %s: %w", p, describeMode(mt), ErrSpecialFile)
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	Sort(files)
	return files, nil
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeDevice != 0 && m&fs.ModeCharDevice != 0:
		return "character device"
	case m&fs.ModeDevice != 0:
		return "block device"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeNamedPipe != 0:
		return "FIFO"
	}
	return "special file (" + m.String() + ")"
}

// HashFileRefs hashes one regular file's contents (refusing to follow a
// symlink) and adds the candidates it mentions to refs.
func HashFileRefs(p string, cands, refs map[string]struct{}) (Digest, int64, error) {
	w := newWorker()
	defer w.release()
	return w.hashFile(p, cands, refs)
}

// ScanRefs adds to refs the candidates that data mentions as
// "/<hash>-".
func ScanRefs(data []byte, cands, refs map[string]struct{}) { scanRefs(data, cands, refs) }

// smallWrite is the size below which Write feeds a hasher a chunk at a
// time: below it that is faster here (2x at 12 KiB, even at 24), above
// it the library's parallel path wins.
const smallWrite = 32 << 10

// Write writes p to h. lukechampine.com/blake3 hashes a write of more than
// one 1 KiB chunk on a goroutine per power-of-two run of chunks, copying
// a write's last short run into a fresh 16 KiB buffer. For the small
// inputs an evaluation hashes (derivations, config files, compiled
// modules) that costs more than the hashing, and the buffers' pages are
// much of what evaluating a config touches. A chunk at a time, the
// hasher compresses from its own buffer and allocates nothing.
func Write(h *blake3.Hasher, p []byte) {
	if len(p) >= smallWrite {
		h.Write(p)
		return
	}
	for len(p) > 0 {
		n := min(len(p), guts.ChunkSize)
		h.Write(p[:n])
		p = p[n:]
	}
}

// Hasher is a BLAKE3-256 hasher whose writes go through Write.
type Hasher struct{ *blake3.Hasher }

// NewHasher returns a fresh Hasher.
func NewHasher() Hasher { return Hasher{blake3.New(32, nil)} }

func (h Hasher) Write(p []byte) (int, error) {
	Write(h.Hasher, p)
	return len(p), nil
}

// Sum is the BLAKE3-256 of the concatenation of parts, hashed by a
// pooled Stream: what an evaluation hashes (config parts of ~10 KB,
// derivations, package keys) is compressed on the caller's goroutine,
// 16 chunks at a time where there are that many, without the library
// hasher's goroutines and copies.
func Sum(parts ...[]byte) Digest {
	s := streams.Get().(*Stream)
	s.Reset()
	for _, b := range parts {
		s.Write(b)
	}
	d := s.Sum()
	streams.Put(s)
	return d
}

var streams = sync.Pool{New: func() any { return new(Stream) }}

// HashFile hashes one regular file's contents.
func HashFile(p string) (Digest, int64, error) {
	w := newWorker()
	defer w.release()
	return w.hashFile(p, nil, nil)
}

// worker holds the per-goroutine buffer and hasher so that hashing twenty
// thousand files allocates twice per goroutine, not per file.
type worker struct {
	buf []byte
	h   *blake3.Hasher
}

// A worker's buffer starts at minWorkerBuf and grows to maxWorkerBuf
// only while files fill it: most files are small, and in a short process
// (an evaluation hashing a few sources) every fresh page costs a fault.
const (
	minWorkerBuf = 16 << 10
	maxWorkerBuf = 256 << 10
)

var workers = sync.Pool{New: func() any {
	return &worker{buf: make([]byte, minWorkerBuf), h: blake3.New(32, nil)}
}}

// newWorker takes a worker from the pool: verifying thousands of small
// trees must not allocate a fresh buffer for each.
func newWorker() *worker { return workers.Get().(*worker) }

func (w *worker) release() { workers.Put(w) }

// OpenRegular opens p for reading without following a symlink at its
// last element, and checks that it is (still) a regular file. The caller
// closes the descriptor with unix.Close.
func OpenRegular(p string) (int, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return -1, fmt.Errorf("opening %s: %w", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat %s: %w", p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, fmt.Errorf("%s is no longer a regular file", p)
	}
	return fd, nil
}

// HashFD hashes the open regular file fd from offset 0 (name is for
// errors) and adds the candidates it mentions to refs. Raw descriptors,
// not os.File: the runtime's poller set-up per file is measurable over
// tens of thousands of files.
func HashFD(fd int, name string, cands, refs map[string]struct{}) (Digest, int64, error) {
	w := newWorker()
	defer w.release()
	return w.hashFD(fd, name, cands, refs)
}

// hashFile reads p (refusing to follow a symlink swapped in since the
// walk) and hashes it, scanning for candidate references on the way.
func (w *worker) hashFile(p string, cands, refs map[string]struct{}) (Digest, int64, error) {
	fd, err := OpenRegular(p)
	if err != nil {
		return Digest{}, 0, err
	}
	defer unix.Close(fd)
	return w.hashFD(fd, p, cands, refs)
}

func (w *worker) hashFD(fd int, name string, cands, refs map[string]struct{}) (Digest, int64, error) {
	if len(cands) == 0 {
		return w.hashScan(fd, name, nil)
	}
	return w.hashScan(fd, name, func(b []byte) { scanRefs(b, cands, refs) })
}

// HashFDMentions hashes the open regular file fd as HashFD does and adds
// to mentions every store path hash its contents mention as
// "/<hash>-", whatever path it names: what recovering a store's lost
// references needs (the mentions of paths it does not have are the
// evidence of missing ones).
func HashFDMentions(fd int, name string, mentions map[string]struct{}) (Digest, int64, error) {
	w := newWorker()
	defer w.release()
	return w.hashScan(fd, name, func(b []byte) {
		storepath.ScanHashes(b, func(h string) { mentions[h] = struct{}{} })
	})
}

// hashScan hashes fd from offset 0, handing every stretch of contents
// to scan (when set) so that a hash split across two reads is seen whole.
func (w *worker) hashScan(fd int, name string, scan func([]byte)) (Digest, int64, error) {
	var d Digest
	w.h.Reset()
	var n int64
	// keep is the tail of the previous chunk, so that a hash split across
	// two reads is still found.
	const keep = storepath.HashLen + 2
	var carry []byte
	for {
		m, err := unix.Pread(fd, w.buf, n)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return d, n, fmt.Errorf("reading %s: %w", name, err)
		}
		if m == 0 {
			break
		}
		chunk := w.buf[:m]
		Write(w.h, chunk)
		n += int64(m)
		if scan != nil {
			if len(carry) > 0 {
				joined := append(carry, chunk[:min(len(chunk), keep)]...)
				scan(joined)
			}
			scan(chunk)
			carry = append(carry[:0], chunk[max(0, len(chunk)-keep):]...)
		}
		if m == len(w.buf) && m < maxWorkerBuf {
			w.buf = make([]byte, min(4*m, maxWorkerBuf))
		}
	}
	w.h.Sum(d[:0])
	return d, n, nil
}

func scanRefs(data []byte, cands, refs map[string]struct{}) {
	if bytes.IndexByte(data, '-') < 0 {
		return
	}
	storepath.ScanHashes(data, func(h string) {
		if _, ok := cands[h]; ok {
			refs[h] = struct{}{}
		}
	})
}

// parallel runs fn(0..n-1) on up to nworkers goroutines (GOMAXPROCS
// when 0), each with its own worker, and returns the first error.
func parallel(n, nworkers int, fn func(w *worker, i int) error) error {
	if nworkers <= 0 {
		nworkers = runtime.GOMAXPROCS(0)
	}
	return par.DoWith(n, nworkers, newWorker, (*worker).release, fn)
}
