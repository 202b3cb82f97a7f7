// Command results writes the README's results section: the AdaLink paper's claims (package
// claims) judged on the full-mode runs of a lab store, with our numbers and a verdict each.
// `make results` first runs the tutorial notebooks in full mode until every grid is complete
// (finished runs come from the store, so each pass only adds what is missing), then runs
//
//	go run ./cmd/results -store notebooks/runs -archive results/runs.json -readme README.md
//
// The claims are judged on the archive's runs together with the store's finished full-mode
// runs, and with -readme the archive is rewritten with both (see archive.go). Without
// -readme it prints the section. -csv and -json export the runs judged (lab.ExportCSV,
// lab.ExportJSON): the store's, or with -archive the merged full-mode runs.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/peftlab/peftlab/pkg/atomicfile"
	"github.com/peftlab/peftlab/pkg/backend"
	"github.com/peftlab/peftlab/pkg/claims"
	"github.com/peftlab/peftlab/pkg/lab"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "results:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("results", flag.ContinueOnError)
	store := fs.String("store", "notebooks/runs", "the run store the notebooks filled")
	archivePath := fs.String("archive", "", "the committed archive of full-mode runs to judge together with the store (rewritten with -readme)")
	readme := fs.String("readme", "", "write the section into this file, between the results markers (default: print it)")
	csvPath := fs.String("csv", "", "also export every run of the store as CSV to this file")
	jsonPath := fs.String("json", "", "also export every run of the store as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var archive []lab.Summary
	if *archivePath != "" {
		a, err := readArchive(*archivePath)
		if err != nil {
			return err
		}
		archive = a
	}
	var sums []lab.Summary
	if _, err := os.Stat(*store); err == nil {
		s, err := lab.OpenStore(*store)
		if err != nil {
			return err
		}
		if sums, err = s.List(); err != nil {
			return err
		}
		withBackends(*store, sums)
	} else if len(archive) == 0 {
		return fmt.Errorf("no run store at %s and no archived runs: run the tutorial notebooks first (make results)", *store)
	}
	if *archivePath != "" {
		sums = merge(archive, sums)
	}
	full := 0
	for _, sum := range sums {
		if !sum.Fast && sum.State == lab.Done {
			full++
		}
	}
	for _, e := range []struct {
		path  string
		write func(io.Writer, []lab.Summary) error
	}{{*csvPath, lab.ExportCSV}, {*jsonPath, lab.ExportJSON}} {
		if e.path == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(e.path), 0o755); err != nil {
			return err
		}
		if err := atomicfile.Write(e.path, func(w io.Writer) error { return e.write(w, sums) }); err != nil {
			return err
		}
	}
	from := "`" + *store + "`"
	if *archivePath != "" {
		from = "`" + *archivePath + "` and `" + *store + "`"
	}
	section := claims.Markdown(claims.Evaluate(sums), claims.Meta{Date: time.Now().Format("2006-01-02"),
		Machine: machine(), Backend: backends(sums), Store: from, Runs: full})
	if *readme == "" {
		_, err := io.WriteString(stdout, section)
		return err
	}
	if *archivePath != "" {
		if err := writeArchive(*archivePath, sums); err != nil {
			return err
		}
	}
	doc, err := os.ReadFile(*readme)
	if err != nil {
		return err
	}
	out, err := claims.Replace(string(doc), section)
	if err != nil {
		return fmt.Errorf("%s: %w", *readme, err)
	}
	if bytes.Equal([]byte(out), doc) {
		fmt.Fprintf(stdout, "%s: results section unchanged\n", *readme)
		return nil
	}
	if err := atomicfile.WriteBytes(*readme, []byte(out)); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: results section written from %d full-mode runs\n", *readme, full)
	return nil
}

// machine names the CPU and its cores.
func machine() string {
	return fmt.Sprintf("%s, %d cores", backend.CPU(), runtime.NumCPU())
}
