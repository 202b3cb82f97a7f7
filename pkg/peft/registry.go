package peft

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

var (
	registryMu sync.RWMutex
	registry   = map[string]func() Method{}
)

// Register makes a method loadable from adapter_config.json by its peft_type.
// newConfig returns a pointer to a zero config that JSON decodes into; each
// method package calls Register from its init function.
func Register(peftType string, newConfig func() Method) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if _, dup := registry[peftType]; dup {
		panic(fmt.Sprintf("peft.Register: peft_type %q registered twice", peftType))
	}
	registry[peftType] = newConfig
}

// NewConfig returns a zero config for peftType, or an error listing the known
// types (and reminding to import the method's package) when it is unknown.
func NewConfig(peftType string) (Method, error) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	f, ok := registry[peftType]
	if !ok {
		known := make([]string, 0, len(registry))
		for k := range registry {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, fmt.Errorf("unknown peft_type %q (known: %s; a method is known once its package is imported)",
			peftType, strings.Join(known, ", "))
	}
	return f(), nil
}
