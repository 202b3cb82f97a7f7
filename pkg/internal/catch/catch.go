// Package catch turns panics into errors at peftlab's public boundaries.
//
// GoMLX reports graph-building and execution errors by panicking. A notebook
// cell, a CLI or a file loader must instead return an error a researcher can
// read, so every public function that runs GoMLX code wraps the call in Error.
package catch

import "fmt"

// Error runs f and returns its error, or the panic it raised as an error
// (kept as is when the panic value already is one, so errors.Is still works).
func Error(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%v", r)
			}
		}
	}()
	return f()
}
