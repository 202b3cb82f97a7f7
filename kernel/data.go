package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/peftlab/peftlab/pkg/dataset"
)

// cmdData installs the data sets (all, or those named), delegating to pkg/dataset: it
// reinstalls sets whose files no longer match the checksums recorded at install (sizes and
// times always, every byte with -verify) and removes what interrupted installs left.
func cmdData(args []string) error {
	fs := flag.NewFlagSet("data", flag.ContinueOnError)
	list := fs.Bool("list", false, "list the data sets and whether each is installed, missing or damaged")
	verify := fs.Bool("verify", false, "hash every installed file against the checksums recorded at install, and reinstall the sets that differ")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: go run ./kernel data [-list] [-verify] [NAME...]\n\n"+
			"Installs the data sets (all when no NAME is given), and repairs damaged ones: %s\n",
			strings.Join(dataset.Names(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return exitError{code: 2}
	}
	if *list {
		for _, s := range dataset.Sets() {
			fmt.Printf("%-14s %-10s %s\n", s.Name, dataset.State(s.Name), s.About)
		}
		return nil
	}
	log := newLogger("data")
	if *verify {
		return dataset.VerifyLog(prefixWriter{log: log}, fs.Args()...)
	}
	return dataset.InstallLog(prefixWriter{log: log}, fs.Args()...)
}
