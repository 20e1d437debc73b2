package sandbox

// The init itself is init.c: a constructor that takes over any process
// started with argv[0] = InitArg0 before the Go runtime starts. Linking
// this package (with cgo) puts it into every program that can start
// sandboxes, nexis and its test binaries included.

// #cgo CFLAGS: -O2 -Wall
import "C"

import (
	"fmt"
	"os"
)

// Main is the whole of the standalone init program (nexis-sandbox-init).
// Started as the init, it never gets here: the constructor in init.c has
// executed the builder or exited.
func Main() {
	fmt.Fprintln(os.Stderr, "nexis-sandbox-init: started without a spec; this program is run by nexis, not by hand")
	os.Exit(setupFailed)
}
