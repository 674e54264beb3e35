// Package fail classifies deploylab's errors so that the CLI can map them to
// its documented exit codes and print a one-line hint, while library packages
// stay free of CLI concerns: a library wraps its error in a *fail.Error with a
// Kind and, where it knows one, a hint saying what the user should do.
package fail

import (
	"context"
	"errors"
	"fmt"
)

// Kind is the class of a failure; each kind has one exit code.
type Kind int

const (
	// Failed: the job ran and something in it failed (a task, a check, a test).
	Failed Kind = iota
	// Usage: bad flags or arguments, or a malformed file (config, inventory, rubric, plan).
	Usage
	// Unreachable: one or more hosts could not be reached; the others were done.
	Unreachable
	// Auth: a host key was refused or authentication failed.
	Auth
	// Prereq: this machine lacks something the command needs (root, a package).
	Prereq
	// Interrupted: the user pressed Ctrl-C (or the run was cancelled).
	Interrupted
)

// Exit codes, one per Kind plus success. The table is printed by
// `deploylab --help` and in README.md; keep the three in step.
const (
	ExitOK          = 0
	ExitFailed      = 1
	ExitUsage       = 2
	ExitUnreachable = 3
	ExitAuth        = 4
	ExitPrereq      = 5
	ExitInterrupted = 130
)

// ExitCodeTable is the documented table of exit codes.
const ExitCodeTable = `Exit codes:
  0    success
  1    failure: a task, check or test failed, or an internal error
  2    usage: bad flag or argument, malformed config, inventory, rubric or plan
  3    unreachable: one or more hosts could not be reached (the others were done)
  4    refused: host key mismatch or unknown host, or authentication failed
  5    prerequisite missing on this machine (root, a Debian package)
  130  interrupted (Ctrl-C); work finished so far is kept`

// Error is an error with a Kind and an optional hint for the user.
type Error struct {
	Kind Kind
	Err  error
	// Hint says what to do about it, in one line; may be empty.
	Hint string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// New wraps err with a kind and a hint.
func New(kind Kind, hint string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: kind, Err: err, Hint: hint}
}

// Errorf makes a new classified error from a format string.
func Errorf(kind Kind, hint, format string, args ...any) error {
	return &Error{Kind: kind, Err: fmt.Errorf(format, args...), Hint: hint}
}

// KindOf reports the kind of err: the outermost *Error's kind, Interrupted
// for context cancellation, Failed otherwise.
func KindOf(err error) Kind {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	if errors.Is(err, context.Canceled) {
		return Interrupted
	}
	return Failed
}

// HintOf returns the first non-empty hint in err's chain.
func HintOf(err error) string {
	for err != nil {
		var fe *Error
		if !errors.As(err, &fe) {
			return ""
		}
		if fe.Hint != "" {
			return fe.Hint
		}
		err = fe.Err
	}
	return ""
}

// ExitCode maps err to the documented exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	switch KindOf(err) {
	case Usage:
		return ExitUsage
	case Unreachable:
		return ExitUnreachable
	case Auth:
		return ExitAuth
	case Prereq:
		return ExitPrereq
	case Interrupted:
		return ExitInterrupted
	default:
		return ExitFailed
	}
}
