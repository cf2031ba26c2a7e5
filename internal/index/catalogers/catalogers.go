// Package catalogers composes the full cataloger set: operating system
// package databases and language packages. It sits above both so that
// package index never depends on the catalogers it drives.
package catalogers

import (
	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/apk"
	"github.com/drydockhq/drydock/internal/index/dpkg"
	"github.com/drydockhq/drydock/internal/index/lang/java"
	"github.com/drydockhq/drydock/internal/index/lang/npm"
	"github.com/drydockhq/drydock/internal/index/lang/python"
	"github.com/drydockhq/drydock/internal/index/rpm"
)

// OS returns the operating system package catalogers.
func OS() []index.Cataloger {
	return []index.Cataloger{dpkg.New(), apk.New(), rpm.New()}
}

// Language returns the language package catalogers available so far.
func Language() []index.Cataloger {
	return []index.Cataloger{python.New(), npm.New(), java.New()}
}

// All returns every cataloger Drydock runs on an image.
func All() []index.Cataloger {
	return append(OS(), Language()...)
}
