package activate

import (
	"fmt"
	"io"
	"strings"

	"github.com/nexisos/nexis/hint"
)

// Print writes the whole plan, one change a line (dry-activate).
func (p *Plan) Print(w io.Writer) {
	fmt.Fprintf(w, "would activate %s", p.NewSystem)
	if p.Generation != 0 {
		fmt.Fprintf(w, " (generation %d)", p.Generation)
	}
	fmt.Fprintln(w)
	if p.Empty() {
		fmt.Fprintln(w, "nothing would change: the root already is this generation")
	}
	line := func(sign, what string) { fmt.Fprintf(w, "  %s %s\n", sign, what) }
	if p.EtcStaticChanges {
		line("~", "/etc/static -> "+p.NewSystem+"/etc")
	}
	for _, r := range p.EtcChanged {
		line("~", "/etc/"+r+" (new content through /etc/static)")
	}
	for _, r := range p.EtcAdd {
		line("+", "/etc/"+r+" -> /etc/static/"+r)
	}
	for _, r := range p.EtcCopy {
		line("+", "/etc/"+r+" (copy, mode "+p.etcWant[r].mode.Perm().String()+")")
	}
	if p.Localtime != "" {
		line("~", "/etc/localtime -> "+p.Localtime)
	}
	for _, r := range p.EtcRemove {
		line("-", "/etc/"+r)
	}
	for _, f := range p.AccountFiles {
		line("~", "/etc/"+f)
	}
	a := p.Accounts
	for _, u := range a.AddUsers {
		line("+", "user "+u)
	}
	for _, u := range a.ChangeUsers {
		line("~", "user "+u)
	}
	for _, u := range a.LockUsers {
		line("-", "user "+u+" (locked, home kept)")
	}
	for _, g := range a.AddGroups {
		line("+", "group "+g)
	}
	for _, g := range a.RemoveGroups {
		line("-", "group "+g)
	}
	for _, f := range p.Mounts {
		line("+", "mount "+f.Spec+" on "+f.Mountpoint+" ("+f.Type+", if that hides nothing)")
	}
	for _, u := range p.Homes {
		line("+", "home "+a.Homes[u]+" of "+u)
	}
	for _, d := range p.RuntimeDirs {
		line("+", "directory "+d)
	}
	for _, f := range p.Files {
		line("+", f.Path+" ("+f.Type+", "+f.Why+")")
	}
	for _, f := range p.FilesRemove {
		line("-", f)
	}
	for _, s := range p.ServicesStart {
		line("+", "service "+s+" (started)")
	}
	for _, s := range p.ServicesChanged {
		what := "file changed"
		if contains(p.ServicesRestart, s) {
			what = "restarted"
		}
		line("~", "service "+s+" ("+what+")")
	}
	for _, s := range p.ServicesStop {
		line("-", "service "+s+" (stopped)")
	}
	for _, op := range append(append([]ServiceOp(nil), p.ServicesBefore...), p.ServicesAfter...) {
		line("$", "dinitctl "+op.Verb+" "+op.Name)
	}
	for _, c := range p.Conflicts {
		line("!", c.Path+": "+c.Reason+" (from "+c.Origin+"): left alone")
	}
}

// Summary is the short account of what an activation changed.
func (p *Plan) Summary() string {
	var parts []string
	nAdd := len(p.EtcAdd) + len(p.EtcCopy)
	if n := nAdd + len(p.EtcRemove) + len(p.EtcChanged); n > 0 {
		parts = append(parts, fmt.Sprintf("/etc: %d added, %d changed, %d removed", nAdd, len(p.EtcChanged), len(p.EtcRemove)))
	}
	a := p.Accounts
	var acc []string
	for _, x := range []struct {
		sign string
		l    []string
	}{{"+", a.AddUsers}, {"~", a.ChangeUsers}, {"locked ", a.LockUsers}} {
		for _, u := range x.l {
			acc = append(acc, x.sign+u)
		}
	}
	if len(acc) > 0 {
		parts = append(parts, "users: "+strings.Join(acc, " "))
	}
	if n := len(p.Files) + len(p.FilesRemove); n > 0 {
		parts = append(parts, fmt.Sprintf("files: %d placed, %d removed", len(p.Files), len(p.FilesRemove)))
	}
	var svc []string
	for _, x := range []struct {
		verb string
		l    []string
	}{{"start", p.ServicesStart}, {"restart", p.ServicesRestart}, {"stop", p.ServicesStop}} {
		if len(x.l) > 0 {
			svc = append(svc, x.verb+" "+strings.Join(x.l, ","))
		}
	}
	if len(svc) > 0 {
		parts = append(parts, "services: "+strings.Join(svc, "; "))
	}
	if len(p.Conflicts) > 0 {
		var cs []string
		for _, c := range p.Conflicts {
			cs = append(cs, c.Path)
		}
		parts = append(parts, fmt.Sprintf("%d left alone (see the warnings): %s", len(p.Conflicts), strings.Join(cs, " ")))
	}
	if len(parts) == 0 {
		return "no changes"
	}
	return strings.Join(parts, "; ")
}

