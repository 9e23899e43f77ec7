package schema

import _ "embed"

//go:embed ravel.schema.json
var jsonSchema []byte

// JSONSchema returns the JSON Schema (draft 2020-12) of the ClusterConfig format.
func JSONSchema() []byte { return jsonSchema }
