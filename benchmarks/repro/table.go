package repro

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// mdTable is a Markdown table.
type mdTable struct {
	header []string
	right  []bool // right-aligned columns
	rows   [][]string
}

// newMDTable returns a table with the given column headers; a header
// starting with '>' is right-aligned (the '>' is dropped).
func newMDTable(header ...string) *mdTable {
	t := &mdTable{header: make([]string, len(header)), right: make([]bool, len(header))}
	for i, h := range header {
		if strings.HasPrefix(h, ">") {
			t.right[i] = true
			h = h[1:]
		}
		t.header[i] = h
	}
	return t
}

// add appends a row; it panics when the number of cells is wrong.
func (t *mdTable) add(cells ...string) {
	if len(cells) != len(t.header) {
		panic(fmt.Sprintf("repro: %d cells for %d columns", len(cells), len(t.header)))
	}
	t.rows = append(t.rows, cells)
}

// String returns the table in Markdown.
func (t *mdTable) String() string {
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for _, c := range cells {
			b.WriteString(" " + strings.ReplaceAll(c, "|", "\\|") + " |")
		}
		b.WriteString("\n")
	}
	line(t.header)
	sep := make([]string, len(t.header))
	for i := range sep {
		sep[i] = "---"
		if t.right[i] {
			sep[i] = "--:"
		}
	}
	b.WriteString("|")
	for _, s := range sep {
		b.WriteString(s + "|")
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}

// csvTable is a CSV file with a header.
type csvTable struct {
	header []string
	rows   [][]string
}

func newCSV(header ...string) *csvTable { return &csvTable{header: header} }

// add appends a row of values: strings, integers and floats (written by
// num).
func (c *csvTable) add(vals ...any) {
	if len(vals) != len(c.header) {
		panic(fmt.Sprintf("repro: %d CSV values for %d columns", len(vals), len(c.header)))
	}
	row := make([]string, len(vals))
	for i, v := range vals {
		switch v := v.(type) {
		case string:
			row[i] = v
		case int:
			row[i] = strconv.Itoa(v)
		case uint64:
			row[i] = strconv.FormatUint(v, 10)
		case float64:
			row[i] = num(v)
		case bool:
			row[i] = strconv.FormatBool(v)
		default:
			panic(fmt.Sprintf("repro: CSV value of type %T", v))
		}
	}
	c.rows = append(c.rows, row)
}

func (c *csvTable) bytes() ([]byte, error) {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	if err := w.Write(c.header); err != nil {
		return nil, err
	}
	if err := w.WriteAll(c.rows); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// num formats a number for a CSV file: 10 significant digits, NaN as
// empty.
func num(v float64) string {
	if math.IsNaN(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'g', 10, 64)
}

// meanSD returns the mean and the sample standard deviation of v (0 for
// fewer than two values).
func meanSD(v []float64) (mean, sd float64) {
	if len(v) == 0 {
		return math.NaN(), math.NaN()
	}
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	if len(v) < 2 {
		return mean, 0
	}
	for _, x := range v {
		sd += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(sd / float64(len(v)-1))
}

// pm formats mean ± sd with the given decimals.
func pm(v []float64, decimals int) string {
	m, s := meanSD(v)
	if math.IsNaN(m) {
		return "—"
	}
	return fmt.Sprintf("%.*f ± %.*f", decimals, m, decimals, s)
}

// pct formats a fraction as a percentage with one decimal.
func pct(f float64) string {
	if math.IsNaN(f) {
		return "—"
	}
	return fmt.Sprintf("%.1f", 100*f)
}

// sci formats a number in a short scientific or fixed form.
func sci(v float64) string {
	switch {
	case math.IsNaN(v):
		return "—"
	case v == 0:
		return "0"
	case math.Abs(v) >= 1e-3 && math.Abs(v) < 1e4:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	return strconv.FormatFloat(v, 'e', 2, 64)
}

// scaled multiplies every value by f.
func scaled(v []float64, f float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = f * x
	}
	return out
}
