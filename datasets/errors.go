package datasets

import "fmt"

// FormatError reports a fault in the contents of a data file.
type FormatError struct {
	// File is the name of the file.
	File string

	// Line is the 1-based line number of the fault, or 0 when the fault
	// is not tied to a line.
	Line int

	// Field names the field at fault, such as "a5" or "column 3", or is
	// empty.
	Field string

	// Msg describes the fault.
	Msg string
}

// Error returns the fault as "file:line: field: message", leaving out the
// parts that are not set.
func (e *FormatError) Error() string {
	s := e.File
	if e.Line > 0 {
		s += fmt.Sprintf(":%d", e.Line)
	}
	if e.Field != "" {
		s += ": " + e.Field
	}
	return s + ": " + e.Msg
}
