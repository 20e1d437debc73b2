package activate

import (
	"os/exec"
	"strings"
	"testing"
)

// The hashes HashPassword makes verify with the system's libxcrypt (the
// one login and pam_unix use), through Python's crypt module.
func TestHashPasswordVerifies(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 (Debian package python3) is not installed: run scripts/install-deps")
	}
	const pw = "correct horse battery staple"
	for _, m := range []HashMethod{Yescrypt, SHA512Crypt} {
		h, err := HashPassword(pw, m)
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		for _, try := range []struct {
			pw   string
			want string
		}{{pw, "True"}, {pw + "x", "False"}} {
			cmd := exec.Command(py, "-W", "ignore", "-c", "import crypt, sys; h = sys.argv[1]; print(crypt.crypt(sys.stdin.read(), h) == h)", h)
			cmd.Stdin = strings.NewReader(try.pw)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(out)); got != try.want {
				t.Errorf("%s hash %s, password %q: libxcrypt says %s, want %s", m, h, try.pw, got, try.want)
			}
		}
	}
	if _, err := HashPassword("", Yescrypt); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty password: %v", err)
	}
}
