package storepath

import (
	"strings"
	"testing"

	"lukechampine.com/blake3"
)

func TestEncodeHashLengthAndAlphabet(t *testing.T) {
	sum := blake3.Sum256([]byte("hello"))
	h := EncodeHash(sum[:])
	if !IsHash(h) {
		t.Fatalf("EncodeHash gave %q, not a valid hash", h)
	}
	zero := EncodeHash(make([]byte, 20))
	if zero != strings.Repeat("0", 32) {
		t.Fatalf("zero digest encodes to %q", zero)
	}
	ones := make([]byte, 20)
	for i := range ones {
		ones[i] = 0xff
	}
	if got := EncodeHash(ones); got != strings.Repeat("z", 32) {
		t.Fatalf("all-ones digest encodes to %q", got)
	}
	one := make([]byte, 20)
	one[19] = 1
	if got := EncodeHash(one); got != strings.Repeat("0", 31)+"1" {
		t.Fatalf("digest ...01 encodes to %q", got)
	}
}

func TestJoinParseRoundTrip(t *testing.T) {
	sum := blake3.Sum256([]byte("x"))
	h := EncodeHash(sum[:])
	p := Join("/store", h, "vim-9.1")
	if !strings.HasPrefix(p, "/store/"+h[:2]+"/"+h[2:4]+"/"+h+"-vim-9.1") {
		t.Fatalf("Join = %s", p)
	}
	got, rest, err := Parse("/store", p+"/bin/vim")
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != h || got.Name != "vim-9.1" || rest != "/bin/vim" {
		t.Fatalf("Parse = %+v %q", got, rest)
	}
	for _, bad := range []string{"/store/ab/cd", "/nix/store/x", "/store/aa/bb/" + h + "-vim", "/store/" + h[:2] + "/" + h[2:4] + "/" + h + "-.hidden"} {
		if _, _, err := Parse("/store", bad); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
}

func TestScanHashes(t *testing.T) {
	a := EncodeHash(make([]byte, 20))
	sum := blake3.Sum256([]byte("b"))
	b := EncodeHash(sum[:])
	text := "PATH=/store/00/00/" + a + "-foo/bin:/store/" + b[:2] + "/" + b[2:4] + "/" + b + "-bar/lib " + b + "-nosl"
	var got []string
	ScanHashes([]byte(text), func(h string) { got = append(got, h) })
	if len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("ScanHashes found %v", got)
	}
}

func TestValidName(t *testing.T) {
	for _, ok := range []string{"vim-9.1", "libpng-1.6.40", "a+b_c=d?"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".x", "a b", "a/b", strings.Repeat("x", 201)} {
		if ValidName(bad) == nil {
			t.Errorf("ValidName(%q) accepted", bad)
		}
	}
}
