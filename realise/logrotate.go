package realise

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// logrotateErrors are the lines logrotate -d reports a problem with; it
// exits 0 for some of them.
var logrotateErrors = regexp.MustCompile(`(?m)^error:.*$`)

// checkLogrotate has logrotate read the generation's
// /etc/logrotate.d/nexis in debug mode (-d: it reads and plans, rotates
// nothing), as the generated service runs it: a file logrotate rejects
// would leave every log unrotated. A build host without logrotate says
// in the build log that it did not check.
func (j *job) checkLogrotate(etc map[string]etcEntry) error {
	e, ok := etc["logrotate.d/nexis"]
	if !ok {
		return nil
	}
	conf, err := j.physicalOf(e.Source)
	if err != nil {
		return fmt.Errorf("builtin:system: etc/logrotate.d/nexis: %w", err)
	}
	logrotate, err := exec.LookPath("logrotate")
	if err != nil {
		fmt.Fprintf(j.log, "nexis: the log rotation is not checked: logrotate is not installed on this build host\n")
		return nil
	}
	dir, err := os.MkdirTemp(j.dir, "logrotate")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out, err := exec.Command(logrotate, "-d", "-s", filepath.Join(dir, "status"), conf).CombinedOutput()
	if bad := logrotateErrors.FindAllString(string(out), -1); err != nil || len(bad) > 0 {
		if len(bad) == 0 {
			bad = []string{strings.TrimSpace(string(out))}
		}
		return fmt.Errorf("[[log_rotation]]: logrotate -d rejects the generated /etc/logrotate.d/nexis, so no log would be rotated:\n%s", strings.Join(bad, "\n"))
	}
	fmt.Fprintf(j.log, "nexis: logrotate -d accepts the log rotation\n")
	return nil
}
