package activate

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"

	"github.com/nexisos/nexis/manifest"
)

// dinit services: their files are /etc entries; here is what happens to
// the running services (planned, run through dinitctl, checked).

// ServiceOp is one dinitctl call.
type ServiceOp struct {
	Verb string `json:"verb"` // stop, unload, reload, start
	Name string `json:"name"`
}

// planServices lists the services that start, stop, change and restart
// and, with opts.Live, the dinitctl calls before and after the files
// change.
func (p *Plan) planServices(st *State, opts Options) {
	m := p.System.Manifest
	newSvc := map[string]manifest.Service{}
	for _, s := range m.Services {
		newSvc[s.Name] = s
	}
	boot := setOf(m.Boot)
	for _, n := range keys(st.Services) {
		if _, ok := newSvc[n]; !ok {
			p.ServicesStop = append(p.ServicesStop, n)
		}
	}
	for _, s := range m.Services {
		old, had := st.Services[s.Name]
		switch {
		case !had && boot[s.Name]:
			p.ServicesStart = append(p.ServicesStart, s.Name)
		case had && old != s.Source:
			p.ServicesChanged = append(p.ServicesChanged, s.Name)
			if boot[s.Name] {
				p.ServicesRestart = append(p.ServicesRestart, s.Name)
			}
		}
	}
	if !opts.Live {
		return
	}
	for _, n := range p.ServicesStop {
		p.ServicesBefore = append(p.ServicesBefore, ServiceOp{"stop", n}, ServiceOp{"unload", n})
	}
	for _, n := range p.ServicesChanged {
		p.ServicesBefore = append(p.ServicesBefore, ServiceOp{"stop", n})
		p.ServicesAfter = append(p.ServicesAfter, ServiceOp{"reload", n})
	}
	for _, n := range p.ServicesRestart {
		p.ServicesAfter = append(p.ServicesAfter, ServiceOp{"start", n})
	}
	for _, n := range p.ServicesStart {
		p.ServicesAfter = append(p.ServicesAfter, ServiceOp{"start", n})
	}
	if len(p.ServicesStop)+len(p.ServicesStart)+len(p.ServicesChanged) > 0 && len(m.Boot) > 0 {
		// boot's waits-for lines are the enablement set.
		p.ServicesAfter = append(p.ServicesAfter, ServiceOp{"reload", "boot"})
	}
}

// dinit runs each service operation through dinitctl, in order. A
// failure to start or stop one service is reported, not fatal: the
// generation's files are in place and `dinitctl` tells more.
func (t *Target) dinit(ops []ServiceOp, x Exec) error {
	if len(ops) == 0 {
		return nil
	}
	prog := x.Dinitctl
	if prog == "" {
		prog = "dinitctl"
	}
	bin, err := exec.LookPath(prog)
	if err != nil {
		return fmt.Errorf("controlling services: %w (install dinit, or activate without --live)", err)
	}
	for _, op := range ops {
		cmd := exec.Command(bin, op.Verb, op.Name)
		out, err := cmd.CombinedOutput()
		if len(out) > 0 {
			fmt.Fprintf(x.Out, "dinitctl %s %s: %s", op.Verb, op.Name, out)
		}
		if err != nil {
			fmt.Fprintf(x.Out, "nexis: warning: dinitctl %s %s: %v\n", op.Verb, op.Name, err)
		}
	}
	return nil
}

// checkServices reports how the services differ from the generation:
// each file in place with its content, boot waiting for exactly the
// enabled ones, the record.
func (t *Target) checkServices(m *manifest.Manifest, st *State) []string {
	var probs []string
	bad := func(f string, a ...any) { probs = append(probs, fmt.Sprintf(f, a...)) }
	for _, s := range m.Services {
		src, err := t.storeFile(s.Source)
		if err != nil {
			bad("service %s: %v", s.Name, err)
			continue
		}
		if same, err := t.sameResolved("/etc/"+s.File, src); err != nil || !same {
			bad("service %s: /etc/%s does not hold %s (%v)", s.Name, s.File, s.Source, err)
		}
	}
	if len(m.Services) > 0 {
		b, err := t.Root.ReadFile("/etc/dinit.d/boot")
		if err != nil {
			bad("/etc/dinit.d/boot: %v", err)
		} else {
			var waits []string
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "waits-for = "); ok {
					waits = append(waits, v)
				}
			}
			if !slices.Equal(union(waits), union(m.Boot)) {
				bad("/etc/dinit.d/boot waits for %v, want %v", waits, m.Boot)
			}
		}
	}
	for name, src := range st.Services {
		if !slices.ContainsFunc(m.Services, func(s manifest.Service) bool { return s.Name == name && s.Source == src }) {
			bad("activation record has service %s from %s, not the generation's", name, src)
		}
	}
	return probs
}
