package store

import (
	"fmt"
	"io"

	"github.com/nexisos/nexis/hint"
)

// Print writes what `nexis store recover` says of a recovery of the
// store logicalDir: what was done on out, the outcome on diag.
func (r *RecoverReport) Print(out, diag io.Writer, logicalDir string) {
	if r.Intact {
		fmt.Fprintf(diag, "the metadata of %s is intact: nothing to recover (%s checks it)\n", logicalDir, hint.Command("store verify"))
		return
	}
	if r.KeptDatabase != "" {
		fmt.Fprintf(out, "kept the unusable database as %s\n", r.KeptDatabase)
	}
	if r.Salvaged {
		fmt.Fprintln(out, "restored the database from its own files (its CURRENT file was missing)")
	} else {
		fmt.Fprintf(out, "registered %d paths found on disk (%d content-addressed, checked against their address)\n", r.Registered, r.ContentAddressed)
	}
	if len(r.Generations) > 0 {
		fmt.Fprintf(out, "re-rooted generations %v from the profile links\n", r.Generations)
	}
	if r.RecoveredRoots > 0 {
		fmt.Fprintf(out, "kept %d unreferenced paths under roots %s<hash>-<name> (drop them with %s)\n", r.RecoveredRoots, RecoveredRootPrefix, hint.Command("store remove-root", "--prefix", RecoveredRootPrefix))
	}
	for _, u := range r.Unexplained {
		fmt.Fprintf(out, "unexplained: %s: %s\n", u.Path, u.Why)
	}
	fmt.Fprintf(diag, "recovered %s: %d unexplained, left in place; run %s\n", logicalDir, len(r.Unexplained), hint.Command("store verify", "--check-contents"))
}
