package site

import (
	"strings"

	"github.com/gomlx/gomlx/pkg/ml/context"
)

// InScope returns ctx moved into the site's scope below ctx's current scope, one
// GoMLX scope per path segment: from "/" it is the site's base-weight scope,
// from "/adapters/lora" it is where that adapter keeps the site's weights.
func (s Site) InScope(ctx *context.Context) *context.Context {
	for _, seg := range strings.Split(s.Name, "/") {
		ctx = ctx.In(seg)
	}
	return ctx
}
