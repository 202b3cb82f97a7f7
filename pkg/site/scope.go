package site

import (
	"strings"

	mlmodel "github.com/gomlx/gomlx/ml/model"
)

// InScope returns sc moved into the site's scope below sc's current scope, one
// GoMLX scope per path segment: from "/" it is the site's base-weight scope,
// from "/adapters/lora" it is where that adapter keeps the site's weights.
func (s Site) InScope(sc *mlmodel.Scope) *mlmodel.Scope {
	for _, seg := range strings.Split(s.Name, "/") {
		sc = sc.At("%s", seg)
	}
	return sc
}
