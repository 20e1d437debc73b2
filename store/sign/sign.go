// Package sign holds the ed25519 keys that decide which store paths a
// machine trusts from elsewhere, in the textual forms Nix users know:
//
//	public key   NAME:BASE64(32-byte ed25519 public key)
//	secret key   NAME:BASE64(64-byte ed25519 private key: seed, then public key)
//	signature    NAME:BASE64(64-byte ed25519 signature)
//
// NAME says whose key it is (by convention "host-or-cache-N", the number
// counting rotations). A machine trusts the public keys listed in
// `[nexis.substituters] trusted_keys` and in <root>/etc/nexis/trusted-keys;
// a path from a cache, an import or a remote copy is accepted only with a
// valid signature by one of them. What is signed is a path-info
// record's fingerprint (store/cache).
package sign

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/nexisos/nexis/internal/durable"
)

// SecretKey signs.
type SecretKey struct {
	Name string
	key  ed25519.PrivateKey
}

// PublicKey verifies.
type PublicKey struct {
	Name string
	Key  ed25519.PublicKey
}

// ValidName checks a key name: what precedes the colon.
func ValidName(name string) error {
	if name == "" {
		return errors.New("empty key name")
	}
	if len(name) > 128 {
		return fmt.Errorf("key name %.20q… is longer than 128 characters", name)
	}
	for _, c := range name {
		if c <= ' ' || c == ':' || c == 0x7f || c > 0x7e {
			return fmt.Errorf("key name %q: use printable ASCII without spaces or colons", name)
		}
	}
	return nil
}

// Generate makes a new key pair named name.
func Generate(name string) (*SecretKey, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating a key: %w", err)
	}
	return &SecretKey{Name: name, key: priv}, nil
}

// Public is the public half of k.
func (k *SecretKey) Public() PublicKey {
	return PublicKey{Name: k.Name, Key: k.key.Public().(ed25519.PublicKey)}
}

// String is the secret key file's line.
func (k *SecretKey) String() string {
	return k.Name + ":" + base64.StdEncoding.EncodeToString(k.key)
}

// String is the public key line users put in trusted_keys.
func (k PublicKey) String() string {
	return k.Name + ":" + base64.StdEncoding.EncodeToString(k.Key)
}

// Sign returns the signature line of msg.
func (k *SecretKey) Sign(msg []byte) string {
	return k.Name + ":" + base64.StdEncoding.EncodeToString(ed25519.Sign(k.key, msg))
}

