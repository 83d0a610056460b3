package herald

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error for the client: it decides whether to retry,
// re-authenticate or show the sentence to the person.
type Kind string

// The error kinds of the protocol. They are part of the wire contract.
const (
	Invalid          Kind = "INVALID_ARGUMENT"
	Unauthenticated  Kind = "UNAUTHENTICATED"
	PermissionDenied Kind = "PERMISSION_DENIED"
	NotFound         Kind = "NOT_FOUND"
	AlreadyExists    Kind = "ALREADY_EXISTS"
	TooLarge         Kind = "TOO_LARGE"
	RateLimited      Kind = "RATE_LIMITED"
	Unavailable      Kind = "UNAVAILABLE"
	Internal         Kind = "INTERNAL"
	// Busy: the person called is in another call (issue 18).
	Busy Kind = "BUSY"
	// KeyChanged is reported by the SDK, never by a server: a device in a
	// secret chat has a new identity key, and nothing is sent to or
	// accepted from it until the person accepts the change.
	KeyChanged Kind = "KEY_CHANGED"
)

// Error is an error with a kind and a sentence meant for a person. Op names
// the operation for logs; Err is the cause, never shown to clients when the
// kind is Internal.
type Error struct {
	Kind       Kind
	Op         string
	Msg        string
	RetryAfter time.Duration // set with RateLimited
	Err        error
}

func (e *Error) Error() string {
	s := string(e.Kind)
	if e.Op != "" {
		s = e.Op + ": " + s
	}
	if e.Msg != "" {
		s += ": " + e.Msg
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of the given kind with a formatted sentence.
func Errorf(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// Wrap returns an Internal error for op that keeps err as its cause, unless
// err already carries a kind, in which case it is returned as it is.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	return &Error{Kind: Internal, Op: op, Err: err}
}

// ErrorKind returns the kind of err, Internal for errors without one.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// ErrorMessage returns the sentence to show a person. Internal causes are
// hidden: they may name files or queries.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Kind != Internal && e.Msg != "" {
		return e.Msg
	}
	if ErrorKind(err) == Unavailable {
		return "the server is temporarily unavailable, try again"
	}
	return "internal error"
}

// IsKind reports whether err has the given kind.
func IsKind(err error, k Kind) bool { return err != nil && ErrorKind(err) == k }
