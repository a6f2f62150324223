package providers_test

import (
	"testing"

	"github.com/sloworks/broker/providers"
)

func TestDiagnose(t *testing.T) {
	const requester = "urn:oasis:names:tc:SAML:2.0:status:Requester"
	q := providers.Quirks{Diagnoses: []providers.Diagnosis{
		{ErrorClass: "status", Status: requester, Text: "requester"},
		{Status: "404", Text: "not found by status"},
		{Contains: "we are UNABLE", Text: "unable"},
		{ErrorClass: "no_answer", Text: "no answer"},
		{Text: "keyed by nothing: never matches"},
	}}
	for _, tc := range []struct {
		name string
		o    providers.Observation
		want string
	}{
		{"status and class", providers.Observation{ErrorClass: "status", Status: []string{"urn:oasis:names:tc:SAML:2.0:status:Responder", requester}}, "requester"},
		{"status without its class", providers.Observation{ErrorClass: "refused", Status: []string{requester}}, ""},
		{"http status", providers.Observation{ErrorClass: "refused", Status: []string{"404"}, Answer: "Not found"}, "not found by status"},
		{"answer, any case", providers.Observation{ErrorClass: "refused", Answer: "<h1>We are unable to log you out.</h1>"}, "unable"},
		{"first match wins", providers.Observation{ErrorClass: "no_answer", Answer: "we are unable"}, "unable"},
		{"class only", providers.Observation{ErrorClass: "no_answer"}, "no answer"},
		{"nothing known", providers.Observation{ErrorClass: "timeout"}, ""},
		{"empty observation", providers.Observation{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := q.Diagnose(tc.o); got != tc.want {
				t.Errorf("Diagnose = %q; want %q", got, tc.want)
			}
		})
	}
	var none providers.Quirks
	if got := none.Diagnose(providers.Observation{ErrorClass: "no_answer"}); got != "" {
		t.Errorf("no diagnoses: %q", got)
	}
}
