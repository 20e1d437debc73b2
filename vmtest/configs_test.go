// Package vmtest holds the VM test (vmtest/run, `make vm-test`). This Go
// test is its cheap, always-run part: every config a guest or an image
// switches to must evaluate, for each architecture the images are built
// for, without a compiler (no derivation may need one).
package vmtest

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/nexisos/nexis/builtins"
	"github.com/nexisos/nexis/lang"
)

func TestConfigsEvaluate(t *testing.T) {
	configs := []string{
		"guest/configs/gen1.toml",
		"guest/configs/gen2.toml",
		"../buildroot/board/nexisos/rootfs-overlay/etc/nexis/config.toml",
	}
	for _, c := range configs {
		for _, system := range []string{"x86_64-linux", "aarch64-linux", "riscv64-linux"} {
			t.Run(strings.TrimSuffix(filepath.Base(c), ".toml")+"/"+system, func(t *testing.T) {
				sys, err := lang.Eval(c, lang.Options{System: system})
				if err != nil {
					t.Fatal(err)
				}
				// Only builtin derivations and the generic builder's
				// "none" build (busybox sh and cp) may run in the guest.
				for _, d := range builtins.Closure(sys.Drv) {
					if d.Builder == "/bin/sh" && !strings.Contains(d.Env["buildSystem"], "none") {
						t.Errorf("%s needs the %q build system: the guest has no compiler", d.FullName(), d.Env["buildSystem"])
					}
				}
			})
		}
	}
}