// ReportConflicts writes one warning per entry left alone.
func (p *Plan) ReportConflicts(w io.Writer) {
	for _, c := range p.Conflicts {
		fmt.Fprintf(w, "nexis: warning: %s %s (from %s): left alone\n", c.Path, c.Reason, c.Origin)
	}
}

// Print writes the short summary every command that changes the root
// ends with: the generation, what changed since prev (nil: not shown),
// what the activation did, retention and the boot menu on out; the
// entries left alone on diag.
func (r *Result) Print(out, diag io.Writer, t *Target, prev *System) {
	g := r.Generation
	switch {
	case g.Number == 0:
		fmt.Fprintf(out, "activated %s (not a generation)\n", r.Plan.NewSystem)
	case r.New:
		fmt.Fprintf(out, "generation %d (new): %s\n", g.Number, t.Store.Logical(g.Path))
	default:
		fmt.Fprintf(out, "generation %d: %s\n", g.Number, t.Store.Logical(g.Path))
	}
	if prev != nil && r.Plan != nil && prev.Logical != r.Plan.NewSystem {
		if sys, err := t.LoadSystem(r.Plan.System.Path); err == nil {
			if d, err := t.DiffSystems(prev, sys, false); err == nil {
				fmt.Fprintf(out, "  %s\n", d.Short())
			}
		}
	}
	if r.Plan != nil {
		fmt.Fprintf(out, "  %s\n", r.Plan.Summary())
		r.Plan.ReportConflicts(diag)
	}
	if x := r.Retention; x != nil && len(x.Drop) > 0 {
		fmt.Fprintf(out, "  retention: dropped generation(s) %v, kept %v\n", x.Drop, x.Keep)
		if r.Cleaned != "" {
			fmt.Fprintf(out, "  auto_cleanup: %s\n", r.Cleaned)
		}
	}
	r.Boot.Print(out)
}

// Print writes the boot menu's line of a summary; nothing when the
// menu was not written.
func (b *BootReport) Print(w io.Writer) {
	if b != nil && !b.Skipped {
		fmt.Fprintf(w, "  boot menu: %d entries, default generation %d\n", len(b.Entries), b.Default)
	}
}

// Generations are the generations as listed, oldest first.
type Generations []GenerationInfo

// Print writes one generation a line, the current one marked.
func (gs Generations) Print(w io.Writer) {
	if len(gs) == 0 {
		fmt.Fprintf(w, "no generations yet: %s makes the first\n", hint.Command("switch"))
		return
	}
	for _, g := range gs {
		var flags []string
		if g.Current {
			flags = append(flags, "current")
		}
		if g.Active {
			flags = append(flags, "active")
		}
		if g.Pinned {
			flags = append(flags, "pinned")
		}
		mark := " "
		if g.Current {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %4d  %s  %s", mark, g.Number, g.Time.Local().Format("2006-01-02 15:04:05"), g.Path)
		if len(flags) > 0 {
			fmt.Fprintf(w, "  (%s)", strings.Join(flags, ", "))
		}
		fmt.Fprintln(w)
	}
}

// Print writes which generations went, and the boot menu's line.
func (r *Removal) Print(w io.Writer) {
	if len(r.Deleted) == 0 {
		fmt.Fprintln(w, "no generation to delete")
		return
	}
	if r.DryRun {
		fmt.Fprintf(w, "would delete generation(s) %v (dry run: nothing changed)\n", r.Deleted)
		return
	}
	fmt.Fprintf(w, "deleted generation(s) %v; %s frees what only they used\n", r.Deleted, hint.Command("gc"))
	r.Boot.Print(w)
}

// Drift is how the root differs from the current generation
// (CheckCurrent).
type Drift struct {
	Generation uint64   `json:"generation"`
	Problems   []string `json:"problems"`
}

// Print writes each difference on out and their count on diag, or that
// there is none.
func (d *Drift) Print(out, diag io.Writer) {
	if len(d.Problems) == 0 {
		fmt.Fprintf(out, "the root matches generation %d\n", d.Generation)
		return
	}
	for _, p := range d.Problems {
		fmt.Fprintf(out, "%s\n", p)
	}
	fmt.Fprintf(diag, "nexis: the root differs from generation %d in %d way(s): %s repairs it\n", d.Generation, len(d.Problems), hint.Command("activate"))
}
