package realise

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise/unpack"
	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/storepath"
)

// AddFixed puts file into st at the path a fixed-output fetch of it
// named name would have: fetch_url(..., sha256 = <its sha256>, unpack =
// unpack, name = name). That path depends on the hash, never on a URL,
// so a tarball made on this machine (scripts/make-stdenv) stands in for
// the download the evaluation names, as `nix-store --add-fixed` does.
// want, when not empty, is the sha256 (hex) the file must have. It
// returns the path, the file's sha256 and whether it was added (a path
// already valid is success).
func AddFixed(st *store.Store, file, name string, unpackIt bool, want string) (p storepath.Path, sum string, added bool, err error) {
	sum, err = fileSHA256(file)
	if err != nil {
		return storepath.Path{}, "", false, err
	}
	if want != "" && sum != want {
		return storepath.Path{}, sum, false, fmt.Errorf("%s has sha256 %s, want %s", file, sum, want)
	}
	fixed := builtins.Fixed{Algo: "sha256", Hash: sum, Unpack: unpackIt}
	p, _, err = storepath.Parse(st.LogicalDir(), builtins.FixedOutputPath(st.LogicalDir(), fixed, name))
	if err != nil {
		return storepath.Path{}, "", false, fmt.Errorf("add-fixed %s: name %q: %w", file, name, err)
	}
	if err := st.AddTempRoots(p); err != nil {
		return storepath.Path{}, "", false, err
	}
	if ok, err := st.IsValid(p); err != nil || ok {
		return p, sum, false, err
	}
	tmp := filepath.Join(st.Dir(), ".build")
	if err := os.MkdirAll(tmp, 0o711); err != nil {
		return storepath.Path{}, "", false, err
	}
	dir, err := os.MkdirTemp(tmp, "add-fixed-")
	if err != nil {
		return storepath.Path{}, "", false, err
	}
	defer removeAll(dir)
	src := filepath.Join(dir, "out")
	ca := "fixed:sha256:" + sum
	if unpackIt {
		ca = "fixed:unpack:sha256:" + sum
		if err := unpack.File(file, src); err != nil {
			return storepath.Path{}, "", false, err
		}
	} else if err := copyFile(file, src, 0o444); err != nil {
		return storepath.Path{}, "", false, err
	}
	// The bytes were hashed above and unpacked from that same open file's
	// path; a file changed between the two would unpack something else,
	// so hash again and refuse a mismatch.
	if again, err := fileSHA256(file); err != nil || again != sum {
		if err == nil {
			err = fmt.Errorf("%s changed while it was added", file)
		}
		return storepath.Path{}, "", false, err
	}
	if _, err := st.Ingest(src, p, store.IngestOptions{ContentAddress: ca, Move: true}); err != nil {
		return storepath.Path{}, "", false, fmt.Errorf("add-fixed %s: %w", file, err)
	}
	return p, sum, true, nil
}

func fileSHA256(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", file, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
