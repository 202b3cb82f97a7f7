package nbui

import "strings"

// Script returns the inline <script> of the ECharts build the charts need: the common build, or
// the full one when one of them needs it (no chart: the common build). It is for views that
// show charts inside an output they update in place (see Snippets): display the script once, in
// an output of its own that stays in the cell (and so in the saved notebook and its HTML
// export, before the view), and let each update of the view carry only its charts, instead of
// the 664 KB script every time. Show and HTML need none of this: they carry the script
// themselves.
func Script(charts ...Chart) (string, error) {
	full := false
	for _, c := range charts {
		f, err := needsFull(c)
		if err != nil {
			return "", err
		}
		full = full || f
	}
	var b strings.Builder
	if err := writeBundle(&b, full); err != nil {
		return "", err
	}
	return b.String(), nil
}

// Snippets returns the charts' HTML without the ECharts script: for each chart its div, holding
// its static picture, and the script that replaces the picture with the live chart once the
// page has ECharts (see Script; where the page has none, as in an untrusted notebook, the
// picture stays).
func Snippets(charts ...Chart) (string, error) {
	snips, _, err := snippets(charts)
	if err != nil {
		return "", err
	}
	return strings.Join(snips, ""), nil
}
