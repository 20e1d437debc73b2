package hint

import (
	"os/exec"
	"testing"
)

// A hint runs as printed: the words a shell makes of it are the ones
// given, whatever they hold.
func TestCommandQuotesForTheShell(t *testing.T) {
	SetGlobal("--root", "/tmp/a root's dir", "--state", "/var/lib/nexis")
	SetConfig("my configs/config.toml")
	defer SetGlobal()
	defer SetConfig("")
	got := Command("update", "vim")
	want := `nexis --root '/tmp/a root'\''s dir' --state /var/lib/nexis update -c 'my configs/config.toml' vim`
	if got != want {
		t.Fatalf("Command = %s\nwant      %s", got, want)
	}
	out, err := exec.Command("sh", "-c", `for w in `+got+`; do printf '%s\n' "$w"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "nexis\n--root\n/tmp/a root's dir\n--state\n/var/lib/nexis\nupdate\n-c\nmy configs/config.toml\nvim\n" {
		t.Fatalf("the shell splits it as\n%s", out)
	}
	if got := Command("store verify", "--repair"); got != "nexis --root '/tmp/a root'\\''s dir' --state /var/lib/nexis store verify --repair" {
		t.Fatalf("a verb of two words: %s", got)
	}
}
