package demo

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"html/template"
	"net/http"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"

	"github.com/sloworks/broker/slo"
)

// The demo's Single Logout: the demo app starts a logout at the broker (Redirect binding, signed
// with its key) and takes the broker's LogoutRequests and answers; the demo IdP takes the
// broker's LogoutRequest and ends its own session. Both use the broker's logout messages (slo):
// crewjam/saml's cannot carry a SessionIndex.

// sloEndpoint returns the Redirect SingleLogoutService of an entity's first role.
func sloEndpoint(eps []saml.Endpoint) string {
	for _, e := range eps {
		if e.Binding == saml.HTTPRedirectBinding {
			return e.Location
		}
	}
	return ""
}

func newID() string {
	b := make([]byte, 16)
	if _, err := randRead(b); err != nil {
		return "_demo"
	}
	return "_" + base64.RawURLEncoding.EncodeToString(b)
}

// appLogout starts a logout from the demo app: a signed LogoutRequest for the NameID and
// SessionIndex the broker issued to it.
func (d *Demo) appLogout(w http.ResponseWriter, r *http.Request) {
	s, err := d.app.Session.GetSession(r)
	if err != nil {
		http.Redirect(w, r, d.base+"/", http.StatusFound)
		return
	}
	claims, ok := s.(samlsp.JWTSessionClaims)
	if !ok {
		http.Error(w, "unexpected session type", http.StatusInternalServerError)
		return
	}
	req := &slo.LogoutRequest{
		ID: newID(), IssueInstant: time.Now().UTC(), Destination: d.brokerSLO, Issuer: d.app.ServiceProvider.EntityID,
		NameID:         slo.NameID{Value: claims.Subject},
		SessionIndexes: claims.Attributes["SessionIndex"],
	}
	if req.Issuer == "" {
		req.Issuer = d.app.ServiceProvider.MetadataURL.String()
	}
	u, err := slo.RedirectURL(d.brokerSLO, req, "", &slo.Signer{Key: d.appKey, Cert: d.appCert})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// appSLO is the demo app's SingleLogoutService: the broker's LogoutRequest (another app or the
// IdP started a logout; the app ends its session and answers), or the broker's answer to the
// logout the app started.
func (d *Demo) appSLO(w http.ResponseWriter, r *http.Request) {
	rcv, ok := d.readFromBroker(w, r)
	if !ok {
		return
	}
	_ = d.app.Session.DeleteSession(w, r)
	if rcv.Kind() == "LogoutResponse" {
		resp, err := slo.ParseLogoutResponse(rcv.Element)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		msg := "You are signed out of the demo app, the broker and every app of your session."
		if resp.Status.Sub() == slo.StatusPartialLogout {
			msg = "You are signed out of the demo app and the broker; some parts could not confirm it (the broker's logout log says which)."
		}
		render(w, "Signed out", template.HTML(`<p>`+template.HTMLEscapeString(msg)+`</p><p><a class="button" href="`+template.HTMLEscapeString(d.base)+`/app/">Sign in again</a></p>`))
		return
	}
	req, err := slo.ParseLogoutRequest(rcv.Element)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	d.answer(w, r, req, d.appKey, d.appCert, d.app.ServiceProvider.MetadataURL.String(), d.brokerSLO, rcv.RelayState)
}

// idpSLO is the demo IdP's SingleLogoutService: it ends the IdP session of the browser and
// answers the broker.
func (d *Demo) idpSLO(w http.ResponseWriter, r *http.Request) {
	rcv, ok := d.readFromBroker(w, r)
	if !ok {
		return
	}
	req, err := slo.ParseLogoutRequest(rcv.Element)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// samlidp keeps its session in the "session" cookie.
	http.SetCookie(w, &http.Cookie{Name: "session", Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	d.answer(w, r, req, d.idpKey, d.idpCert, d.idp.IDP.MetadataURL.String(), d.brokerSPSLO, rcv.RelayState)
}

// readFromBroker decodes a Redirect logout message and checks the broker signed it; on failure it
// answers 400 itself.
func (d *Demo) readFromBroker(w http.ResponseWriter, r *http.Request) (*slo.Received, bool) {
	rcv, err := slo.ReadRedirect(r.URL.RawQuery)
	if err == nil {
		err = rcv.Verify(d.brokerCerts, false)
	}
	if err != nil {
		http.Error(w, "logout message refused: "+err.Error(), http.StatusBadRequest)
		return nil, false
	}
	return rcv, true
}

func (d *Demo) answer(w http.ResponseWriter, r *http.Request, req *slo.LogoutRequest, key *rsa.PrivateKey, cert *x509.Certificate, issuer, dest, relay string) {
	resp := &slo.LogoutResponse{ID: newID(), InResponseTo: req.ID, IssueInstant: time.Now().UTC(), Destination: dest, Issuer: issuer,
		Status: slo.Status{Codes: []string{slo.StatusSuccess}}}
	u, err := slo.RedirectURL(dest, resp, relay, &slo.Signer{Key: key, Cert: cert})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}
