// Package catalogers composes the full cataloger set: operating system
// package databases and language packages. It sits above both so that
// package index never depends on the catalogers it drives.
package catalogers

import (
	"github.com/drydockhq/drydock/internal/index"
	"github.com/drydockhq/drydock/internal/index/apk"
	"github.com/drydockhq/drydock/internal/index/dpkg"
	"github.com/drydockhq/drydock/internal/index/lang"
	"github.com/drydockhq/drydock/internal/index/rpm"
)

// OS returns the operating system package catalogers.
func OS() []index.Cataloger {
	return []index.Cataloger{dpkg.New(), apk.New(), rpm.New()}
}

// All returns every cataloger Drydock runs on an image: the OS package
// databases and every language cataloger.
func All() []index.Cataloger {
	return append(OS(), lang.Catalogers()...)
}
