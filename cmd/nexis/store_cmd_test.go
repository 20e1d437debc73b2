package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/nexisos/nexis/store/storepath"
	"github.com/nexisos/nexis/store/treehash"
)

// storeScript exercises the nexis store commands end to end through the
// real CLI (the "nexis" command TestMain registers). It lives here rather
// than under testdata/script so the store's commands and their test stay
// together.
const storeScript = `
# An empty store: readers say so instead of creating it.
! exec nexis store path-info /store/00/00/00000000000000000000000000000000-x
stderr 'empty'

# add prints content-addressed paths, the same for the same tree.
exec nexis store add tree
stdout '^/store/[0-9a-z]{2}/[0-9a-z]{2}/[0-9a-z]{32}-tree$'
cp stdout added1
exec nexis store add tree
cmp stdout added1

exec nexis store add --name other.txt file.txt
stdout '-other.txt$'

# path-info, ls and cat read the store.
exec nexis store path-info --json $TREE
stdout '"tree_hash": "blake3:'
stdout '"content_address": "source:blake3:'
exec nexis store path-info -s $TREE
stdout '	12$'
exec nexis store ls -R $TREE
stdout 'sub/b'
stdout 'link -> /etc/passwd'
exec nexis store cat $TREE/sub/b
stdout '^hello$'
! exec nexis store cat $TREE/link
stderr 'symlink'

# Roots.
exec nexis store add-root mine $TREE
exec nexis store roots
stdout '^mine	/store/'
exec nexis store path-info --json $TREE
stdout '"refcount": 1'
exec nexis store remove-root mine
! exec nexis store remove-root mine
stderr 'no root named'

# info, verify and optimise.
exec nexis store info --json
stdout '"paths": 2'
exec nexis store verify --check-contents
stderr '0 errors'
mkdir root/store/00/00/00000000000000000000000000000000-junk
exec nexis store verify
stdout 'garbage: .*-junk'
exec nexis store verify --repair
stdout 'moved .* to the trash'
exec nexis store optimise
stdout 'paths'

# Special files are refused.
! exec nexis store add /dev/null
stderr 'character device'

-- tree/a --
hello
-- tree/sub/b --
hello
-- file.txt --
text
`

func TestStoreCommands(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "store.txtar"), []byte(storeScript), 0o644); err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir:                 dir,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("NEXIS_ROOT", filepath.Join(env.WorkDir, "root"))
			if err := os.Symlink("/etc/passwd", filepath.Join(env.WorkDir, "tree", "link")); err != nil {
				return err
			}
			// The tree's path is content-addressed: compute it as add
			// does, so the script can name it.
			d, err := treehash.TreeHash(filepath.Join(env.WorkDir, "tree"))
			if err != nil {
				return err
			}
			p, err := treehash.ContentPath(storepath.DefaultDir, "tree", d)
			if err != nil {
				return err
			}
			env.Setenv("TREE", p.In(storepath.DefaultDir))
			return nil
		},
	})
}
