// Package archive is the nexis archive: one store path's tree as a single
// deterministic byte stream, for `nexis store export`, binary caches and
// copies between machines. It is pure Go (no cgo) and streams: neither
// side holds a tree in memory.
//
// # Format
//
// An archive is the magic "nexis-archive-1\n" followed by the entries of
// the tree in ascending bytewise order of their relative paths (the order
// of store/treehash), then the end marker:
//
//	archive = "nexis-archive-1\n" entry... 'E'
//	entry   = type uvarint(len(path)) path body
//	type    = 'd' directory | 'f' file | 'x' executable file | 'l' symlink
//	body    'd':      nothing
//	        'f', 'x': uint64 big-endian size, then exactly size bytes of contents
//	        'l':      uvarint(len(target)) target
//
// The first entry is the root, whose path is empty; a root that is not a
// directory is the only entry. Every other path is '/'-separated
// elements, none empty, "." or "..", none holding NUL, each at most 255
// bytes, the whole at most 4095; its parent must be an earlier 'd'
// entry. Paths are strictly ascending, so there are no duplicates. A
// symlink's target is data (1 to 4095 bytes, no NUL), never followed.
//
// Nothing else is recorded: no timestamps, owners, permissions beyond
// the execute bit, extended attributes or hard links, so the same tree
// gives the same bytes on every machine. The archive hash is BLAKE3-256
// of the whole stream, magic and end marker included; the tree hash of
// the entries (store/treehash) is computed on the way, so a reader
// learns both without a second pass.
//
// In transit an archive is usually zstd-compressed (Compress,
// Decompress); the hash and size are always those of the uncompressed
// stream.
package archive

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
	"lukechampine.com/blake3"

	"github.com/nexisos/nexis/store/treehash"
)

// Magic starts every archive; it changes if the format ever does.
const Magic = "nexis-archive-1\n"

const (
	endMarker   = 'E'
	maxPath     = 4095
	maxElement  = 255
	maxTarget   = 4095
	maxFileSize = 1 << 50 // a petabyte: beyond any store path, below int64 overflow
)

// Summary describes one archive.
type Summary struct {
	// Size is the length of the uncompressed stream in bytes.
	Size int64
	// Hash is BLAKE3-256 of the uncompressed stream.
	Hash treehash.Digest
	// TreeHash is the tree hash of the entries (store/treehash).
	TreeHash treehash.Digest
	// Files are the entries, sorted, with digests: a store manifest.
	Files []treehash.File
}

// ErrFormat is wrapped by every error about a malformed archive.
var ErrFormat = errors.New("malformed archive")

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrFormat, fmt.Sprintf(format, args...))
}

// copyBufs are the buffers file contents pass through: allocating and
// clearing one per archive costs more than a small archive's contents.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// countingHasher hashes and counts what passes through it.
type countingHasher struct {
	w io.Writer
	h *blake3.Hasher
	n int64
}

func (c *countingHasher) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	return n, err
}

