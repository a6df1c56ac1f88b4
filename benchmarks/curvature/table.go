package main

import (
	"fmt"
	"strings"
	"time"
)

// table is a Markdown table under construction.
type table struct {
	header []string
	rows   [][]string
	// right holds the columns to align right.
	right map[int]bool
}

// newTable returns a table with the given column headers; columns after the
// first are aligned right.
func newTable(header ...string) *table {
	t := &table{header: header, right: map[int]bool{}}
	for i := 1; i < len(header); i++ {
		t.right[i] = true
	}
	return t
}

// add appends a row, padded with empty cells to the width of the header.
func (t *table) add(cells ...string) {
	for len(cells) < len(t.header) {
		cells = append(cells, "")
	}
	t.rows = append(t.rows, cells)
}

// String returns the table in Markdown with its columns padded to a common
// width, so that it also reads well as plain text.
func (t *table) String() string {
	width := make([]int, len(t.header))
	for i, h := range t.header {
		width[i] = max(3, len([]rune(h)))
	}
	for _, r := range t.rows {
		for i, c := range r {
			width[i] = max(width[i], len([]rune(c)))
		}
	}
	var b strings.Builder
	line := func(cells []string) {
		b.WriteString("|")
		for i, c := range cells {
			pad := strings.Repeat(" ", width[i]-len([]rune(c)))
			if t.right[i] {
				fmt.Fprintf(&b, " %s%s |", pad, c)
			} else {
				fmt.Fprintf(&b, " %s%s |", c, pad)
			}
		}
		b.WriteString("\n")
	}
	line(t.header)
	b.WriteString("|")
	for i, w := range width {
		if t.right[i] {
			fmt.Fprintf(&b, " %s: |", strings.Repeat("-", w-1))
		} else {
			fmt.Fprintf(&b, " %s |", strings.Repeat("-", w))
		}
	}
	b.WriteString("\n")
	for _, r := range t.rows {
		line(r)
	}
	return b.String()
}

// formatDuration formats d with three significant digits in a unit that
// suits it: µs, ms or s.
func formatDuration(d time.Duration) string {
	s := d.Seconds()
	switch {
	case s < 1e-3:
		return sig3(s*1e6) + " µs"
	case s < 1:
		return sig3(s*1e3) + " ms"
	default:
		return sig3(s) + " s"
	}
}

// sig3 formats x ≥ 0 with three significant digits and no exponent.
func sig3(x float64) string {
	switch {
	case x >= 100:
		return fmt.Sprintf("%.0f", x)
	case x >= 10:
		return fmt.Sprintf("%.1f", x)
	default:
		return fmt.Sprintf("%.2f", x)
	}
}
