package providers

import "fmt"

// AppSettings are an app's own settings that change its quirks, as the admin gave them.
type AppSettings struct {
	// LogoutSigAlg is the app's logout_signature_algorithm: "" for its provider's default,
	// otherwise SigAlgRSASHA256 or SigAlgRSASHA1 (the algorithm of the logout messages exchanged
	// with that app: used toward it, and RSA-SHA1 then accepted from it, from no other peer).
	LogoutSigAlg string
}

// AppProvider is a product as an app behind the broker (a SAML SP whose IdP is the broker): the
// quirks the logout engine reads for such an app, as data. Apps name one with their "provider"
// setting; cmd/broker registers them in an explicit map, like the IdP providers.
type AppProvider func(AppSettings) Quirks

// GenericApp is any SAML SP: the SAML default, with RSA-SHA1 only when the app's setting asks
// for it.
func GenericApp(s AppSettings) Quirks { return Quirks{LogoutSigAlg: s.LogoutSigAlg} }

// ParseSigAlgName turns an admin's short algorithm name into its URI: "" stays "" (the default),
// "rsa-sha256" and "rsa-sha1" are known, anything else is an error that lists them.
func ParseSigAlgName(name string) (string, error) {
	switch name {
	case "":
		return "", nil
	case "rsa-sha256":
		return SigAlgRSASHA256, nil
	case "rsa-sha1":
		return SigAlgRSASHA1, nil
	}
	return "", fmt.Errorf("unknown signature algorithm %q; use \"rsa-sha256\" or \"rsa-sha1\" (or leave it out for the provider's default)", name)
}
