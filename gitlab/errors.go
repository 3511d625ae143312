package gitlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"

	gl "gitlab.com/gitlab-org/api/client-go/v2"
)

// Decision is what a failure means for a sync.
type Decision int

// The decisions Classify makes.
const (
	// Retry: a transient failure (429, 5xx, timeout, broken connection).
	// The client retries it with backoff; once retries are spent, the table
	// being synced fails and its checkpoints so far are kept.
	Retry Decision = iota + 1

	// SkipProject: the token may not see the project (403 or 404). The
	// project is left out of this run and listed in the summary.
	SkipProject

	// FailRun: the token was rejected (401). Nothing else can succeed.
	FailRun

	// FailTable: anything else, such as a request GitLab refuses (400).
	FailTable
)

func (d Decision) String() string {
	switch d {
	case Retry:
		return "retry"
	case SkipProject:
		return "skip_project"
	case FailRun:
		return "fail_run"
	case FailTable:
		return "fail_table"
	}
	return fmt.Sprintf("Decision(%d)", int(d))
}

// Classify decides what a response status or a transport error means.
// It is the one place that does; the retry policy and the sync loop both
// follow it. status is 0 when no response arrived.
func Classify(status int, err error) Decision {
	switch {
	case status == http.StatusUnauthorized:
		return FailRun
	case status == http.StatusForbidden, status == http.StatusNotFound:
		return SkipProject
	case status == http.StatusTooManyRequests, status == http.StatusRequestTimeout:
		return Retry
	case status >= 500:
		return Retry
	case status != 0:
		return FailTable
	}

	// No response: look at the error.
	switch {
	case err == nil:
		return FailTable
	case errors.Is(err, context.Canceled):
		return FailTable
	case isTransport(err):
		return Retry
	}
	return FailTable
}

// ClassifyError classifies an error returned by Client.
func ClassifyError(err error) Decision {
	return Classify(StatusOf(err), err)
}

// StatusOf returns the HTTP status carried by err, or 0.
func StatusOf(err error) int {
	var er *gl.ErrorResponse
	if errors.As(err, &er) {
		if er.Response != nil {
			return er.Response.StatusCode
		}
		return er.StatusCode
	}
	var ge *gl.GraphQLResponseError
	if errors.As(err, &ge) {
		return StatusOf(ge.Err)
	}
	return 0
}

// isTransport reports whether err happened on the wire: a timeout, a refused
// or reset connection, a DNS failure.
func isTransport(err error) bool {
	var netErr net.Error
	var opErr *net.OpError
	var dnsErr *net.DNSError
	var urlErr *url.Error
	return errors.As(err, &netErr) || errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.As(err, &urlErr) || errors.Is(err, context.DeadlineExceeded)
}

// ErrUnauthorized is wrapped by errors for a token GitLab rejected.
var ErrUnauthorized = errors.New("gitlab rejected the token (401 Unauthorized): check that gitlab_token or the secret holds a valid token with the read_api scope")

// Error is a failed GitLab call: what was asked, of which project, and what
// the failure means.
type Error struct {
	Op       string // e.g. "get project", "list merge requests"
	Project  string // configured reference or numeric id, "" if none
	Status   int    // HTTP status, 0 when no response arrived
	Decision Decision
	Err      error
}

func (e *Error) Error() string {
	msg := e.Op
	if e.Project != "" {
		msg += " " + e.Project
	}
	if e.Decision == FailRun {
		return msg + ": " + ErrUnauthorized.Error()
	}
	return msg + ": " + describe(e.Status, e.Err)
}

func (e *Error) Unwrap() []error {
	if e.Decision == FailRun {
		return []error{ErrUnauthorized, e.Err}
	}
	return []error{e.Err}
}

// describe turns a failure into a short sentence without URLs or headers.
func describe(status int, err error) string {
	var er *gl.ErrorResponse
	if errors.As(err, &er) && er.Message != "" {
		return fmt.Sprintf("%d %s", status, er.Message)
	}
	if status != 0 {
		return fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
	}
	if err == nil {
		return "unknown error"
	}
	return err.Error()
}

// wrap turns an error of the GitLab client into an *Error.
func wrap(op, project string, err error) error {
	if err == nil {
		return nil
	}
	status := StatusOf(err)
	return &Error{Op: op, Project: project, Status: status, Decision: Classify(status, err), Err: err}
}