// Write serialises the file or tree at root to w and returns its summary.
// Symbolic links are recorded, never followed; special files are refused.
// A file that changes size while it is read is an error, so a summary
// always describes the bytes written.
func Write(w io.Writer, root string) (*Summary, error) {
	files, err := treehash.List(root)
	if err != nil {
		return nil, err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	out := &countingHasher{w: bw, h: blake3.New(32, nil)}
	var hdr []byte
	fileHash := blake3.New(32, nil)
	buf := make([]byte, 256<<10)
	if _, err := io.WriteString(out, Magic); err != nil {
		return nil, fmt.Errorf("writing archive: %w", err)
	}
	for i := range files {
		f := &files[i]
		hdr = append(hdr[:0], byte(f.Type))
		hdr = binary.AppendUvarint(hdr, uint64(len(f.Path)))
		hdr = append(hdr, f.Path...)
		switch f.Type {
		case treehash.Symlink:
			hdr = binary.AppendUvarint(hdr, uint64(len(f.Target)))
			hdr = append(hdr, f.Target...)
		case treehash.Regular, treehash.Executable:
			hdr = binary.BigEndian.AppendUint64(hdr, uint64(f.Size))
		}
		if _, err := out.Write(hdr); err != nil {
			return nil, fmt.Errorf("writing archive: %w", err)
		}
		if !f.Type.IsRegular() {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(f.Path))
		if err := copyFileInto(out, p, f.Size, fileHash, buf); err != nil {
			return nil, err
		}
		fileHash.Sum(f.Digest[:0])
	}
	if _, err := out.Write([]byte{endMarker}); err != nil {
		return nil, fmt.Errorf("writing archive: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("writing archive: %w", err)
	}
	s := &Summary{Size: out.n, TreeHash: treehash.Hash(files), Files: files}
	out.h.Sum(s.Hash[:0])
	return s, nil
}

// copyFileInto writes exactly size bytes of the regular file p to w,
// hashing them into h (reset first).
func copyFileInto(w io.Writer, p string, size int64, h *blake3.Hasher, buf []byte) error {
	// O_NOFOLLOW: a symlink swapped in since the walk is not followed.
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NOCTTY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("archiving %s: %w", p, err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	h.Reset()
	n, err := io.CopyBuffer(io.MultiWriter(w, h), io.LimitReader(f, size), buf)
	if err != nil {
		return fmt.Errorf("archiving %s: %w", p, err)
	}
	if n != size {
		return fmt.Errorf("archiving %s: it shrank from %d to %d bytes while it was read", p, size, n)
	}
	// One more byte means the file grew: the archive would lie.
	var one [1]byte
	if m, _ := f.Read(one[:]); m > 0 {
		return fmt.Errorf("archiving %s: it grew while it was read", p)
	}
	return nil
}

// Summarise computes the summary of root's archive without writing it.
func Summarise(root string) (*Summary, error) { return Write(io.Discard, root) }

// reader feeds the parser and hashes exactly the bytes the parser
// consumes, so that what follows an archive in a shared stream is
// neither read nor hashed. Header bytes read one at a time are hashed in
// batches: a hasher call per byte would cost more than the parsing.
type reader struct {
	br   *bufio.Reader
	h    *blake3.Hasher
	n    int64
	pend []byte
}

func (r *reader) flush() {
	if len(r.pend) > 0 {
		r.h.Write(r.pend)
		r.pend = r.pend[:0]
	}
}

func (r *reader) ReadByte() (byte, error) {
	c, err := r.br.ReadByte()
	if err == nil {
		if len(r.pend) == cap(r.pend) {
			r.flush()
		}
		r.pend = append(r.pend, c)
		r.n++
	}
	return c, err
}

func (r *reader) Read(p []byte) (int, error) {
	r.flush()
	n, err := r.br.Read(p)
	r.h.Write(p[:n])
	r.n += int64(n)
	return n, err
}

func (r *reader) sum(d *treehash.Digest) {
	r.flush()
	r.h.Sum(d[:0])
}

func (r *reader) full(p []byte) error {
	if _, err := io.ReadFull(r, p); err != nil {
		return truncated(err)
	}
	return nil
}

// truncated turns the end of the stream inside an archive into a format
// error (io.EOF would read as success to many callers).
func truncated(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return formatErr("truncated")
	}
	return err
}

func (r *reader) uvarint(what string, max uint64) (uint64, error) {
	v, err := binary.ReadUvarint(r)
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, formatErr("truncated")
		}
		if strings.Contains(err.Error(), "overflows") {
			// encoding/binary's overflow error is not exported.
			return 0, formatErr("%s: varint overflows", what)
		}
		return 0, err
	}
	if v > max {
		return 0, formatErr("%s is %d bytes, more than the %d allowed", what, v, max)
	}
	return v, nil
}

