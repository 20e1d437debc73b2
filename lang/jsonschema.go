package lang

// JSONSchemaID names the config's JSON Schema; editors that read
// `#:schema` comments (taplo, Even Better TOML) take the schema from a
// file or URL the comment gives, as `nexis schema --json-schema` writes it.
const JSONSchemaID = "https://nexisos.org/schemas/config.schema.json"

// JSONSchema is the schema as a JSON Schema (draft 2020-12), for
// editors and other tools: the same keys, types, defaults,
// descriptions and examples `nexis option` shows.
func (s *Schema) JSONSchema() map[string]any {
	j := s.jsonSchema()
	j["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	j["$id"] = JSONSchemaID
	j["title"] = "NexisOS system configuration"
	return j
}

func (s *Schema) jsonSchema() map[string]any {
	j := map[string]any{}
	switch s.Kind {
	case KindString:
		j["type"] = "string"
	case KindInt:
		j["type"] = "integer"
	case KindBool:
		j["type"] = "boolean"
	case KindFloat:
		j["type"] = "number"
	case KindStringOrBool:
		j["type"] = []any{"string", "boolean"}
	case KindTable:
		props := map[string]any{}
		for k, f := range s.Fields {
			props[k] = f.jsonSchema()
		}
		j["type"] = "object"
		j["properties"] = props
		j["additionalProperties"] = false
	case KindMap:
		j["type"] = "object"
		j["additionalProperties"] = s.Elem.jsonSchema()
	case KindArray:
		j["type"] = "array"
		j["items"] = s.Elem.jsonSchema()
	}
	if s.Doc != "" {
		d := s.Doc
		if s.DefaultDoc != "" {
			d += " Default: " + s.DefaultDoc + "."
		}
		j["description"] = d
	}
	if s.Default != nil {
		j["default"] = s.Default
	}
	if s.Example != nil {
		j["examples"] = []any{s.Example}
	}
	return j
}
