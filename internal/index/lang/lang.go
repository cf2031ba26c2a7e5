// Package lang gathers the catalogers of language packages: Python, npm,
// Java, Go and Rust binaries, .NET, Ruby, Rust lock files and PHP.
package lang

import (
	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/lang/binary"
	"github.com/drydockhq/drydock/internal/index/lang/dotnet"
	"github.com/drydockhq/drydock/internal/index/lang/java"
	"github.com/drydockhq/drydock/internal/index/lang/npm"
	"github.com/drydockhq/drydock/internal/index/lang/php"
	"github.com/drydockhq/drydock/internal/index/lang/python"
	"github.com/drydockhq/drydock/internal/index/lang/ruby"
	"github.com/drydockhq/drydock/internal/index/lang/rust"
)

// Catalogers returns a new instance of every language cataloger. Go
// binaries and cargo-auditable Rust binaries share one cataloger
// ("binary"), so each executable is read once.
func Catalogers() []index.Cataloger {
	return []index.Cataloger{
		python.New(),
		npm.New(),
		java.New(),
		binary.New(),
		dotnet.New(),
		ruby.New(),
		rust.New(),
		php.New(),
	}
}
