package cache

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/nexisos/nexis/store/archive"
	"github.com/nexisos/nexis/store/sign"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// Info is a path-info record: what a cache, an export file or a remote
// copy says about one store path, like Nix's narinfo. Its text form is
// one "Key: value" per line, in this order:
//
//	StorePath: /store/ab/cd/<hash>-<name>
//	URL: archive/<hex of FileHash>.nxar.zst       (where the archive is, relative to the cache)
//	Compression: zstd                            (or none)
//	FileHash: blake3:<hex>                       (of the file at URL, as stored)
//	FileSize: <bytes>
//	ArchiveHash: blake3:<hex>                    (of the uncompressed archive, store/archive)
//	ArchiveSize: <bytes>
//	TreeHash: blake3:<hex>                       (store/treehash of the tree)
//	References: <hash>-<name> ...                (sorted by hash; may be empty; the path itself when it refers to itself)
//	Deriver: <derivation id>                     (optional)
//	CA: <content address>                        (optional)
//	Sig: <key name>:<base64>                     (zero or more)
//
// A reader ignores keys it does not know (a newer writer may add some)
// and refuses duplicates, malformed values and records over MaxInfoSize.
//
// What is signed is the fingerprint (Fingerprint): the store path, the
// archive's hash and size, the tree hash, the references, the deriver
// and the content address. URL, Compression, FileHash and FileSize
// describe one stored copy and may differ between caches holding the
// same path; a download is checked against the signed archive hash.
type Info struct {
	// StoreDir is the logical store directory of StorePath.
	StoreDir    string
	Path        storepath.Path
	URL         string
	Compression string
	FileHash    treehash.Digest
	FileSize    int64
	ArchiveHash treehash.Digest
	ArchiveSize int64
	TreeHash    treehash.Digest
	// References are sorted by hash.
	References     []storepath.Path
	Deriver        string
	ContentAddress string
	Sigs           []string
}

// MaxInfoSize bounds a record read from the network.
const MaxInfoSize = 4 << 20

// maxReferences bounds the references of one record.
const maxReferences = 100000

// FullPath is the record's store path.
func (in *Info) FullPath() string { return in.Path.In(in.StoreDir) }

// Fingerprint is what signatures sign.
func (in *Info) Fingerprint() []byte {
	var b bytes.Buffer
	b.WriteString("nexis-path-1;")
	b.WriteString(in.FullPath())
	b.WriteByte(';')
	b.WriteString(in.ArchiveHash.String())
	b.WriteByte(';')
	b.WriteString(strconv.FormatInt(in.ArchiveSize, 10))
	b.WriteByte(';')
	b.WriteString(in.TreeHash.String())
	b.WriteByte(';')
	for i, r := range in.References {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.In(in.StoreDir))
	}
	b.WriteByte(';')
	b.WriteString(in.Deriver)
	b.WriteByte(';')
	b.WriteString(in.ContentAddress)
	return b.Bytes()
}

// Sign adds k's signature.
func (in *Info) Sign(k *sign.SecretKey) {
	s := k.Sign(in.Fingerprint())
	prefix := k.Name + ":"
	// One signature per key name: re-signing replaces.
	in.Sigs = slices.DeleteFunc(in.Sigs, func(x string) bool { return strings.HasPrefix(x, prefix) })
	in.Sigs = append(in.Sigs, s)
}

// Verify checks that a trusted key signed the record.
func (in *Info) Verify(t *sign.Trusted) error {
	if _, err := t.Verify(in.Fingerprint(), in.Sigs); err != nil {
		return fmt.Errorf("%s: %w", in.FullPath(), err)
	}
	return nil
}

// Marshal is the record's text form.
func (in *Info) Marshal() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "StorePath: %s\n", in.FullPath())
	fmt.Fprintf(&b, "URL: %s\n", in.URL)
	fmt.Fprintf(&b, "Compression: %s\n", in.Compression)
	fmt.Fprintf(&b, "FileHash: %s\n", in.FileHash)
	fmt.Fprintf(&b, "FileSize: %d\n", in.FileSize)
	fmt.Fprintf(&b, "ArchiveHash: %s\n", in.ArchiveHash)
	fmt.Fprintf(&b, "ArchiveSize: %d\n", in.ArchiveSize)
	fmt.Fprintf(&b, "TreeHash: %s\n", in.TreeHash)
	b.WriteString("References:")
	for _, r := range in.References {
		b.WriteByte(' ')
		b.WriteString(r.Base())
	}
	b.WriteByte('\n')
	if in.Deriver != "" {
		fmt.Fprintf(&b, "Deriver: %s\n", in.Deriver)
	}
	if in.ContentAddress != "" {
		fmt.Fprintf(&b, "CA: %s\n", in.ContentAddress)
	}
	for _, s := range in.Sigs {
		fmt.Fprintf(&b, "Sig: %s\n", s)
	}
	return b.Bytes()
}

// ErrBadInfo is wrapped by every error about a malformed record.
var ErrBadInfo = errors.New("malformed path-info record")

