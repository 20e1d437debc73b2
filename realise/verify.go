package realise

import (
	"context"
	"fmt"
	"io"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/store"
)

// Verified is a store verification and, when it was repaired, what the
// repair did and the verification that followed (`nexis store verify
// --json` prints it).
type Verified struct {
	*store.VerifyReport
	Repair *RepairReport `json:"repair,omitempty"`
	// After is the verification that follows a repair.
	After *store.VerifyReport `json:"after,omitempty"`
}

// Final is the last verification: the one after the repair, if any.
func (v *Verified) Final() *store.VerifyReport {
	if v.After != nil {
		return v.After
	}
	return v.VerifyReport
}

// RepairSources are what restores damaged paths: the machine, its
// options (the config's caches) and the derivations whose closure may
// rebuild them.
type RepairSources struct {
	Machine *Machine
	Roots   []*builtins.Derivation
	Options Options
}

// VerifyOptions tune VerifyStore.
type VerifyOptions struct {
	Verify store.VerifyOptions
	// Repair executes the plan of the verification.
	Repair bool
	// Sources are asked for when a repair has a plan to execute (Repair
	// set and the plan not empty).
	Sources func(*store.RepairPlan) (RepairSources, error)
	// Context gives the repair's context, made when a repair starts (the
	// command's interrupt handling), with the function that releases it.
	Context func() (context.Context, context.CancelFunc)
	// Out and Diag, when set, receive each report as it comes, before
	// the next step runs.
	Out, Diag io.Writer
}

// VerifyStore verifies s; with opts.Repair it executes the plan the
// verification made (the store's part and the restoration of damaged
// paths), then verifies again. The repair report is returned with the
// error of a failed repair.
func VerifyStore(s *store.Store, opts VerifyOptions) (*Verified, error) {
	rep, err := s.Verify(opts.Verify)
	if err != nil {
		return nil, err
	}
	v := &Verified{VerifyReport: rep}
	if opts.Out != nil {
		rep.Print(opts.Out, opts.Diag)
	}
	if !opts.Repair || rep.Plan.Empty() {
		return v, nil
	}
	src, err := opts.Sources(rep.Plan)
	if err != nil {
		return v, err
	}
	ctx, stop := opts.Context()
	defer stop()
	rr, err := src.Machine.Repair(ctx, s, rep.Plan, src.Roots, src.Options)
	v.Repair = rr
	if opts.Out != nil && rr != nil {
		rr.Print(opts.Out)
	}
	if err != nil {
		return v, err
	}
	if v.After, err = s.Verify(opts.Verify); err != nil {
		return v, err
	}
	if opts.Diag != nil {
		fmt.Fprintf(opts.Diag, "after the repair: %d errors, %d garbage\n", len(v.After.Errors), len(v.After.Garbage))
	}
	return v, nil
}

// Print writes what a repair did, one path a line.
func (r *RepairReport) Print(w io.Writer) {
	for _, x := range r.Store {
		fmt.Fprintln(w, "repaired:", x)
	}
	for _, x := range r.Restored {
		fmt.Fprintf(w, "restored: %s: %s\n", x.Path, x.How)
	}
	for _, x := range r.NotRestored {
		fmt.Fprintf(w, "not restored: %s: %s\n", x.Path, x.How)
	}
}
