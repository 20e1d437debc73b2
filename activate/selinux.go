package activate

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"

	"github.com/nexisos/nexis/internal/durable"
	"github.com/nexisos/nexis/manifest"
)

// selinuxfs exists when the running kernel has SELinux enabled (the
// policy interface is mounted).
const selinuxfs = "/sys/fs/selinux/enforce"

// SELinuxOp is what activation does with the generation's policy
// modules ([system.selinux]).
type SELinuxOp struct {
	PolicyType string   `json:"policy_type"`
	Install    []string `json:"install"`  // module names, new or changed
	Remove     []string `json:"remove"`   // modules the previous generation installed
	Relabel    []string `json:"relabel"`  // paths whose labels may change
	Disabled   string   `json:"disabled"` // why nothing is installed, when so
}

// planSELinux compares the generation's modules with those the record
// says semodule installed: only what changed is installed, removed and
// relabelled.
func planSELinux(p *Plan, st *State) {
	se := p.System.Manifest.SELinux
	old, oldPaths := st.SELinux, st.SELinuxPaths
	op := &SELinuxOp{PolicyType: se.PolicyType}
	cur := map[string]bool{}
	if se.Mode != "disabled" {
		for _, m := range se.Modules {
			cur[m.Name] = true
			if old[m.Name] != m.CIL {
				op.Install = append(op.Install, m.Name)
			}
		}
	}
	for name := range old {
		if !cur[name] {
			op.Remove = append(op.Remove, name)
		}
	}
	if len(op.Install)+len(op.Remove) > 0 {
		// A module's file contexts may label any of the paths, old or new.
		op.Relabel = union(oldPaths, se.ImmutablePaths)
	}
	if len(op.Install)+len(op.Remove) == 0 {
		return
	}
	if _, err := os.Stat(selinuxfs); err != nil {
		op.Disabled = "SELinux is not enabled in this kernel"
	}
	p.SELinux = op
}

// executeSELinux installs and removes modules with semodule and
// relabels the paths their file contexts name: restorecon on the running
// machine, setfiles -r for a mounted root. Where the kernel has no
// SELinux it says so once and goes on: the modules are installed by the
// next switch on a kernel with SELinux.
func (t *Target) executeSELinux(p *Plan, out io.Writer) error {
	op := p.SELinux
	if op == nil {
		return nil
	}
	if op.Disabled != "" {
		fmt.Fprintf(out, "nexis: %s: the %d SELinux module(s) of [system.selinux] are not installed (%s); they are at the next switch on a kernel with SELinux\n",
			op.Disabled, len(op.Install), strings.Join(op.Install, ", "))
		return nil
	}
	live := t.Root.Dir() == "/"
	args := []string{"-s", op.PolicyType}
	if !live {
		args = append(args, "-p", t.Root.Dir())
	}
	tmp, err := os.MkdirTemp("", "nexis-selinux")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, m := range p.System.Manifest.SELinux.Modules {
		if !contains(op.Install, m.Name) {
			continue
		}
		if m.Format != manifest.FormatCIL {
			return fmt.Errorf("%s: SELinux module %s is not CIL (a generation of an older nexis): switch to a configuration built by this one", m.Origin, m.Name)
		}
		src, err := t.storeFile(m.CIL)
		if err != nil {
			return err
		}
		b, err := t.Root.ReadFile(src)
		if err != nil {
			return fmt.Errorf("%s: %w", m.Origin, err)
		}
		// semodule names a module after its file.
		f := filepath.Join(tmp, m.Name+".cil")
		if err := durable.WriteNew(f, b, 0o644); err != nil {
			return err
		}
		args = append(args, "-i", f)
	}
	for _, name := range op.Remove {
		args = append(args, "-r", name)
	}
	if o, err := exec.Command("semodule", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("semodule %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(o)))
	}
	if len(op.Relabel) == 0 {
		return nil
	}
	var cmd *exec.Cmd
	if live {
		cmd = exec.Command("restorecon", append([]string{"-R"}, op.Relabel...)...)
	} else {
		fc := path.Join(t.Root.Dir(), "etc/selinux", op.PolicyType, "contexts/files/file_contexts")
		var paths []string
		for _, p := range op.Relabel {
			paths = append(paths, path.Join(t.Root.Dir(), p))
		}
		cmd = exec.Command("setfiles", append([]string{"-r", t.Root.Dir(), fc}, paths...)...)
	}
	if o, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("relabelling %s: %v: %s", strings.Join(op.Relabel, " "), err, strings.TrimSpace(string(o)))
	}
	return nil
}
