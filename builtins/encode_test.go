package builtins

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"math/bits"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// reference is the canonical encoding as the documentation describes it,
// written by encoding/json: what appendEncoding must give byte for byte.
type reference struct {
	Name    string            `json:"name"`
	Version string            `json:"version"`
	System  string            `json:"system"`
	Store   string            `json:"store"`
	Builder string            `json:"builder"`
	Args    []string          `json:"args"`
	Env     map[string]string `json:"env"`
	Inputs  struct {
		Drvs []refDrv `json:"drvs"`
		Srcs []refSrc `json:"srcs"`
	} `json:"inputs"`
	Outputs []string `json:"outputs"`
	Fixed   *Fixed   `json:"fixed,omitempty"`
}

type refDrv struct {
	ID      string   `json:"id"`
	Outputs []string `json:"outputs"`
}

type refSrc struct {
	Path string `json:"path"`
	Hash string `json:"hash"`
}

func referenceEncoding(t *testing.T, d *Derivation) []byte {
	t.Helper()
	e := reference{Name: d.Name, Version: d.Version, System: d.System, Store: d.Store, Builder: d.Builder,
		Args: d.Args, Env: map[string]string{}, Outputs: d.Outputs, Fixed: d.Fixed}
	if e.Args == nil {
		e.Args = []string{}
	}
	for _, v := range d.Env {
		e.Env[v.Name] = v.Value
	}
	e.Inputs.Drvs = []refDrv{}
	for _, in := range d.Drvs {
		e.Inputs.Drvs = append(e.Inputs.Drvs, refDrv{in.ID(), in.Outputs})
	}
	e.Inputs.Srcs = []refSrc{}
	for _, s := range d.Srcs {
		e.Inputs.Srcs = append(e.Inputs.Srcs, refSrc{s.Path, s.TreeHash})
	}
	b, err := CanonicalJSON(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// randomString mixes what JSON escapes (quotes, backslashes, control
// characters, U+2028/9, invalid UTF-8) with plain text.
func randomString(r *rand.Rand) string {
	pieces := []string{"a", "Z", "/store/", " ", "plain ascii, sixteen+", "~}|{`_^]", "\"", "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x01", "\x1f",
		"\x7f", "<", ">", "&", "é", "€", "\u2028", "\u2029", "\U0001F600", "\xff", "\xc3", "\xe2\x80", "\ufffd"}
	var b []byte
	for range r.IntN(12) {
		b = append(b, pieces[r.IntN(len(pieces))]...)
	}
	return string(b)
}

// TestEncodingMatchesEncodingJSON: the hand-written encoding gives the
// bytes encoding/json gives, for every kind of string and shape.
func TestEncodingMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	in := &Derivation{Name: "in", Outputs: []string{"out", "dev"}, id: hex.EncodeToString(make([]byte, 32))}
	for i := range 5000 {
		d := &Derivation{Name: randomString(r), Version: randomString(r), System: "x86_64-linux", Store: "/store",
			Builder: randomString(r), Outputs: []string{"out"}}
		for range r.IntN(3) {
			d.Args = append(d.Args, randomString(r))
		}
		if r.IntN(4) > 0 {
			env := map[string]string{}
			for range r.IntN(5) {
				env[randomString(r)] = randomString(r)
			}
			d.Env = EnvFromMap(env)
		}
		if r.IntN(2) == 0 {
			d.Drvs = []*Derivation{in}
			d.Srcs = []*Source{{Path: "/store/aa/bb/x-" + randomString(r), TreeHash: "00ff"}}
		}
		if r.IntN(3) == 0 {
			d.Fixed = &Fixed{Algo: "sha256", Hash: randomString(r), Unpack: r.IntN(2) == 0}
		}
		got, want := d.Encoding(), referenceEncoding(t, d)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %q\nwant %q", i, got, want)
		}
	}
	for s := range 0x110000 {
		if s >= 0xd800 && s < 0xe000 {
			continue
		}
		str := string(rune(s))
		got := appendJSONString(nil, str)
		want, err := CanonicalJSON(str)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("rune %U: got %q, want %q", s, got, want)
		}
	}
	for b := range 256 {
		str := string([]byte{byte(b), 'x'})
		if !utf8.ValidString(str) || b < 0x80 {
			got := appendJSONString(nil, str)
			want, _ := CanonicalJSON(str)
			if !bytes.Equal(got, want) {
				t.Fatalf("byte %#x: got %q, want %q", b, got, want)
			}
		}
	}
}

