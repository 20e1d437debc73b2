package progress

import (
	"io"
	"os"
	"testing"
)

// Off a terminal there is no bar, and what reports to it reports
// nothing: the packages take a nil function as "no progress".
func TestNoTerminalNoBar(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	b := New(w, "copying")
	if b != nil {
		t.Fatalf("New on a pipe = %v, want nil", b)
	}
	if b.Count() != nil || b.Transfer() != nil || b.Phases() != nil {
		t.Error("a nil bar's adapters are not nil")
	}
	b.End()
}

// A finished count stays on its line; an unfinished one is cleared by
// End.
func TestDrawAndEnd(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := &Bar{w: w, what: "copying"}
	b.Transfer()(1, 2, 2048)
	b.End()
	b.Count()(2, 2)
	w.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	want := "\r\033[Kcopying    [###############...............] 1/2, 2.0 KiB" +
		"\r\033[K" +
		"\r\033[Kcopying    [##############################] 2/2\n"
	if string(out) != want {
		t.Errorf("drew %q\nwant %q", out, want)
	}
}
