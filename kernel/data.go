package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/peftlab/peftlab/pkg/dataset"
)

// cmdData installs the data sets (all, or those named), delegating to pkg/dataset.
func cmdData(args []string) error {
	fs := flag.NewFlagSet("data", flag.ContinueOnError)
	list := fs.Bool("list", false, "list the data sets and whether each is installed")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./kernel data [-list] [NAME...]\n\nInstalls the data sets (all when no NAME is given): %s\n",
			strings.Join(dataset.Names(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	if *list {
		for _, s := range dataset.Sets() {
			state := "missing"
			if dataset.Installed(s.Name) {
				state = "installed"
			}
			fmt.Printf("%-14s %-9s %s\n", s.Name, state, s.About)
		}
		return nil
	}
	log := newLogger("data")
	return dataset.InstallLog(prefixWriter{log: log}, fs.Args()...)
}
