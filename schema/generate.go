package schema

//go:generate go run ./internal/gen -dir . -schema ravel.schema.json -docs ../docs/config.md