// ParseInfo parses a record for a store whose logical directory is
// storeDir; a record of another store directory is refused (its paths
// would mean other things here).
func ParseInfo(data []byte, storeDir string) (*Info, error) {
	if len(data) > MaxInfoSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadInfo, MaxInfoSize)
	}
	in := &Info{StoreDir: storeDir, Compression: archive.CompressionNone}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), MaxInfoSize)
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadInfo, key, fmt.Sprintf(format, args...))
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, ": ")
		if !ok {
			if k, ok := strings.CutSuffix(line, ":"); ok {
				key, val = k, "" // "References:" with none
			} else {
				return nil, fmt.Errorf("%w: line %q is not \"Key: value\"", ErrBadInfo, abbreviate(line))
			}
		}
		if key != "Sig" {
			if seen[key] {
				return nil, bad(key, "given twice")
			}
			seen[key] = true
		}
		var err error
		switch key {
		case "StorePath":
			in.Path, _, err = storepath.Parse(storeDir, val)
			if err == nil && storepath.Join(storeDir, in.Path.Hash, in.Path.Name) != val {
				err = errors.New("not a store path itself")
			}
			if err != nil {
				return nil, bad(key, "%v", err)
			}
		case "URL":
			if err := checkURL(val); err != nil {
				return nil, bad(key, "%v", err)
			}
			in.URL = val
		case "Compression":
			if val != archive.CompressionZstd && val != archive.CompressionNone {
				return nil, bad(key, "unknown compression %q", abbreviate(val))
			}
			in.Compression = val
		case "FileHash", "ArchiveHash", "TreeHash":
			d, err := treehash.ParseDigest(val)
			if err != nil || !strings.HasPrefix(val, "blake3:") {
				return nil, bad(key, "want blake3:<64 hex digits>")
			}
			switch key {
			case "FileHash":
				in.FileHash = d
			case "ArchiveHash":
				in.ArchiveHash = d
			default:
				in.TreeHash = d
			}
		case "FileSize", "ArchiveSize":
			n, err := strconv.ParseInt(val, 10, 64)
			if err != nil || n < 0 || strconv.FormatInt(n, 10) != val {
				return nil, bad(key, "want a size in bytes")
			}
			if key == "FileSize" {
				in.FileSize = n
			} else {
				in.ArchiveSize = n
			}
		case "References":
			for _, f := range strings.Fields(val) {
				if len(in.References) >= maxReferences {
					return nil, bad(key, "more than %d", maxReferences)
				}
				p, err := parseBase(f)
				if err != nil {
					return nil, bad(key, "%v", err)
				}
				in.References = append(in.References, p)
			}
		case "Deriver", "CA":
			if val == "" || strings.ContainsAny(val, ";\x00") || len(val) > 1024 {
				return nil, bad(key, "empty, too long, or holds ';' or NUL")
			}
			if key == "Deriver" {
				in.Deriver = val
			} else {
				in.ContentAddress = val
			}
		case "Sig":
			if len(in.Sigs) >= 64 {
				return nil, bad(key, "more than 64 signatures")
			}
			in.Sigs = append(in.Sigs, val)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadInfo, err)
	}
	for _, k := range []string{"StorePath", "ArchiveHash", "ArchiveSize", "TreeHash", "References"} {
		if !seen[k] {
			return nil, fmt.Errorf("%w: no %s", ErrBadInfo, k)
		}
	}
	if !slices.IsSortedFunc(in.References, func(a, b storepath.Path) int { return strings.Compare(a.Hash, b.Hash) }) {
		return nil, bad("References", "not sorted by hash")
	}
	for i := 1; i < len(in.References); i++ {
		if in.References[i].Hash == in.References[i-1].Hash {
			return nil, bad("References", "%s given twice", in.References[i].Hash)
		}
	}
	for _, r := range in.References {
		if r.Hash == in.Path.Hash && r.Name != in.Path.Name {
			return nil, bad("References", "self-reference %s names another path", r.Base())
		}
	}
	return in, nil
}

func parseBase(s string) (storepath.Path, error) {
	if len(s) < storepath.HashLen+2 || s[storepath.HashLen] != '-' || !storepath.IsHash(s[:storepath.HashLen]) {
		return storepath.Path{}, fmt.Errorf("%q is not <hash>-<name>", abbreviate(s))
	}
	p := storepath.Path{Hash: s[:storepath.HashLen], Name: s[storepath.HashLen+1:]}
	if err := storepath.ValidName(p.Name); err != nil {
		return storepath.Path{}, err
	}
	return p, nil
}

// checkURL accepts relative paths inside a cache only: a record must not
// send a client to another host or outside the cache.
func checkURL(u string) error {
	if u == "" || len(u) > 1024 || strings.HasPrefix(u, "/") {
		return errors.New("want a relative path inside the cache")
	}
	for _, el := range strings.Split(u, "/") {
		if el == "" || el == "." || el == ".." {
			return fmt.Errorf("%q has an empty, . or .. element", abbreviate(u))
		}
		for _, c := range el {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-+", c)) {
				return fmt.Errorf("%q: use letters, digits and . _ - +", abbreviate(u))
			}
		}
	}
	return nil
}

func abbreviate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
