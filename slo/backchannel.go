package slo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/beevik/etree"

	"github.com/sloworks/broker/binding"
)

// SOAPCaller posts a SAML message in a SOAP envelope and returns the SAML element of the answer
// (binding.SOAPClient is the real one). It must return when ctx is done.
type SOAPCaller interface {
	Call(ctx context.Context, url string, msg []byte) (*etree.Element, error)
}

// Result is how one leg ended.
type Result struct {
	Leg        *Leg
	Status     Status
	Latency    time.Duration // the exchange with the peer: request sent to answer received
	ErrorClass string        // "" when the peer confirmed the logout
	Diagnosis  string        // plain words for support staff
	Sent       []byte
	Received   []byte
	// HTTPStatus is the status of a non-SAML HTTP answer, when there was one.
	HTTPStatus int
}

// OK reports whether the peer confirmed the logout.
func (r *Result) OK() bool { return r.ErrorClass == "" }

// RunBack runs the back-channel legs in parallel and returns when every leg has settled (no
// goroutine outlives it). All legs share one deadline, timeout from now: the fan-out takes at most
// one leg timeout however many legs there are, signing included. signerFor gives the signer for a
// leg's algorithm.
func RunBack(ctx context.Context, legs []*Leg, caller SOAPCaller, signerFor func(sigAlg string) (*Signer, error), timeout time.Duration) []*Result {
	out := make([]*Result, len(legs))
	deadline := time.Now().Add(timeout)
	var wg sync.WaitGroup
	for i, l := range legs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lctx, cancel := context.WithDeadline(ctx, deadline)
			defer cancel()
			out[i] = runSOAPLeg(lctx, l, caller, signerFor, timeout)
		}()
	}
	wg.Wait()
	return out
}

func runSOAPLeg(ctx context.Context, l *Leg, caller SOAPCaller, signerFor func(string) (*Signer, error), timeout time.Duration) *Result {
	r := &Result{Leg: l}
	name, url := l.Peer.Name, l.Endpoint.Location
	s, err := signerFor(l.SigAlg)
	if err == nil {
		r.Sent, err = SignedXML(l.Request, s)
	}
	if err != nil {
		r.ErrorClass = ClassSigningUnavailable
		r.Diagnosis = fmt.Sprintf("the broker could not sign the LogoutRequest for %s (%v), so nothing was sent", name, err)
		return r
	}
	start := time.Now()
	answer, err := caller.Call(ctx, url, r.Sent)
	r.Latency = time.Since(start)
	if err != nil {
		r.ErrorClass, r.Diagnosis = classifyCallError(name, url, timeout, err)
		// Keep what the peer answered, when it answered something, for support staff.
		var herr *binding.SOAPHTTPError
		var fault *binding.SOAPFault
		switch {
		case errors.As(err, &herr):
			r.Received, r.HTTPStatus = herr.Body, herr.Status
		case errors.As(err, &fault):
			r.Received = []byte("SOAP Fault " + fault.Code + ": " + fault.String)
		}
		return r
	}
	r.Received = binding.Serialize(answer)
	checkAnswer(r, ReadSOAP(answer))
	return r
}

// checkAnswer verifies a peer's LogoutResponse to the leg's request and fills the result.
func checkAnswer(r *Result, rcv *Received) {
	l := r.Leg
	name := l.Peer.Name
	if rcv.Kind() != "LogoutResponse" {
		r.ErrorClass = ClassRefused
		r.Diagnosis = fmt.Sprintf("%s answered with a %s instead of a LogoutResponse", name, rcv.Kind())
		return
	}
	allowSHA1 := l.Peer.Quirks.LogoutSigAlg == binding.SigAlgRSASHA1
	if err := rcv.Verify(l.Peer.Certs, allowSHA1); err != nil {
		r.ErrorClass = ClassBadSignature
		if errors.Is(err, ErrUnsigned) {
			r.Diagnosis = fmt.Sprintf("%s answered with an unsigned LogoutResponse, so the logout cannot be confirmed", name)
		} else {
			r.Diagnosis = fmt.Sprintf("%s's LogoutResponse is not signed by a key in its metadata (%v); the logout cannot be confirmed", name, err)
		}
		return
	}
	resp, err := ParseLogoutResponse(rcv.Element)
	if err != nil {
		r.ErrorClass = ClassRefused
		r.Diagnosis = fmt.Sprintf("%s's answer could not be read: %v", name, err)
		return
	}
	r.Status = resp.Status
	if resp.InResponseTo != l.Request.ID {
		r.ErrorClass = ClassRefused
		r.Diagnosis = fmt.Sprintf("%s answered InResponseTo %q, not the request %q it was sent", name, resp.InResponseTo, l.Request.ID)
		return
	}
	if resp.Issuer != "" && resp.Issuer != l.Peer.EntityID {
		r.ErrorClass = ClassRefused
		r.Diagnosis = fmt.Sprintf("%s answered as %q, not as its entity ID %q", name, resp.Issuer, l.Peer.EntityID)
		return
	}
	if resp.Status.Top() != StatusSuccess || resp.Status.Sub() == StatusPartialLogout {
		r.ErrorClass = ClassStatus
		r.Diagnosis = fmt.Sprintf("%s answered %s", name, resp.Status)
		return
	}
}

// classifyCallError turns a transport error into an error class and a diagnosis.
func classifyCallError(name, url string, timeout time.Duration, err error) (string, string) {
	var nerr net.Error
	var fault *binding.SOAPFault
	var herr *binding.SOAPHTTPError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &nerr) && nerr.Timeout()):
		return ClassTimeout, fmt.Sprintf("%s did not answer within %s at %s", name, timeout, url)
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassUnreachable, fmt.Sprintf("%s refused the connection at %s (nothing listens there)", name, url)
	case errors.As(err, &fault):
		return ClassRefused, fmt.Sprintf("%s answered with a SOAP fault: %v", name, fault)
	case errors.As(err, &herr):
		return ClassRefused, fmt.Sprintf("%s answered HTTP %d (%s) instead of a SOAP LogoutResponse: %s", name, herr.Status, herr.ContentType, herr.Snippet)
	default:
		return ClassUnreachable, fmt.Sprintf("%s could not be reached at %s: %v", name, url, err)
	}
}
