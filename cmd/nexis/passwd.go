package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/nexisos/nexis/activate"
)

var passwdFlags struct {
	method string
}

func init() {
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Print a password hash for users.NAME.password_hash",
		Long: `Read a password (twice, without echo, on a terminal; one line from
standard input otherwise) and print its crypt hash, for
users.NAME.password_hash. The hash is yescrypt ($y$) by default, or
sha512-crypt ($6$) with --method sha512crypt: schemes libxcrypt, which
checks logins on NexisOS, verifies. It is made by mkpasswd (or openssl
passwd for sha512-crypt); the password never appears on a command line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(os.Stdin)
			if err != nil {
				return err
			}
			h, err := activate.HashPassword(pw, activate.HashMethod(passwdFlags.method))
			if err != nil {
				return err
			}
			fmt.Println(h)
			return nil
		},
	}
	cmd.Flags().StringVar(&passwdFlags.method, "method", string(activate.Yescrypt), "hash scheme: yescrypt or sha512crypt")
	rootCmd.AddCommand(cmd)
}

func readPassword(in *os.File) (string, error) {
	fd := int(in.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(os.Stderr, "Password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(os.Stderr, "Again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", errors.New("the two passwords differ")
	}
	return string(a), nil
}
