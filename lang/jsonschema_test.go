package lang_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/nexisos/nexis/lang"
)

// The JSON Schema is checked by a real validator: it compiles as draft
// 2020-12, every example config and every file it includes conforms,
// and what Check refuses (an unknown key, a wrong type) it refuses too.
func TestJSONSchemaValidatesExamples(t *testing.T) {
	sch := compileSchema(t)
	var files []string
	for _, pattern := range []string{"../examples/*/*.toml", "../examples/*/*/*.toml", "../stdlib/testdata/options/config.toml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < 5 {
		t.Fatalf("found only %d example configs", len(files))
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			if err := sch.Validate(tomlAsJSON(t, readFile(t, f))); err != nil {
				t.Errorf("%s does not conform: %v", f, err)
			}
		})
	}
	for _, bad := range []string{
		"[system]\nhostnme = \"x\"\n",
		"[system]\nhostname = 3\n",
		"[[packages]]\nname = \"a\"\ntimeout = \"1h\"\n",
		"[users.alice]\nuid = \"1000\"\n",
		"[system]\narch = \"aarch64\"\n",
	} {
		if err := sch.Validate(tomlAsJSON(t, []byte(bad))); err == nil {
			t.Errorf("the JSON Schema accepts\n%s", bad)
		}
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	b, err := json.Marshal(lang.ConfigSchema.JSONSchema())
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource(lang.JSONSchemaID, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(lang.JSONSchemaID)
	if err != nil {
		t.Fatalf("the JSON Schema does not compile: %v", err)
	}
	return sch
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tomlAsJSON decodes TOML into the values a JSON document has.
func tomlAsJSON(t *testing.T, src []byte) any {
	t.Helper()
	var m map[string]any
	if _, err := toml.Decode(string(src), &m); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
