package activate

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"golang.org/x/term"
)

// HashMethod is a crypt scheme HashPassword makes.
type HashMethod string

const (
	// Yescrypt ($y$) is what NexisOS, Debian and Fedora make by default.
	Yescrypt HashMethod = "yescrypt"
	// SHA512Crypt ($6$) is verified by every libc's crypt.
	SHA512Crypt HashMethod = "sha512crypt"
)

// HashPassword makes a crypt hash of password that libxcrypt (pam_unix,
// login, su) verifies, for users.NAME.password_hash. No Go module served
// to this project implements yescrypt or sha512-crypt, so it asks the
// tools that make such hashes, in order: mkpasswd (Debian's whois, or
// BusyBox's on the image) and, for sha512-crypt, openssl passwd. The
// password goes through standard input, never the command line (which
// other users may read in /proc).
func HashPassword(password string, m HashMethod) (string, error) {
	if password == "" {
		return "", errors.New("the password is empty: an account without a password is locked (password_hash = \"!\") or key-only (leave password_hash out)")
	}
	if strings.ContainsAny(password, "\n\x00") {
		return "", errors.New("a password cannot hold a newline or NUL")
	}
	var tries [][]string
	switch m {
	case Yescrypt:
		tries = [][]string{{"mkpasswd", "-m", "yescrypt", "-s"}, {"mkpasswd", "-m", "yescrypt"}}
	case SHA512Crypt:
		tries = [][]string{{"mkpasswd", "-m", "sha512crypt", "-s"}, {"mkpasswd", "-m", "sha512"}, {"openssl", "passwd", "-6", "-stdin"}}
	default:
		return "", fmt.Errorf("hash method %q: want %s or %s", m, Yescrypt, SHA512Crypt)
	}
	prefix := map[HashMethod]string{Yescrypt: "$y$", SHA512Crypt: "$6$"}[m]
	var failed []string
	for _, argv := range tries {
		prog, err := exec.LookPath(argv[0])
		if err != nil {
			continue
		}
		cmd := exec.Command(prog, argv[1:]...)
		cmd.Stdin = strings.NewReader(password + "\n")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		h := strings.TrimSpace(string(out))
		if err == nil && strings.HasPrefix(h, prefix) && !strings.ContainsAny(h, " \n:") {
			return h, nil
		}
		failed = append(failed, fmt.Sprintf("%s: %v %s", strings.Join(argv, " "), err, strings.TrimSpace(stderr.String())))
	}
	if len(failed) == 0 {
		if m == Yescrypt {
			return "", errors.New("no mkpasswd on this machine to make a yescrypt hash (Debian: apt install whois); --method sha512crypt also works with openssl")
		}
		return "", errors.New("neither mkpasswd nor openssl is on this machine to make a sha512-crypt hash")
	}
	return "", fmt.Errorf("no %s hash could be made: %s", m, strings.Join(failed, "; "))
}

// ReadPassword reads a password for HashPassword: twice, without echo,
// prompted on prompts, when in is a terminal; else one line of in.
func ReadPassword(in *os.File, prompts io.Writer) (string, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(prompts, "Password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(prompts)
	if err != nil {
		return "", err
	}
	fmt.Fprint(prompts, "Again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(prompts)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", errors.New("the two passwords differ")
	}
	return string(a), nil
}
