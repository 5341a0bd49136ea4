// Package assets will expose the bundled fallback audio through one
// //go:embed file system. It is empty until the voice session issue lands.
package assets