// TestIdentityIsHashOfEncoding: the identity is BLAKE3 over the prefix
// and the encoding, whichever way the encoding was built.
func TestIdentityIsHashOfEncoding(t *testing.T) {
	d := &Derivation{Name: "x", Version: "1", System: "x86_64-linux", Store: "/store", Builder: "/bin/sh",
		Env: EnvFromMap(map[string]string{"b": "2", "a": "1"}), Outputs: []string{"out", "lib"}}
	d.seal(d.FullName())
	sum := treehash.Sum([]byte("nexis-drv-1\x00"), referenceEncoding(t, d))
	if d.ID() != hex.EncodeToString(sum[:]) {
		t.Fatalf("id %s is not the hash of the documented encoding", d.ID())
	}
	if p, ok := d.OutputPath("lib"); !ok || p == d.Out() {
		t.Fatalf("output lib: %q %v", p, ok)
	}
	// Of every size a Stream hashes in one piece, around its chunks.
	r := rand.New(rand.NewPCG(15, 16))
	for n := 0; n < streamAbove+3000; n += 1 + r.IntN(700) {
		d := &Derivation{Name: "x", System: "x86_64-linux", Store: "/store", Builder: "/bin/sh",
			Env: []EnvVar{{"v", strings.Repeat("a\"", n/3)}}, Outputs: []string{"out"}}
		id, _ := d.identity(nil)
		if want := treehash.Sum([]byte("nexis-drv-1\x00"), referenceEncoding(t, d)); id != want {
			t.Fatalf("%d bytes: identity %x, want %x", len(d.Encoding()), id, want)
		}
	}
}

// TestSortEnv: an env given out of order, or with a name twice, is held
// as a map would hold it: sorted, the last value of a name kept.
func TestSortEnv(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		var vars []EnvVar
		m := map[string]string{}
		for range r.IntN(8) {
			v := EnvVar{string(rune('a' + r.IntN(5))), randomString(r)}
			vars = append(vars, v)
			m[v.Name] = v.Value
		}
		got, want := sortEnv(vars), EnvFromMap(m)
		if !slices.Equal(got, want) {
			t.Fatalf("sortEnv: got %q, want %q", got, want)
		}
	}
}

// TestSpecial8: the 8-bytes-at-a-time test finds the first byte a look
// at each byte finds, for every byte value at every position and for
// random blocks.
func TestSpecial8(t *testing.T) {
	first := func(b []byte) int {
		for i, c := range b {
			if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
				return i
			}
		}
		return 8
	}
	got := func(b []byte) int {
		m := special8(binary.LittleEndian.Uint64(b))
		return bits.TrailingZeros64(m) >> 3
	}
	for pos := range 8 {
		for c := range 256 {
			for _, fill := range []byte{'a', 0x20, 0x21, 0x23, 0x7f, 0x5b, 0x5d} {
				b := bytes.Repeat([]byte{fill}, 8)
				b[pos] = byte(c)
				if g, w := got(b), first(b); g != w {
					t.Fatalf("%q: special8 finds %d, want %d", b, g, w)
				}
			}
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 200000 {
		var b [8]byte
		for i := range b {
			b[i] = byte(r.IntN(256))
			if r.IntN(2) == 0 {
				b[i] = byte(0x20 + r.IntN(0x60))
			}
		}
		if g, w := got(b[:]), first(b[:]); g != w {
			t.Fatalf("%q: special8 finds %d, want %d", b, g, w)
		}
	}
}

// TestLongStringsMatchEncodingJSON: long strings, with what JSON escapes
// dense or sparse at every offset of a word (a manifest's quotes), are
// encoded as encoding/json encodes them.
func TestLongStringsMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 3000 {
		var b []byte
		for range r.IntN(40) {
			b = append(b, randomString(r)...)
			b = append(b, bytes.Repeat([]byte("x"), r.IntN(20))...)
		}
		got := appendJSONString(nil, string(b))
		want, _ := CanonicalJSON(string(b))
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d: %q:\n got %q\nwant %q", i, b, got, want)
		}
	}
}