func split(what, s string, size int) (string, []byte, error) {
	s = strings.TrimSpace(s)
	name, b64, ok := strings.Cut(s, ":")
	if !ok {
		return "", nil, fmt.Errorf("%s %q: want NAME:BASE64", what, abbreviate(s))
	}
	if err := ValidName(name); err != nil {
		return "", nil, fmt.Errorf("%s: %w", what, err)
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != size {
		return "", nil, fmt.Errorf("%s %s: want %d bytes of base64 after the colon", what, name, size)
	}
	return name, raw, nil
}

// abbreviate keeps secrets and long garbage out of error messages.
func abbreviate(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

// ParsePublicKey parses "NAME:BASE64".
func ParsePublicKey(s string) (PublicKey, error) {
	name, raw, err := split("public key", s, ed25519.PublicKeySize)
	if err != nil {
		return PublicKey{}, err
	}
	return PublicKey{Name: name, Key: ed25519.PublicKey(raw)}, nil
}

// ParseSecretKey parses a secret key line.
func ParseSecretKey(s string) (*SecretKey, error) {
	name, raw, err := split("secret key", s, ed25519.PrivateKeySize)
	if err != nil {
		// Never echo a secret key back, even in part.
		if n, _, ok := strings.Cut(strings.TrimSpace(s), ":"); ok && ValidName(n) == nil {
			return nil, fmt.Errorf("secret key %s: want NAME:BASE64 of a 64-byte ed25519 key", n)
		}
		return nil, errors.New("not a secret key: want NAME:BASE64 of a 64-byte ed25519 key")
	}
	priv := ed25519.PrivateKey(raw)
	// The second half must be the public key of the first: a file
	// assembled by hand (or damaged) would sign with one key and claim
	// another.
	if !ed25519.NewKeyFromSeed(priv.Seed()).Equal(priv) {
		return nil, fmt.Errorf("secret key %s is damaged: its public half does not match", name)
	}
	return &SecretKey{Name: name, key: priv}, nil
}

// ReadSecretKeyFile reads a secret key file, refusing one that others
// may read.
func ReadSecretKeyFile(path string) (*SecretKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secret key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("secret key %s is readable by others (mode %04o): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("secret key %s: %w", path, err)
	}
	k, err := ParseSecretKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// GenerateFiles makes a key pair named name (Generate) and writes it
// (WriteKeyFiles) to secretPath and publicPath, by default NAME.secret
// and NAME.public; it returns the key and the files it wrote.
func GenerateFiles(name, secretPath, publicPath string) (k *SecretKey, sec, pub string, err error) {
	if k, err = Generate(name); err != nil {
		return nil, "", "", err
	}
	sec, pub = secretPath, publicPath
	if sec == "" {
		sec = name + ".secret"
	}
	if pub == "" {
		pub = name + ".public"
	}
	return k, sec, pub, WriteKeyFiles(k, sec, pub)
}

// WriteKeyFiles writes the secret key to secretPath (mode 0600, never
// over an existing file) and the public key line to publicPath.
func WriteKeyFiles(k *SecretKey, secretPath, publicPath string) error {
	if err := durable.WriteNew(secretPath, []byte(k.String()+"\n"), 0o600); err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	if err := durable.WriteFile(publicPath, []byte(k.Public().String()+"\n"), 0o644); err != nil {
		return fmt.Errorf("public key: %w", err)
	}
	return nil
}

// Trusted is a set of public keys. A name may carry several keys (a
// rotation in progress).
type Trusted struct {
	keys map[string][]ed25519.PublicKey
}

// NewTrusted parses public key lines.
func NewTrusted(lines ...string) (*Trusted, error) {
	t := &Trusted{keys: map[string][]ed25519.PublicKey{}}
	for _, l := range lines {
		if err := t.Add(l); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Add parses one public key line and trusts it.
func (t *Trusted) Add(line string) error {
	k, err := ParsePublicKey(line)
	if err != nil {
		return err
	}
	for _, have := range t.keys[k.Name] {
		if have.Equal(k.Key) {
			return nil
		}
	}
	t.keys[k.Name] = append(t.keys[k.Name], k.Key)
	return nil
}

// Len is the number of trusted keys.
func (t *Trusted) Len() int {
	n := 0
	for _, ks := range t.keys {
		n += len(ks)
	}
	return n
}

// DefaultTrustedFile is where a machine lists the keys it trusts besides
// its config's trusted_keys, relative to the root.
const DefaultTrustedFile = "etc/nexis/trusted-keys"

// AddFile trusts every key line of path (blank lines and # comments are
// skipped). A missing file adds nothing.
func (t *Trusted) AddFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("trusted keys: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if err := t.Add(l); err != nil {
			return fmt.Errorf("%s:%d: %w", path, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("trusted keys %s: %w", path, err)
	}
	return nil
}

// LoadTrusted trusts the keys of file (a machine's trusted-keys; a
// missing file adds none) and the extra lines (a config's trusted_keys,
// --trusted-key).
func LoadTrusted(file string, extra ...string) (*Trusted, error) {
	t, err := NewTrusted(extra...)
	if err != nil {
		return nil, err
	}
	if err := t.AddFile(file); err != nil {
		return nil, err
	}
	return t, nil
}

// TrustedFileIn is DefaultTrustedFile under root.
func TrustedFileIn(root string) string { return filepath.Join(root, DefaultTrustedFile) }

// ErrUntrusted is wrapped by Verify's error.
var ErrUntrusted = errors.New("not signed by a trusted key")

// Verify returns the name of a trusted key with a valid signature of msg
// among sigs. Its error says what the signatures were, so that a user
// sees whether a key is missing from trusted_keys or a record was
// tampered with.
func (t *Trusted) Verify(msg []byte, sigs []string) (string, error) {
	var untrusted, bad []string
	for _, s := range sigs {
		name, raw, err := split("signature", s, ed25519.SignatureSize)
		if err != nil {
			bad = append(bad, abbreviate(s))
			continue
		}
		keys, ok := t.keys[name]
		if !ok {
			untrusted = append(untrusted, name)
			continue
		}
		for _, k := range keys {
			if ed25519.Verify(k, msg, raw) {
				return name, nil
			}
		}
		bad = append(bad, name)
	}
	var why []string
	if len(sigs) == 0 {
		why = append(why, "it has no signature")
	}
	if len(bad) > 0 {
		why = append(why, "the signature by "+strings.Join(bad, ", ")+" does not verify (tampered with?)")
	}
	if len(untrusted) > 0 {
		why = append(why, "its signer "+strings.Join(untrusted, ", ")+" is not in trusted_keys")
	}
	if t.Len() == 0 {
		why = append(why, "no key is trusted here (list one in [nexis.substituters] trusted_keys or etc/nexis/trusted-keys)")
	}
	return "", fmt.Errorf("%w: %s", ErrUntrusted, strings.Join(why, "; "))
}
