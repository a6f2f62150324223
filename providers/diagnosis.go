package providers

import "strings"

// Diagnosis is the plain-words explanation of one known failure of an IdP product, keyed by what
// the logout engine can observe of a failed leg. Every key that is set must match; an empty key
// matches anything, and at least one key is set.
type Diagnosis struct {
	// ErrorClass is the leg's error class as the logout log shows it (slo.Class*: "timeout",
	// "bad_signature", "status", "unreachable", "no_answer", "not_supported",
	// "signing_unavailable", "refused").
	ErrorClass string
	// Status is a SAML status code URN (top or second level) or an HTTP status code ("404") the
	// peer answered with.
	Status string
	// Contains is a piece of what the peer answered (body, snippet, SOAP fault string), matched
	// without regard to case.
	Contains string
	// Text is what support staff read in the logout log.
	Text string
	// Source is where the behaviour is documented.
	Source string
}

// Observation is what the logout engine saw of one failed leg.
type Observation struct {
	// ErrorClass is the leg's error class (slo.Class*).
	ErrorClass string
	// Status are the status codes seen: the SAML top- and second-level status URNs of the
	// answer, and the HTTP status code ("404") when the peer answered HTTP instead of SAML.
	Status []string
	// Answer is what the peer answered, as far as it was read.
	Answer string
}

// Matches reports whether the diagnosis explains the observation.
func (d *Diagnosis) Matches(o Observation) bool {
	if d.ErrorClass == "" && d.Status == "" && d.Contains == "" {
		return false
	}
	if d.ErrorClass != "" && d.ErrorClass != o.ErrorClass {
		return false
	}
	if d.Status != "" {
		found := false
		for _, s := range o.Status {
			if s == d.Status {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if d.Contains != "" && !strings.Contains(strings.ToLower(o.Answer), strings.ToLower(d.Contains)) {
		return false
	}
	return true
}

// Diagnose returns the first of the product's diagnoses that explains what the engine saw of a
// failed leg, or "" when none does. The engine appends it to its own diagnosis, which says what
// was sent (algorithm, SessionIndex, endpoint).
func (q *Quirks) Diagnose(o Observation) string {
	for i := range q.Diagnoses {
		if q.Diagnoses[i].Matches(o) {
			return q.Diagnoses[i].Text
		}
	}
	return ""
}
