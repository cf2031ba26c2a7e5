package npm

import (
	"fmt"

	"github.com/drydockhq/drydock/internal/index"
)

func parsePackageLock(data []byte, path string) ([]index.Package, error) {
	return nil, fmt.Errorf("%s: package-lock.json not supported yet", path)
}

func parseYarnLock(data []byte, path string) ([]index.Package, error) {
	return nil, fmt.Errorf("%s: yarn.lock not supported yet", path)
}

func parsePnpmLock(data []byte, path string) ([]index.Package, error) {
	return nil, fmt.Errorf("%s: pnpm-lock.yaml not supported yet", path)
}
