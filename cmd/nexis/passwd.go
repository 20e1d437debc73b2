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
		Use:  "passwd",
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
	register(rootCmd, cmd)
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
