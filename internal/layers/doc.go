// Package layers holds the test that keeps ravel's packages in their layers (see its rules and
// the README's "How it works"). It has no code of its own.
package layers
