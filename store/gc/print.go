package gc

import (
	"fmt"
	"io"
	"time"

	"github.com/nexisos/nexis/hint"
	"github.com/nexisos/nexis/store"
)

// Print writes what `nexis gc` says of a collection: the plan or the
// result on out, dropped roots and what was kept on diag. maxFreed and
// olderThan are the limits as the user wrote them ("" when not given).
func (st *Stats) Print(out, diag io.Writer, maxFreed, olderThan string) {
	for _, d := range st.DroppedRoots {
		verb := "dropped"
		if st.DryRun {
			verb = "would drop"
		}
		fmt.Fprintf(diag, "nexis: %s root %s (%s): %s\n", verb, d.Name, d.Path, d.Reason)
	}
	if st.DryRun {
		for _, pp := range st.Plan.Paths {
			fmt.Fprintf(out, "%s\t%s\n", store.HumanSize(pp.Freed), pp.Logical)
		}
		fmt.Fprintf(out, "would delete %d paths, freeing %s\n", st.Paths, store.HumanSize(st.Bytes))
	} else {
		fmt.Fprintf(out, "deleted %d paths, freed %s in %s\n", st.Paths, store.HumanSize(st.Bytes), seconds(st.Seconds))
		if t := st.Trash; t != nil && t.Deleted != nil {
			fmt.Fprintf(out, "emptied the trash (%d entries) in %s\n", t.Deleted.Entries, seconds(t.Deleted.Seconds))
		} else if st.Moved > 0 {
			fmt.Fprintln(diag, "nexis: the trash is being emptied in the background")
		}
	}
	if st.Limited {
		fmt.Fprintf(diag, "nexis: stopped at --max-freed %s; more garbage is left\n", maxFreed)
	}
	if st.KeptTemp > 0 {
		fmt.Fprintf(diag, "nexis: kept %d unreferenced paths that running nexis processes use\n", st.KeptTemp)
	}
	if st.KeptYoung > 0 {
		fmt.Fprintf(diag, "nexis: kept %d unreferenced paths younger than %s\n", st.KeptYoung, olderThan)
	}
}

// Print writes what `nexis gc --full` says of a mark and sweep.
func (r *FullReport) Print(out io.Writer) {
	fmt.Fprintf(out, "%d registered paths, %d live, %d unreachable (%d held only by reference cycles)\n", r.Registered, r.Live, r.Unreachable, r.InCycles)
	for _, e := range r.RefcountErrors {
		fmt.Fprintf(out, "count error: %s\n", e)
	}
	for _, u := range r.Unregistered {
		fmt.Fprintf(out, "unregistered: %s\n", u)
	}
	for _, x := range r.Repaired {
		fmt.Fprintf(out, "repaired: %s\n", x)
	}
	if c := r.Collected; c != nil {
		fmt.Fprintf(out, "deleted %d paths, freed %s in %s\n", c.Paths, store.HumanSize(c.Bytes), seconds(r.Seconds))
	}
}

// NeedsRepair tells whether the sweep found counts or directories that
// only a repair fixes.
func (r *FullReport) NeedsRepair() bool {
	return len(r.RefcountErrors) > 0 || len(r.Unregistered) > 0
}

// seconds is a duration as reports print it: to the millisecond.
func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}

// Print writes the chain from the root down to the path, or why the
// path is dead.
func (l *Liveness) Print(w io.Writer) {
	switch {
	case l.Alive:
		fmt.Fprintf(w, "%s is alive: root %s\n", l.Path, l.Root)
		for i, c := range l.Chain {
			if i == 0 {
				fmt.Fprintf(w, "  %s\n", c)
			} else {
				fmt.Fprintf(w, "  -> %s\n", c)
			}
		}
	case l.Cycle:
		fmt.Fprintf(w, "%s is dead: no root reaches it; only a reference cycle holds it, which `%s` collects\n", l.Path, hint.Command("gc", "--full"))
	default:
		fmt.Fprintf(w, "%s is dead: no root reaches it; the next `%s` deletes it\n", l.Path, hint.Command("gc"))
	}
}