// TestLargeEncodingStreamed: a derivation whose encoding identity hashes
// as it is written (a system's manifest) has the identity of the bytes
// Encoding builds whole, cut wherever the pieces fall (runes, invalid
// bytes and escapes astride the cuts), and is found the same as its
// encoding and as nothing else.
func TestLargeEncodingStreamed(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	in := &Derivation{Name: "in", Outputs: []string{"out"}, id: hex.EncodeToString(make([]byte, 32))}
	streamed := 0
	astride := []string{"€", "\u2028", "\U0001F600", "\"", "\\", "\n", "\x01", "\xff", "\xe2\x80", strings.Repeat("\x80", 9)}
	for i := range 60 {
		var b []byte
		for len(b) < spill*(2+r.IntN(4)) {
			b = append(b, randomString(r)...)
			b = append(b, bytes.Repeat([]byte("/store/x"), r.IntN(400))...)
		}
		// Something astride where a cut may fall.
		at := spill - r.IntN(8)
		if at < len(b) {
			b = append(b[:at:at], append([]byte(astride[r.IntN(len(astride))]), b[at:]...)...)
		}
		d := &Derivation{Name: "system", System: "x86_64-linux", Store: "/store", Builder: "builtin:system",
			Env: []EnvVar{{"manifest", string(b)}, {"packages", randomString(r)}}, Drvs: []*Derivation{in}, Outputs: []string{"out"}}
		if r.IntN(2) == 0 {
			d.Env[1].Value = strings.Repeat("/store/aa/bb/h-p ", r.IntN(20000))
		}
		if d.encodedSize() <= streamAbove {
			continue
		}
		streamed++
		enc := d.Encoding()
		id, same := d.identity(enc)
		if want := treehash.Sum(drvPrefix, enc); id != want || !same {
			t.Fatalf("case %d (%d bytes): streamed identity %x same %v, want %x", i, len(enc), id, same, want)
		}
		for _, other := range [][]byte{nil, enc[:len(enc)-1], append(slices.Clip(enc), ' '), append(enc[:spill:spill], enc[spill+1:]...)} {
			if _, same := d.identity(other); same {
				t.Fatalf("case %d: the encoding is found the same as %d other bytes", i, len(other))
			}
		}
	}
	if streamed < 30 {
		t.Fatalf("%d of 60 cases streamed", streamed)
	}
}

// TestSortDrvs: the inputs sorted by a key of their ids' first bytes are
// in the order of their ids, for ids alike far into them or short.
func TestSortDrvs(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for range 300 {
		drvs := make([]*Derivation, r.IntN(300))
		for i := range drvs {
			id := []byte(hex.EncodeToString(make([]byte, 32)))
			for j := range id[:r.IntN(len(id))] {
				if r.IntN(3) == 0 {
					id[j] = "0123456789abcdef"[r.IntN(16)]
				}
			}
			drvs[i] = &Derivation{id: string(id[:len(id)-r.IntN(2)*r.IntN(len(id))])}
		}
		want := slices.Clone(drvs)
		slices.SortFunc(want, cmpDrv)
		sortDrvs(drvs)
		for i := range drvs {
			if drvs[i].id != want[i].id {
				t.Fatalf("%d of %d: %q, want %q", i, len(drvs), drvs[i].id, want[i].id)
			}
		}
	}
}

// TestNextHashIsScanHashes: scanning from the dashes finds the hashes
// storepath.ScanHashes finds from the slashes, in order, in strings of
// paths, near-paths and their pieces run together.
func TestNextHashIsScanHashes(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	hash := func() string {
		const alphabet = "0123456789abcdfghijklmnpqrsvwxyz"
		b := make([]byte, storepath.HashLen)
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		return string(b)
	}
	found := 0
	for range 20000 {
		pieces := []string{"/", "-", "//", "--", "/store/", " ", "a", "e", "é", "\x00", "/" + hash(), hash(), hash() + "-",
			"/" + hash() + "-", "/store/aa/bb/" + hash() + "-name", "/" + hash()[:storepath.HashLen-1] + "-", "/" + hash() + "e-"}
		var b strings.Builder
		for range r.IntN(12) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		var want, got []string
		storepath.ScanHashes([]byte(s), func(h string) { want = append(want, h) })
		for i := 0; ; {
			h, next := nextHash(s, i)
			if next < 0 {
				break
			}
			got, i = append(got, h), next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%q: found %q, want %q", s, got, want)
		}
		found += len(got)
	}
	if found < 10000 {
		t.Fatalf("%d hashes found in all: the strings test little", found)
	}
}

// TestPlainHTTPIsWhatURLParseTakes: a URL plainHTTP passes without
// url.Parse is one url.Parse takes, as http or https, for URLs run
// together from pieces that are and are not plain.
func TestPlainHTTPIsWhatURLParseTakes(t *testing.T) {
	r := rand.New(rand.NewPCG(15, 16))
	pieces := []string{"http://", "https://", "HTTP://", "file://", "ftp://", "example.org", "a-b.c", "/", "/x.tar.gz", "-", ".", "~", "+",
		":", ":80", ":x", "%", "%zz", "%41", "?", "#", "@", " ", "\x00", "\x7f", "é", "[", "]", "a", "Z", "9", "_"}
	plain := 0
	for range 200000 {
		var b strings.Builder
		b.WriteString(pieces[r.IntN(4)]) // mostly a scheme first
		for range r.IntN(6) {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		if !plainHTTP(s) {
			continue
		}
		plain++
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
			t.Fatalf("plainHTTP(%q), but url.Parse gives %v, %v", s, u, err)
		}
	}
	if plain < 1000 {
		t.Fatalf("only %d plain URLs made: the test tests little", plain)
	}
}
