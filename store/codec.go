package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// PathInfo is what the store knows about a registered path.
type PathInfo struct {
	Path     storepath.Path
	TreeHash treehash.Digest
	// Size is the sum of the sizes of the path's regular files.
	Size int64
	// Files is the number of entries in the manifest (root included).
	Files      int
	Registered time.Time
	// Deriver is the identity of the derivation that built the path, if any.
	Deriver string
	// ContentAddress is set for content-addressed paths ("source:blake3:…").
	ContentAddress string
	// Impure, when set, says why the path's bytes may depend on the
	// machine that made it rather than on its derivation alone: it was
	// built seeing host paths ([nexis] sandbox_paths), or it refers to
	// a path that was. Such a path is never signed, copied to a cache,
	// exported, substituted or built for another machine (ErrImpure).
	Impure string
	// References are the store paths this one mentions, self included
	// when it mentions itself; sorted by hash.
	References []storepath.Path
}

// Stats are store-wide totals, kept exact by every commit.
type Stats struct {
	Paths int64 `json:"paths"`
	// Files counts manifest entries over all paths.
	Files int64 `json:"files"`
	// Bytes is the sum of path sizes: what the store would take without
	// dedup.
	Bytes int64 `json:"bytes"`
	// Contents is the number of distinct non-empty file contents, and
	// ContentBytes their total size: what it takes with perfect dedup.
	Contents     int64 `json:"contents"`
	ContentBytes int64 `json:"content_bytes"`
	Roots        int64 `json:"roots"`
}

// HumanSize writes a size in bytes (a path's, the store's, a transfer's)
// for people: "512 B", "1.5 MiB".
func HumanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// A path-info record is version 1, or version 2 when the path is
// impure: version 1 followed by the reason. Pure paths keep writing
// version 1, so their records read the same as before schema 2.
const (
	infoVersion       = 1
	infoVersionImpure = 2
)

func encodeInfo(pi *PathInfo) []byte {
	v := byte(infoVersion)
	if pi.Impure != "" {
		v = infoVersionImpure
	}
	b := []byte{v}
	b = appendString(b, pi.Path.Name)
	b = append(b, pi.TreeHash[:]...)
	b = appendUvarint(b, uint64(pi.Size))
	b = appendUvarint(b, uint64(pi.Files))
	b = binary.AppendVarint(b, pi.Registered.UnixNano())
	b = appendString(b, pi.Deriver)
	b = appendString(b, pi.ContentAddress)
	if pi.Impure != "" {
		b = appendString(b, pi.Impure)
	}
	return b
}

var errCorrupt = errors.New("corrupt record")

func decodeInfo(hash string, b []byte) (*PathInfo, error) {
	d := decoder{b: b}
	v := d.byte()
	if v != infoVersion && v != infoVersionImpure {
		return nil, fmt.Errorf("path info of %s: unknown record version %d", hash, v)
	}
	pi := &PathInfo{Path: storepath.Path{Hash: hash}}
	pi.Path.Name = d.string()
	copy(pi.TreeHash[:], d.bytes(32))
	pi.Size = int64(d.uvarint())
	pi.Files = int(d.uvarint())
	pi.Registered = time.Unix(0, d.varint())
	pi.Deriver = d.string()
	pi.ContentAddress = d.string()
	if v == infoVersionImpure {
		pi.Impure = d.string()
		if pi.Impure == "" {
			d.fail()
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("path info of %s: %w", hash, d.err)
	}
	return pi, nil
}

func encodeManifest(files []treehash.File) []byte {
	b := appendUvarint(nil, uint64(len(files)))
	for i := range files {
		f := &files[i]
		b = appendString(b, f.Path)
		b = append(b, byte(f.Type))
		switch f.Type {
		case treehash.Regular, treehash.Executable:
			b = appendUvarint(b, uint64(f.Size))
			b = append(b, f.Digest[:]...)
		case treehash.Symlink:
			b = appendString(b, f.Target)
		}
	}
	return b
}

func decodeManifest(b []byte) ([]treehash.File, error) {
	d := decoder{b: b}
	n := d.uvarint()
	if n > uint64(len(b)) {
		return nil, errCorrupt
	}
	files := make([]treehash.File, 0, n)
	for i := uint64(0); i < n && d.err == nil; i++ {
		f := treehash.File{Path: d.string(), Type: treehash.Type(d.byte())}
		switch f.Type {
		case treehash.Regular, treehash.Executable:
			f.Size = int64(d.uvarint())
			copy(f.Digest[:], d.bytes(32))
		case treehash.Symlink:
			f.Target = d.string()
		case treehash.Directory:
		default:
			return nil, errCorrupt
		}
		files = append(files, f)
	}
	return files, d.err
}

func encodeStats(st *Stats) []byte {
	b := []byte{1}
	for _, v := range []int64{st.Paths, st.Files, st.Bytes, st.Contents, st.ContentBytes, st.Roots} {
		b = binary.AppendVarint(b, v)
	}
	return b
}

func decodeStats(b []byte) (Stats, error) {
	var st Stats
	if len(b) == 0 {
		return st, nil
	}
	d := decoder{b: b}
	if d.byte() != 1 {
		return st, errCorrupt
	}
	for _, p := range []*int64{&st.Paths, &st.Files, &st.Bytes, &st.Contents, &st.ContentBytes, &st.Roots} {
		*p = d.varint()
	}
	return st, d.err
}

// contentKey identifies a shared content: its BLAKE3 and whether it is
// executable, since a hard-linked inode has one mode.
type contentKey [33]byte

func keyOf(f *treehash.File) contentKey {
	var k contentKey
	copy(k[:32], f.Digest[:])
	k[32] = byte(f.Type)
	return k
}

// Digest is the content's BLAKE3.
func (k contentKey) Digest() treehash.Digest {
	var d treehash.Digest
	copy(d[:], k[:32])
	return d
}

func (k contentKey) poolRel() string {
	d := k.Digest()
	h := d.Hex()
	return h[:2] + "/" + h + string(k[32])
}

type contentVal struct {
	count uint64
	size  int64
}

func encodeContent(v contentVal) []byte {
	return appendUvarint(appendUvarint(nil, v.count), uint64(v.size))
}

func decodeContent(b []byte) (contentVal, error) {
	d := decoder{b: b}
	v := contentVal{count: d.uvarint(), size: int64(d.uvarint())}
	return v, d.err
}

func appendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if len(d.b) < n {
		d.fail()
		return make([]byte, n)
	}
	b := d.b[:n]
	d.b = d.b[n:]
	return b
}

func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	return string(d.bytes(int(n)))
}

func packHashes(hs []string) []byte {
	b := make([]byte, 0, len(hs)*storepath.HashLen)
	for _, h := range hs {
		b = append(b, h...)
	}
	return b
}

func unpackHashes(b []byte) ([]string, error) {
	if len(b)%storepath.HashLen != 0 {
		return nil, errCorrupt
	}
	out := make([]string, 0, len(b)/storepath.HashLen)
	for i := 0; i < len(b); i += storepath.HashLen {
		out = append(out, string(b[i:i+storepath.HashLen]))
	}
	return out, nil
}