// Unpack reads exactly one archive from r and creates its tree at dst,
// which must not exist; its parent must be a directory only this process
// writes. The archive is hostile until the caller has compared the
// returned Size and Hash with trusted ones: Unpack only guarantees that
// nothing is created outside dst, that no entry is followed through a
// symlink, and that the summary describes what was created. On error
// dst may hold a partial tree: the caller removes it.
//
// When r is a *bufio.Reader, Unpack consumes only the archive's bytes,
// so another record may follow in the same stream. Otherwise it buffers
// and may read past the end; RequireEOF then checks nothing followed.
func Unpack(r io.Reader, dst string) (*Summary, error) {
	br, ok := r.(*bufio.Reader)
	if !ok {
		br = bufio.NewReaderSize(r, 256<<10)
	}
	rd := &reader{br: br, h: blake3.New(32, nil), pend: make([]byte, 0, 512)}
	magic := make([]byte, len(Magic))
	if err := rd.full(magic); err != nil {
		return nil, err
	}
	if string(magic) != Magic {
		return nil, formatErr("does not start with %q", strings.TrimSpace(Magic))
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	u := unpacker{rd: rd, dst: dst, dirs: map[string]struct{}{}, fileHash: blake3.New(32, nil), buf: *bp}
	for first := true; ; first = false {
		t, err := rd.ReadByte()
		if err != nil {
			return nil, truncated(err)
		}
		if t == endMarker {
			if first {
				return nil, formatErr("no root entry")
			}
			break
		}
		if err := u.entry(treehash.Type(t), first); err != nil {
			return nil, err
		}
	}
	s := &Summary{Size: rd.n, TreeHash: treehash.Hash(u.files), Files: u.files}
	rd.sum(&s.Hash)
	if !ok {
		if err := RequireEOF(br); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// RequireEOF checks that r has nothing left: trailing bytes after an
// archive are refused, so one archive hash names one byte stream.
func RequireEOF(r io.Reader) error {
	var one [1]byte
	for {
		n, err := r.Read(one[:])
		if n > 0 {
			return formatErr("data after the end of the archive")
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

type unpacker struct {
	rd       *reader
	dst      string
	files    []treehash.File
	dirs     map[string]struct{}
	prev     string
	rootDone bool
	fileHash *blake3.Hasher
	buf      []byte
}

func (u *unpacker) entry(t treehash.Type, first bool) error {
	n, err := u.rd.uvarint("a path", maxPath)
	if err != nil {
		return err
	}
	pb := make([]byte, n)
	if err := u.rd.full(pb); err != nil {
		return err
	}
	rel := string(pb)
	if first {
		if rel != "" {
			return formatErr("the first entry is %q, not the root", rel)
		}
	} else {
		if u.rootDone {
			return formatErr("entry %q after a root that is not a directory", rel)
		}
		if err := checkRel(rel); err != nil {
			return err
		}
		if rel <= u.prev {
			return formatErr("entry %q is out of order (after %q)", rel, u.prev)
		}
		parent := ""
		if i := strings.LastIndexByte(rel, '/'); i >= 0 {
			parent = rel[:i]
		}
		if _, ok := u.dirs[parent]; !ok {
			return formatErr("entry %q: its parent is not a directory of the archive", rel)
		}
	}
	u.prev = rel
	f := treehash.File{Path: rel, Type: t}
	p := u.dst
	if rel != "" {
		p = filepath.Join(u.dst, filepath.FromSlash(rel))
	}
	switch t {
	case treehash.Directory:
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("unpacking: %w", err)
		}
		u.dirs[rel] = struct{}{}
	case treehash.Symlink:
		n, err := u.rd.uvarint("a symlink target", maxTarget)
		if err != nil {
			return err
		}
		tb := make([]byte, n)
		if err := u.rd.full(tb); err != nil {
			return err
		}
		if n == 0 || strings.IndexByte(string(tb), 0) >= 0 {
			return formatErr("symlink %q: empty target or NUL byte", rel)
		}
		f.Target = string(tb)
		if err := os.Symlink(f.Target, p); err != nil {
			return fmt.Errorf("unpacking: %w", err)
		}
	case treehash.Regular, treehash.Executable:
		var sb [8]byte
		if err := u.rd.full(sb[:]); err != nil {
			return err
		}
		size := binary.BigEndian.Uint64(sb[:])
		if size > maxFileSize {
			return formatErr("file %q claims %d bytes", rel, size)
		}
		f.Size = int64(size)
		if err := u.file(p, &f); err != nil {
			return err
		}
	default:
		return formatErr("entry %q has unknown type %q", rel, byte(t))
	}
	if first && t != treehash.Directory {
		u.rootDone = true
	}
	u.files = append(u.files, f)
	return nil
}

// file creates p (never through a symlink, never over an existing file)
// with f.Size bytes from the stream, and records their digest.
func (u *unpacker) file(p string, f *treehash.File) error {
	mode := uint32(0o644)
	if f.Type == treehash.Executable {
		mode = 0o755
	}
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", f.Path, err)
	}
	out := os.NewFile(uintptr(fd), p)
	defer out.Close()
	u.fileHash.Reset()
	n, err := io.CopyBuffer(io.MultiWriter(out, u.fileHash), io.LimitReader(u.rd, f.Size), u.buf)
	if err != nil {
		return fmt.Errorf("unpacking %s: %w", f.Path, err)
	}
	// LimitReader stops quietly at the end of the stream: count what came.
	if n != f.Size {
		return formatErr("truncated in %q", f.Path)
	}
	// umask may have cleared execute bits the archive asked for.
	if err := out.Chmod(os.FileMode(mode)); err != nil {
		return fmt.Errorf("unpacking %s: %w", f.Path, err)
	}
	u.fileHash.Sum(f.Digest[:0])
	return out.Close()
}

// checkRel enforces the path rules of the format on a non-root path.
func checkRel(rel string) error {
	if rel == "" {
		return formatErr("a second root entry")
	}
	if strings.IndexByte(rel, 0) >= 0 {
		return formatErr("path %q holds a NUL byte", rel)
	}
	for _, el := range strings.Split(rel, "/") {
		switch {
		case el == "":
			return formatErr("path %q has an empty element", rel)
		case el == "." || el == "..":
			return formatErr("path %q has a %q element", rel, el)
		case len(el) > maxElement:
			return formatErr("path %q has an element longer than %d bytes", rel, maxElement)
		}
	}
	return nil
}
