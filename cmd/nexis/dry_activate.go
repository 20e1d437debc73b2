package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/nexisos/nexis/activate"
	"github.com/nexisos/nexis/deploy"
)

func init() {
	cmd := command("dry-activate [CONFIG]", cobra.MaximumNArgs(1), runDryActivate)
	jsonFlag(cmd, "print the plan as JSON")
	addConfigActivateFlags(cmd)
	register(rootCmd, cmd)
}

func runDryActivate(cmd *cobra.Command, args []string) error {
	sys, err := evaluate(args)
	if err != nil {
		return err
	}
	t, done, err := openTarget()
	if err != nil {
		return err
	}
	defer done()
	pv, err := deploy.NewPreview(t, sys.Drv, systemBuild(sys), switchOptions(activate.ModeTest, "").Options, interruptible)
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(pv.Plan)
	}
	pv.Print(os.Stdout)
	return nil
}
