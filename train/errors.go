package train

import (
	"fmt"
	"regexp"
)

// FieldError is a bad training argument. Field is the argument's name in
// Args' JSON form (the key of training_args.json and of --config files,
// e.g. "learning_rate"); Msg says what is wrong and what to do, and names
// other arguments as {field} (e.g. "must be positive when {max_steps} is
// not set").
//
// Error names fields as they are; a command line calls Format with its
// own naming (cmd/rerank shows --learning-rate), so that the library
// speaks no flag syntax.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Format(func(f string) string { return f }) }

// Format renders the error, naming every field with name.
func (e *FieldError) Format(name func(field string) string) string {
	return name(e.Field) + ": " + FormatFields(e.Msg, name)
}

var fieldRef = regexp.MustCompile(`\{([a-z0-9_]+)\}`)

// FormatFields replaces every {field} of msg by name(field).
func FormatFields(msg string, name func(field string) string) string {
	return fieldRef.ReplaceAllStringFunc(msg, func(m string) string { return name(m[1 : len(m)-1]) })
}

// fieldErr is a FieldError with a formatted message.
func fieldErr(field, format string, v ...any) *FieldError {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, v...)}
}

// FieldFormatter is an error whose message names training arguments and
// can be rendered with another naming (FieldError, NonFiniteError).
type FieldFormatter interface {
	error
	Format(name func(field string) string) string
}

// wrapError is an error whose message names fields as {field}, wrapping
// a cause (a context's cancellation, say).
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.Format(func(f string) string { return f }) }

// Format renders the error naming training arguments with name.
func (e *wrapError) Format(name func(field string) string) string {
	return FormatFields(e.msg, name) + ": " + e.err.Error()
}

func (e *wrapError) Unwrap() error { return e.err }
