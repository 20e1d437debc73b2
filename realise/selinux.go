package realise

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
)

//go:embed selinux-base.cil
var selinuxBase []byte

// checkSELinux compiles every SELinux policy module of the generation
// with secilc against the base policy nexis knows (selinux-base.cil),
// as semodule will on the machine: a module secilc rejects (junk CIL, a
// misspelt keyword or permission, a name nothing declares) fails the
// build, naming the config key it came from, instead of failing at
// activation on the machine. A build host without secilc says in the
// build log that it did not check.
func (j *job) checkSELinux(manifest string) error {
	var m struct {
		SELinux struct {
			Modules []struct {
				Name   string `json:"name"`
				Format string `json:"format"`
				CIL    string `json:"cil"`
				Origin string `json:"origin"`
			} `json:"modules"`
		} `json:"selinux"`
	}
	if err := json.Unmarshal([]byte(manifest), &m); err != nil {
		return fmt.Errorf("builtin:system: manifest: %w", err)
	}
	if len(m.SELinux.Modules) == 0 {
		return nil
	}
	secilc, err := exec.LookPath("secilc")
	if err != nil {
		fmt.Fprintf(j.log, "nexis: the SELinux modules are not checked: secilc is not installed on this build host\n")
		return nil
	}
	dir, err := os.MkdirTemp(j.dir, "selinux")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	base := filepath.Join(dir, "base.cil")
	if err := os.WriteFile(base, selinuxBase, 0o644); err != nil {
		return err
	}
	for _, mod := range m.SELinux.Modules {
		if mod.Format != "cil" {
			return fmt.Errorf("%s: SELinux module %s has format %q: nexis compiles CIL modules only", mod.Origin, mod.Name, mod.Format)
		}
		src, err := j.physicalOf(mod.CIL)
		if err != nil {
			return fmt.Errorf("builtin:system: SELinux module %s: %w", mod.Name, err)
		}
		// secilc names the file it was given in its messages: the
		// module's own name reads better than a store path.
		named := filepath.Join(dir, mod.Name+".cil")
		if err := copyFile(src, named, 0o444); err != nil {
			return err
		}
		cmd := exec.Command(secilc, "-o", filepath.Join(dir, "policy"), "-f", filepath.Join(dir, "file_contexts"), "base.cil", mod.Name+".cil")
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: secilc rejects the SELinux module %s (%s), compiled against nexis's base policy (the reference policy's classes, system_u, object_r, user_t, file_type, s0):\n%s", mod.Origin, mod.Name, path.Base(mod.CIL), strings.TrimSpace(string(out)))
		}
		fmt.Fprintf(j.log, "nexis: secilc compiles the SELinux module %s\n", mod.Name)
	}
	return nil
}
