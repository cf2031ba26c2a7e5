package awsapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/drydockhq/drydock/internal/auth"
)

// Error is an error the API returns to the client as is: an AWS error
// code (the exception shape's name), a message safe to show, and the HTTP
// status.
type Error struct {
	// Code is the exception name, e.g. RepositoryNotFoundException.
	Code string
	// Message is shown to the client.
	Message string
	// Status is the HTTP status (400 when zero).
	Status int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// HTTPStatus is the status the error is sent with.
func (e *Error) HTTPStatus() int {
	if e.Status == 0 {
		return http.StatusBadRequest
	}
	return e.Status
}

// Errorf returns a client error (HTTP 400) with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error codes shared by the AWS JSON protocols.
const (
	// CodeSerialization: the body is not JSON, not an object, holds a
	// member the operation does not define, or a value of the wrong type.
	CodeSerialization = "SerializationException"
	// CodeUnknownOperation: the X-Amz-Target names no operation.
	CodeUnknownOperation = "UnknownOperationException"
	// CodeAccessDenied: authenticated, but without the permission.
	CodeAccessDenied = "AccessDeniedException"
)

// authStatus is the HTTP status of authentication failures (AWS answers a
// bad signature with 403).
const authStatus = http.StatusForbidden

// fromAuth turns an authentication or authorization failure of the auth
// package into an API error, keeping auth's AWS error code.
func fromAuth(err error) *Error {
	var ae *auth.Error
	switch {
	case errors.As(err, &ae):
		return &Error{Code: ae.Code, Message: ae.Message, Status: authStatus}
	case errors.Is(err, auth.ErrDenied):
		return Errorf(CodeAccessDenied, "%s", err.Error())
	case errors.Is(err, auth.ErrUnauthenticated):
		return &Error{Code: "MissingAuthenticationTokenException", Message: "missing authentication token", Status: authStatus}
	}
	return nil
}

// Denied returns the AccessDeniedException for a principal that may not
// perform action (an operation name such as "ecr:CreateRepository") on
// resource (an ARN, or "" for the registry).
func Denied(p auth.Principal, action, resource string) *Error {
	if resource == "" {
		return Errorf(CodeAccessDenied, "User: %s is not authorized to perform: %s", p.Name, action)
	}
	return Errorf(CodeAccessDenied, "User: %s is not authorized to perform: %s on resource: %s", p.Name, action, resource)
}
