// Command gen writes ravel.schema.json and the key reference of docs/config.md from the Go
// types of package schema: the keys and their structure by reflection (as the loader sees
// them), the rules from `validate` and `schema` tags, defaults from schema.Default, and the
// descriptions from the doc comments of the types (read with go/ast). Run it with
// `go generate ./schema`; a test fails when the committed files are out of date.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
)

func main() {
	dir := flag.String("dir", ".", "directory of package schema")
	schemaOut := flag.String("schema", "ravel.schema.json", "JSON Schema to write")
	docsOut := flag.String("docs", "../docs/config.md", "Markdown file whose generated reference to rewrite")
	flag.Parse()
	if err := run(*dir, *schemaOut, *docsOut); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(dir, schemaOut, docsOut string) error {
	js, doc, err := generate(dir, docsOut)
	if err != nil {
		return err
	}
	if err := writeIfChanged(schemaOut, js); err != nil {
		return err
	}
	return writeIfChanged(docsOut, []byte(doc))
}

// generate returns the JSON Schema and the new content of the docs file.
func generate(dir, docsFile string) (schemaJSON []byte, docs string, err error) {
	rootDoc, keys, err := model(dir)
	if err != nil {
		return nil, "", err
	}
	schemaJSON, err = jsonSchema(rootDoc, keys)
	if err != nil {
		return nil, "", err
	}
	old, err := os.ReadFile(docsFile)
	if err != nil {
		return nil, "", err
	}
	docs, err = splice(string(old), reference(keys))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", docsFile, err)
	}
	return schemaJSON, docs, nil
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	return os.WriteFile(path, data, 0o644)
}
