package store

import (
	"fmt"
	"io"
)

// Print writes what `nexis store verify` says of a report: the findings
// and the plan of repairs on out, the counts on diag.
func (r *VerifyReport) Print(out, diag io.Writer) {
	for _, e := range r.Errors {
		fmt.Fprintln(out, "error:", e)
	}
	for _, g := range r.Garbage {
		fmt.Fprintln(out, "garbage:", g)
	}
	for _, w := range r.Warnings {
		fmt.Fprintln(out, "warning:", w)
	}
	if p := r.Plan; !p.Empty() {
		p.Print(out)
	}
	fmt.Fprintf(diag, "verified %d paths: %d errors, %d garbage\n", r.Paths, len(r.Errors), len(r.Garbage))
}

// Print writes the plan, one repair a line, as --repair would do it.
func (p *RepairPlan) Print(w io.Writer) {
	fmt.Fprintln(w, "plan (--repair does this):")
	if p.RewriteCounters {
		fmt.Fprintln(w, "  rewrite the counters from edges, roots and manifests")
	}
	if n := len(p.Trash); n > 0 {
		fmt.Fprintf(w, "  move %d unregistered directories to the trash\n", n)
	}
	if n := len(p.RemovePool); n > 0 {
		fmt.Fprintf(w, "  remove %d unused pool entries\n", n)
	}
	if p.RestorePool > 0 {
		fmt.Fprintf(w, "  restore %d pool entries\n", p.RestorePool)
	}
	for _, d := range p.Restore {
		fmt.Fprintf(w, "  restore %s (rebuild or substitute)\n", d.StorePath)
	}
}
