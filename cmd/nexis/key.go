package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/store/sign"
)

var keyFlags struct {
	secretFile, publicFile string
}

func init() {
	keyCmd := &cobra.Command{Use: "key"}
	gen := command("generate NAME", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		k, sec, pub, err := sign.GenerateFiles(args[0], keyFlags.secretFile, keyFlags.publicFile)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "nexis: secret key in %s (keep it private), public key in %s\n", sec, pub)
		fmt.Println(k.Public().String())
		return nil
	})
	gen.Flags().StringVar(&keyFlags.secretFile, "secret-file", "", "write the secret key to `FILE`")
	gen.Flags().StringVar(&keyFlags.publicFile, "public-file", "", "write the public key line to `FILE`")
	pub := command("public SECRET-FILE", cobra.ExactArgs(1), func(cmd *cobra.Command, args []string) error {
		k, err := sign.ReadSecretKeyFile(args[0])
		if err != nil {
			return err
		}
		fmt.Println(k.Public().String())
		return nil
	})
	register(keyCmd, gen, pub)
	register(rootCmd, keyCmd)
}

// signKeyFlag is the --sign-key of commands that sign; NEXIS_SIGN_KEY
// gives its default.
func signKeyFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "sign-key", os.Getenv("NEXIS_SIGN_KEY"), "sign records with the secret key in `FILE` (default $NEXIS_SIGN_KEY)")
}

// loadSignKey reads the signing key, which is required: unsigned
// records are refused everywhere.
func loadSignKey(path string) (*sign.SecretKey, error) {
	if path == "" {
		return nil, fmt.Errorf("no signing key: pass --sign-key FILE or set NEXIS_SIGN_KEY (make one with nexis key generate NAME); the receiving side only accepts paths signed by a key it trusts")
	}
	return sign.ReadSecretKeyFile(path)
}
