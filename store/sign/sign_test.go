package sign

import (
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSignVerify(t *testing.T) {
	k, err := Generate("cache.example.org-1")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := Generate("other-1")
	msg := []byte("nexis-path-1;/store/...")
	sig := k.Sign(msg)

	tr, err := NewTrusted(k.Public().String())
	if err != nil {
		t.Fatal(err)
	}
	if name, err := tr.Verify(msg, []string{other.Sign(msg), sig}); err != nil || name != k.Name {
		t.Fatalf("Verify = %q, %v", name, err)
	}
	for _, c := range []struct {
		sigs []string
		msg  []byte
		want string
	}{
		{nil, msg, "no signature"},
		{[]string{other.Sign(msg)}, msg, "other-1 is not in trusted_keys"},
		{[]string{sig}, []byte("tampered"), "does not verify"},
		{[]string{"garbage"}, msg, "does not verify"},
		{[]string{k.Name + ":AAAA"}, msg, "does not verify"},
	} {
		_, err := tr.Verify(c.msg, c.sigs)
		if !errors.Is(err, ErrUntrusted) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Verify(%v) = %v, want %q", c.sigs, err, c.want)
		}
	}
	empty, _ := NewTrusted()
	if _, err := empty.Verify(msg, []string{sig}); err == nil || !strings.Contains(err.Error(), "no key is trusted") {
		t.Fatalf("empty trust: %v", err)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	k, _ := Generate("host-1")
	sec, pub := filepath.Join(dir, "k.secret"), filepath.Join(dir, "k.public")
	if err := WriteKeyFiles(k, sec, pub); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFiles(k, sec, pub); err == nil {
		t.Fatal("overwrote a secret key")
	}
	st, _ := os.Stat(sec)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("secret key mode %v", st.Mode())
	}
	k2, err := ReadSecretKeyFile(sec)
	if err != nil {
		t.Fatal(err)
	}
	if k2.String() != k.String() {
		t.Fatal("secret key did not round-trip")
	}
	line, _ := os.ReadFile(pub)
	p, err := ParsePublicKey(string(line))
	if err != nil || !p.Key.Equal(k.Public().Key) || p.Name != "host-1" {
		t.Fatalf("public key: %v %v", p, err)
	}
	os.Chmod(sec, 0o644)
	if _, err := ReadSecretKeyFile(sec); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("world-readable secret key: %v", err)
	}

	tf := filepath.Join(dir, "trusted")
	os.WriteFile(tf, []byte("# comment\n\n"+string(line)), 0o644)
	tr, _ := NewTrusted()
	if err := tr.AddFile(tf); err != nil || tr.Len() != 1 {
		t.Fatalf("AddFile: %v (%d keys)", err, tr.Len())
	}
	if err := tr.AddFile(filepath.Join(dir, "missing")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(tf, []byte("nonsense\n"), 0o644)
	if err := tr.AddFile(tf); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Fatalf("bad trusted file: %v", err)
	}
}

func TestBadKeys(t *testing.T) {
	for _, s := range []string{"", "noname", ":AAAA", "a b:AAAA", "name:!!!", "name:AAAA"} {
		if _, err := ParsePublicKey(s); err == nil {
			t.Errorf("public key %q accepted", s)
		}
		if _, err := ParseSecretKey(s); err == nil {
			t.Errorf("secret key %q accepted", s)
		}
	}
	k, _ := Generate("x")
	// A secret key whose public half belongs to another key.
	o, _ := Generate("x")
	mixed := k.key.Seed()
	mixed = append(mixed, o.key[32:]...)
	if _, err := ParseSecretKey("x:" + b64(mixed)); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Fatalf("mixed key: %v", err)
	}
	// Errors never echo a secret.
	_, err := ParseSecretKey("x:" + b64(k.key)[:20])
	if err == nil || strings.Contains(err.Error(), b64(k.key)[:20]) {
		t.Fatalf("error leaks the secret: %v", err)
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
