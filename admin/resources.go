package admin

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/metadata"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/tenants"
)

// tenantView is a tenant as the API shows it, with the values its admins paste elsewhere.
type tenantView struct {
	ID        string    `json:"id"`
	Slug      string    `json:"slug"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	// For the tenant's IdP (the broker as SP):
	SPEntityID string `json:"sp_entity_id"`
	SPMetadata string `json:"sp_metadata_url"`
	ACSURL     string `json:"acs_url"`
	// For the company's apps (the broker as IdP):
	IdPEntityID string `json:"idp_entity_id"`
	IdPMetadata string `json:"idp_metadata_url"`
	SSOURL      string `json:"sso_url"`
}

func (a *API) tenantView(t *db.Tenant) tenantView {
	sp, idp := a.urls.SPEntityID(t.Slug), a.urls.IdPEntityID(t.Slug)
	base := strings.TrimSuffix(sp, "/sp/metadata")
	return tenantView{
		ID: t.ID, Slug: t.Slug, Name: t.Name, CreatedAt: t.CreatedAt,
		SPEntityID: sp, SPMetadata: sp, ACSURL: base + "/sp/acs",
		IdPEntityID: idp, IdPMetadata: idp, SSOURL: base + "/idp/sso",
	}
}

func (a *API) createTenant(c echo.Context) error {
	var in struct {
		Slug string `json:"slug"`
		Name string `json:"name"`
	}
	if err := decode(c, &in); err != nil {
		return a.fail(c, err)
	}
	t, err := a.tenants.CreateTenant(c.Request().Context(), in.Slug, in.Name)
	if err != nil {
		return a.fail(c, err)
	}
	a.logger.InfoContext(c.Request().Context(), "tenant created", "tenant", t.Slug)
	return c.JSON(http.StatusCreated, a.tenantView(t))
}

func (a *API) listTenants(c echo.Context) error {
	ts, err := a.tenants.ListTenants(c.Request().Context())
	if err != nil {
		return a.fail(c, err)
	}
	out := make([]tenantView, 0, len(ts))
	for i := range ts {
		out = append(out, a.tenantView(&ts[i]))
	}
	return c.JSON(http.StatusOK, map[string]any{"tenants": out})
}

func (a *API) getTenant(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusOK, a.tenantView(t))
}

func (a *API) deleteTenant(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	if err := a.tenants.DeleteTenant(c.Request().Context(), t); err != nil {
		return a.fail(c, err)
	}
	a.logger.InfoContext(c.Request().Context(), "tenant deleted", "tenant", t.Slug)
	return c.NoContent(http.StatusNoContent)
}

// certView describes a certificate without its bytes.
type certView struct {
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
	SHA256   string    `json:"sha256"`
}

func certViews(certs []*x509.Certificate) []certView {
	out := make([]certView, 0, len(certs))
	for _, c := range certs {
		sum := sha256.Sum256(c.Raw)
		out = append(out, certView{Subject: c.Subject.String(), NotAfter: c.NotAfter.UTC(), SHA256: hex.EncodeToString(sum[:])})
	}
	return out
}

type endpointView struct {
	Binding  string `json:"binding"`
	Location string `json:"location"`
}

// connectionView is a connection as the API shows it: what was configured, and what the broker
// understood from the IdP's metadata.
type connectionView struct {
	ID           string          `json:"id"`
	Name         string          `json:"name"`
	Provider     string          `json:"provider"`
	EntityID     string          `json:"entity_id"`
	Config       json.RawMessage `json:"config"`
	CreatedAt    time.Time       `json:"created_at"`
	SSO          []endpointView  `json:"sso_endpoints"`
	SLO          []endpointView  `json:"slo_endpoints"`
	SigningCerts []certView      `json:"signing_certificates"`
	// Capabilities say what the connection can do (e.g. "slo": false for Google Workspace);
	// Warnings what is weaker than the default (e.g. unsigned IdP LogoutRequests accepted);
	// Notes what the provider derived (e.g. an SLO endpoint from a My Domain name).
	Capabilities *providers.Capabilities `json:"capabilities,omitempty"`
	Warnings     []string                `json:"warnings"`
	Notes        []string                `json:"notes,omitempty"`
	Error        string                  `json:"error,omitempty"`
}

func endpointViews(eps []providers.Endpoint) []endpointView {
	out := make([]endpointView, 0, len(eps))
	for _, e := range eps {
		out = append(out, endpointView{Binding: string(e.Binding), Location: e.Location})
	}
	return out
}

func (a *API) connectionView(conn *db.Connection, up *providers.Upstream) connectionView {
	v := connectionView{ID: conn.ID, Name: conn.Name, Provider: conn.Provider, EntityID: conn.EntityID, Config: json.RawMessage(conn.Config), CreatedAt: conn.CreatedAt, Warnings: []string{}}
	if up == nil {
		var err error
		if up, err = a.tenants.Upstream(conn); err != nil {
			v.Error = err.Error()
			return v
		}
	}
	v.SSO, v.SLO, v.SigningCerts = endpointViews(up.SSO), endpointViews(up.SLO), certViews(up.SigningCerts)
	caps := up.Capabilities()
	v.Capabilities, v.Warnings, v.Notes = &caps, up.Warnings(), up.Notes
	return v
}

func (a *API) createConnection(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	var in struct {
		Provider string          `json:"provider"`
		Name     string          `json:"name"`
		Config   json.RawMessage `json:"config"`
	}
	if err := decode(c, &in); err != nil {
		return a.fail(c, err)
	}
	if in.Provider == "" {
		return a.fail(c, &statusError{http.StatusBadRequest, codeInvalid, "provider", "provider is required (e.g. \"generic\")"})
	}
	conn, up, err := a.tenants.CreateConnection(c.Request().Context(), t, in.Provider, in.Name, in.Config)
	if err != nil {
		return a.fail(c, err)
	}
	a.logger.InfoContext(c.Request().Context(), "connection created", "tenant", t.Slug, "connection", conn.Name, "idp", conn.EntityID)
	return c.JSON(http.StatusCreated, a.connectionView(conn, up))
}

func (a *API) listConnections(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	cs, err := a.tenants.ListConnections(c.Request().Context(), t.ID)
	if err != nil {
		return a.fail(c, err)
	}
	out := make([]connectionView, 0, len(cs))
	for i := range cs {
		out = append(out, a.connectionView(&cs[i], nil))
	}
	return c.JSON(http.StatusOK, map[string]any{"connections": out})
}

func (a *API) getConnection(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	conn, up, err := a.tenants.Connection(c.Request().Context(), t.ID, c.Param("id"))
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusOK, a.connectionView(conn, up))
}

func (a *API) deleteConnection(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	if err := a.tenants.DeleteConnection(c.Request().Context(), t.ID, c.Param("id")); err != nil {
		return a.fail(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

// appView is an app as the API shows it.
type appView struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	EntityID     string `json:"entity_id"`
	MetadataURL  string `json:"metadata_url,omitempty"`
	SignResponse bool   `json:"sign_response"`
	NoFrame      bool   `json:"no_frame_logout"`
	// Provider is the product the app is ("generic" for any SAML SP).
	Provider string `json:"provider"`
	// LogoutSigAlg is the algorithm of logout messages with this app, as its provider and its
	// logout_signature_algorithm setting make it ("rsa-sha256", "rsa-sha1").
	LogoutSigAlg string `json:"logout_signature_algorithm"`
	// FrontChannelOnly: the app is never sent a SOAP LogoutRequest.
	FrontChannelOnly bool           `json:"front_channel_logout_only"`
	Warnings         []string       `json:"warnings"`
	CreatedAt        time.Time      `json:"created_at"`
	ACS              []endpointView `json:"acs_endpoints"`
	SLO              []endpointView `json:"slo_endpoints"`
	Error            string         `json:"error,omitempty"`
}

func (a *API) appView(app *db.App, sp *metadata.SP) appView {
	v := appView{ID: app.ID, Name: app.Name, EntityID: app.EntityID, MetadataURL: app.MetadataURL, SignResponse: app.SignResponse, NoFrame: app.NoFrameLogout, Provider: app.Provider, Warnings: []string{}, CreatedAt: app.CreatedAt, ACS: []endpointView{}, SLO: []endpointView{}}
	if v.Provider == "" {
		v.Provider = "generic"
	}
	q, err := a.tenants.AppQuirks(app)
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.LogoutSigAlg, v.FrontChannelOnly = providers.SigAlgName(q.LogoutSigAlg), q.FrontChannelOnly
	if q.LogoutSigAlg == providers.SigAlgRSASHA1 {
		v.Warnings = append(v.Warnings, "RSA-SHA1 is used toward this app for logout messages, and accepted from it (from no other app)")
	}
	if sp == nil {
		var err error
		if sp, err = a.tenants.AppMetadata(app); err != nil {
			v.Error = err.Error()
			return v
		}
	}
	for _, e := range sp.ACS {
		v.ACS = append(v.ACS, endpointView{Binding: e.Binding, Location: e.Location})
	}
	for _, e := range sp.SLO {
		v.SLO = append(v.SLO, endpointView{Binding: e.Binding, Location: e.Location})
	}
	return v
}

func (a *API) createApp(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	var in struct {
		Name         string `json:"name"`
		MetadataURL  string `json:"metadata_url"`
		MetadataXML  string `json:"metadata_xml"`
		SignResponse bool   `json:"sign_response"`
		// NoFrameLogout: the app's logout page refuses to be framed.
		NoFrameLogout bool `json:"no_frame_logout"`
		// Provider is the product the app is: "" or "generic" (any SAML SP), "salesforce".
		Provider string `json:"provider"`
		// LogoutSigAlg: "" (the provider's default), "rsa-sha256" or "rsa-sha1".
		LogoutSigAlg string `json:"logout_signature_algorithm"`
	}
	if err := decode(c, &in); err != nil {
		return a.fail(c, err)
	}
	app, sp, err := a.tenants.CreateApp(c.Request().Context(), t, tenants.AppInput{Name: in.Name, MetadataURL: in.MetadataURL, MetadataXML: in.MetadataXML, SignResponse: in.SignResponse, NoFrameLogout: in.NoFrameLogout,
		Provider: in.Provider, LogoutSignatureAlgorithm: in.LogoutSigAlg})
	if err != nil {
		return a.fail(c, err)
	}
	a.logger.InfoContext(c.Request().Context(), "app created", "tenant", t.Slug, "app", app.Name, "entity_id", app.EntityID, "provider", app.Provider)
	return c.JSON(http.StatusCreated, a.appView(app, sp))
}

func (a *API) listApps(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	apps, err := a.tenants.ListApps(c.Request().Context(), t.ID)
	if err != nil {
		return a.fail(c, err)
	}
	out := make([]appView, 0, len(apps))
	for i := range apps {
		out = append(out, a.appView(&apps[i], nil))
	}
	return c.JSON(http.StatusOK, map[string]any{"apps": out})
}

func (a *API) getApp(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	app, err := a.tenants.App(c.Request().Context(), t.ID, c.Param("id"))
	if err != nil {
		return a.fail(c, err)
	}
	return c.JSON(http.StatusOK, a.appView(app, nil))
}

func (a *API) deleteApp(c echo.Context) error {
	t, err := a.tenant(c)
	if err != nil {
		return a.fail(c, err)
	}
	if err := a.tenants.DeleteApp(c.Request().Context(), t.ID, c.Param("id")); err != nil {
		return a.fail(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}
