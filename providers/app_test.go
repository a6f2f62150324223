package providers_test

import (
	"strings"
	"testing"

	"github.com/sloworks/broker/providers"
)

func TestParseSigAlgName(t *testing.T) {
	for name, want := range map[string]string{"": "", "rsa-sha256": providers.SigAlgRSASHA256, "rsa-sha1": providers.SigAlgRSASHA1} {
		if got, err := providers.ParseSigAlgName(name); err != nil || got != want {
			t.Errorf("%q: %q %v", name, got, err)
		}
	}
	for _, bad := range []string{"sha1", "RSA-SHA1", providers.SigAlgRSASHA1, "rsa-sha512"} {
		if _, err := providers.ParseSigAlgName(bad); err == nil || !strings.Contains(err.Error(), `"rsa-sha1"`) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestGenericApp(t *testing.T) {
	if q := providers.GenericApp(providers.AppSettings{}); q.LogoutSigAlg != "" || q.FrontChannelOnly || q.MaxSessionIndexLen != 0 {
		t.Errorf("generic app quirks are not the SAML default: %+v", q)
	}
	if q := providers.GenericApp(providers.AppSettings{LogoutSigAlg: providers.SigAlgRSASHA1}); q.LogoutSigAlg != providers.SigAlgRSASHA1 {
		t.Errorf("the app's setting is not used: %+v", q)
	}
}
