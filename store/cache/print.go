package cache

import (
	"fmt"
	"io"

	"github.com/nexisos/nexis/store"
)

// Print writes how much of the closure was copied to to, on one line.
func (s *CopyStats) Print(w io.Writer, to string) {
	fmt.Fprintf(w, "nexis: copied %d of %d path(s) to %s (%s); the rest were there\n", s.Sent, s.Closure, to, store.HumanSize(s.Bytes))
}

// Print writes how many paths were imported, on one line.
func (s *ImportStats) Print(w io.Writer) {
	fmt.Fprintf(w, "nexis: imported %d path(s) (%d already valid), %s\n", s.Registered, s.Items-s.Registered, store.HumanSize(s.Bytes))
}
