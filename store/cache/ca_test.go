package cache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nexisos/nexis/store"
	"github.com/nexisos/nexis/store/contentaddr"
	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// fixedFetch is the path a fetch_url of good (sha256) gets, and its
// address.
func fixedFetch(t *testing.T, good []byte) (storepath.Path, contentaddr.CA) {
	t.Helper()
	sum := sha256.Sum256(good)
	ca := contentaddr.CA{Method: contentaddr.Flat, Algo: "sha256", Hash: hex.EncodeToString(sum[:])}
	p, err := ca.Path("/store", "src-1.0.tar.gz")
	if err != nil {
		t.Fatal(err)
	}
	return p, ca
}

// registerRaw puts content at p in st and registers it with the address
// ca, unchecked: what a compromised machine (or a nexis that did not
// check addresses) holds.
func registerRaw(t *testing.T, st *store.Store, p storepath.Path, content []byte, ca string) {
	t.Helper()
	phys := st.Physical(p)
	os.MkdirAll(filepath.Dir(phys), 0o755)
	if err := os.WriteFile(phys, content, 0o444); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(phys, time.Unix(1, 0), time.Unix(1, 0))
	files, err := treehash.List(phys)
	if err != nil {
		t.Fatal(err)
	}
	files[0].Digest = treehash.Sum(content)
	if _, err := st.Register([]store.Registration{{Path: p, TreeHash: treehash.Hash(files), Files: files, ContentAddress: ca}}); err != nil {
		t.Fatal(err)
	}
}

// TestCompromisedCache: a cache whose key is trusted signs other bytes
// under the path of a fixed-output fetch. Whether its record keeps the
// content address (then every arrival checks the bytes against it) or
// drops it (then the consumer, which knows the address from the
// derivation, refuses the record), nothing is registered, and the
// refusal names the path and both hashes. verify --check-contents finds
// such bytes in a store that took them, and a restore with the right
// bytes mends the path.
func TestCompromisedCache(t *testing.T) {
	good, evil := []byte("the real release tarball\n"), []byte("a tarball with a back door\n")
	p, ca := fixedFetch(t, good)
	evilSum := sha256.Sum256(evil)
	evilHash := "sha256:" + hex.EncodeToString(evilSum[:])
	w := newWorld(t)
	keeps := openStore(t, filepath.Join(w.dir, "keeps"))
	registerRaw(t, keeps, p, evil, ca.String())
	drops := openStore(t, filepath.Join(w.dir, "drops"))
	registerRaw(t, drops, p, evil, "")
	dst := openStore(t, filepath.Join(w.dir, "dst"))
	refused := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s: accepted other bytes", what)
		}
		for _, want := range []string{p.Hash, evilHash, ca.Digest()} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: the refusal does not name %s: %v", what, want, err)
			}
		}
		if ok, _ := dst.IsValid(p); ok {
			t.Fatalf("%s: registered", what)
		}
	}

	// An export file (nexis store import).
	var exp bytes.Buffer
	if err := Export(context.Background(), keeps, []storepath.Path{p}, &exp, ExportOptions{Key: w.key}); err != nil {
		t.Fatal(err)
	}
	_, err := Import(dst, &exp, w.trusted)
	if !errors.Is(err, store.ErrContentAddress) {
		t.Errorf("import: %v, want a content address mismatch", err)
	}
	refused("import", err)

	// A binary cache, substituted by a consumer that realises the fetch.
	for _, src := range []*store.Store{keeps, drops} {
		cacheDir := filepath.Join(t.TempDir(), "cache")
		dest, err := OpenDest(context.Background(), "file://"+cacheDir, SSHOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Copy(context.Background(), src, dest, []storepath.Path{p}, ExportOptions{Key: w.key, TempDir: t.TempDir()}); err != nil {
			t.Fatal(err)
		}
		sub, err := NewSubstituter([]string{"file://" + cacheDir}, w.trusted)
		if err != nil {
			t.Fatal(err)
		}
		_, err = sub.SubstituteFixed(context.Background(), dst, p, ca)
		if src == drops {
			if !errors.Is(err, ErrContentAddress) || !strings.Contains(err.Error(), p.Hash) {
				t.Errorf("a record without the address: %v", err)
			}
			if ok, _ := dst.IsValid(p); ok {
				t.Fatal("a record without the address was substituted")
			}
			continue
		}
		refused("substitution", err)
	}

	// A copy over ssh into a remote nexis, which imports it.
	remote := filepath.Join(w.dir, "remote")
	openStore(t, remote).Close()
	os.WriteFile(filepath.Join(remote, "trusted-keys"), []byte(w.key.Public().String()+"\n"), 0o644)
	fakeSSH := filepath.Join(w.dir, "fake-ssh")
	os.WriteFile(fakeSSH, []byte("#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift 2\nexec sh -c \"$1\"\n"), 0o755)
	self, _ := os.Executable()
	var remoteErr bytes.Buffer
	dest, err := OpenDest(context.Background(), "ssh://user@remote.example", SSHOptions{SSH: fakeSSH, RemoteProgram: "env " + envServe + "=" + remote + " " + self, Stderr: &remoteErr})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Copy(context.Background(), keeps, dest, []storepath.Path{p}, ExportOptions{Key: w.key, TempDir: t.TempDir()})
	dest.Close()
	if err == nil || !strings.Contains(err.Error()+remoteErr.String(), evilHash) {
		t.Fatalf("ssh copy: %v %s", err, remoteErr.String())
	}
	rs := openStore(t, remote)
	if ok, _ := rs.IsValid(p); ok {
		t.Fatal("ssh copy: registered on the remote")
	}
	rs.Close()

	// The store that took the bytes: verify --check-contents says so and
	// plans a restore; the right bytes mend it, registration included.
	rep, err := keeps.Verify(store.VerifyOptions{CheckContents: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Plan.Restore) != 1 || !strings.Contains(strings.Join(rep.Errors, "\n"), evilHash) {
		t.Fatalf("verify --check-contents: %v, plan %+v", rep.Errors, rep.Plan)
	}
	right := filepath.Join(t.TempDir(), "download")
	os.WriteFile(right, good, 0o644)
	wrong := filepath.Join(t.TempDir(), "download")
	os.WriteFile(wrong, []byte("neither\n"), 0o644)
	if _, err := keeps.Restore(store.RestoreRequest{Path: p, Src: wrong}); !errors.Is(err, store.ErrContentAddress) {
		t.Fatalf("restore with other bytes: %v", err)
	}
	if _, err := keeps.Restore(store.RestoreRequest{Path: p, Src: right}); err != nil {
		t.Fatal(err)
	}
	verify(t, keeps)

	// The right bytes, once in a trusted cache, substitute.
	cacheDir := filepath.Join(t.TempDir(), "cache")
	dest, err = OpenDest(context.Background(), "file://"+cacheDir, SSHOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Copy(context.Background(), keeps, dest, []storepath.Path{p}, ExportOptions{Key: w.key, TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	sub, _ := NewSubstituter([]string{"file://" + cacheDir}, w.trusted)
	if _, err := sub.SubstituteFixed(context.Background(), dst, p, ca); err != nil {
		t.Fatal(err)
	}
	verify(t, dst)
	if b, _ := os.ReadFile(dst.Physical(p)); !bytes.Equal(b, good) {
		t.Fatalf("substituted %q", b)
	}
}
