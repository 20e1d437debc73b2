package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/realise"
)

// Preview is what activating a system on a target would change, with
// nothing changed (nexis dry-activate).
type Preview struct {
	Plan *activate.Plan
	t    *activate.Target
	sys  *activate.System
}

// NewPreview realises drv in t's store as a switch would (nothing is
// planned from an unbuilt or half-built system), under the context ctx
// gives, and plans its activation.
func NewPreview(t *activate.Target, drv *builtins.Derivation, b Builder, o activate.Options, ctx func() (context.Context, context.CancelFunc)) (*Preview, error) {
	c, stop := ctx()
	p, err := RealiseOn(c, t, drv, b)
	stop()
	if errors.Is(err, realise.ErrFailed) {
		return nil, fmt.Errorf("the system was not built, nothing was activated: %w", err)
	}
	if err != nil {
		return nil, err
	}
	sys, err := t.LoadSystem(p)
	if err != nil {
		return nil, err
	}
	plan, err := t.Plan(sys, o)
	if err != nil {
		return nil, err
	}
	return &Preview{Plan: plan, t: t, sys: sys}, nil
}

// GenerationPreview plans switching t to its generation n (a rollback,
// switch --generation), changing nothing.
func GenerationPreview(t *activate.Target, n uint64, o activate.Options) (*Preview, error) {
	g, err := t.Generation(n)
	if err != nil {
		return nil, err
	}
	sys, err := t.LoadSystem(g.Path)
	if err != nil {
		return nil, fmt.Errorf("generation %d: %w", n, err)
	}
	plan, err := t.Plan(sys, o)
	if err != nil {
		return nil, err
	}
	return &Preview{Plan: plan, t: t, sys: sys}, nil
}

// Print writes what changes from the active system, in short, then the
// whole plan.
func (p *Preview) Print(w io.Writer) {
	if prev := p.t.ActiveSystem(); prev != nil && prev.Logical != p.sys.Logical {
		if d, err := p.t.DiffSystems(prev, p.sys, false); err == nil {
			io.WriteString(w, d.Short()+"\n")
		}
	}
	p.Plan.Print(w)
}
