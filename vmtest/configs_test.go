// Package vmtest holds the VM test (vmtest/run, `make vm-test`). This Go
// test is its cheap, always-run part: every config a guest or an image
// switches to must evaluate, for each architecture the images are built
// for, and everything it builds runs in the stdenv's sandbox.
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
		"guest/configs/gen3.toml",
		"../buildroot/board/nexisos/rootfs-overlay/etc/nexis/config.toml",
	}
	for _, c := range configs {
		for _, system := range []string{"x86_64-linux", "aarch64-linux", "riscv64-linux"} {
			t.Run(strings.TrimSuffix(filepath.Base(c), ".toml")+"/"+system, func(t *testing.T) {
				opts := lang.Options{System: system}
				if system == "riscv64-linux" {
					// No stdenv is pinned for riscv64 (no Debian 12
					// release): the image build names its Buildroot
					// toolchain. A stand-in, for evaluation only.
					// The guest's kernel builds with a "kernel" tool layer.
					opts.Stdenv = map[string]any{
						"url": "https://example.invalid/stdenv-riscv64.tar.gz", "sha256": strings.Repeat("0", 64),
						"tools": map[string]any{"kernel": map[string]any{"url": "https://example.invalid/stdenv-kernel-riscv64.tar.gz", "sha256": strings.Repeat("1", 64)}},
					}
				}
				sys, err := lang.Eval(c, opts)
				if err != nil {
					t.Fatal(err)
				}
				// Every builder that runs a program runs it from the
				// stdenv: no derivation relies on the host's /bin/sh.
				for _, d := range builtins.Closure(sys.Drv) {
					if d.Builder == "/bin/sh" && d.Getenv("NEXIS_FHS_LAYERS") == "" {
						t.Errorf("%s runs /bin/sh without the stdenv", d.FullName())
					}
				}
			})
		}
	}
}
