package sso

import (
	"context"

	"github.com/sloworks/broker/binding"
	"github.com/sloworks/broker/db"
	"github.com/sloworks/broker/providers"
	"github.com/sloworks/broker/slo"
)

// Peers implements slo.Peers: it turns a session's participants and connection into the peers a
// logout reaches, from the apps' metadata and the connection's provider.
type Peers struct{ h *Handler }

var (
	_ slo.Peers      = Peers{}
	_ slo.FrontPeers = Peers{}
)

// Peers returns the logout engine's view of the tenants' apps and IdPs.
func (h *Handler) Peers() Peers { return Peers{h} }

// App is the participant's app as a logout peer, with the NameID and SessionIndex the broker
// issued to it.
func (p Peers) App(ctx context.Context, tenantID string, part *db.Participant) (*slo.Peer, error) {
	peer, err := p.AppPeer(ctx, tenantID, part.AppID)
	if err != nil {
		return nil, err
	}
	peer.NameID = slo.NameID{Value: part.NameID, Format: part.NameIDFormat, NameQualifier: part.NameQualifier, SPNameQualifier: part.SPNameQualifier}
	peer.SessionIndexes = []string{part.SessionIndex}
	return peer, nil
}

// AppPeer is one of the tenant's apps as a logout peer (without a subject).
func (p Peers) AppPeer(ctx context.Context, tenantID, appID string) (*slo.Peer, error) {
	app, err := p.h.tenants.App(ctx, tenantID, appID)
	if err != nil {
		return nil, err
	}
	sp, err := p.h.tenants.AppMetadata(app)
	if err != nil {
		return nil, err
	}
	q, err := p.h.tenants.AppQuirks(app)
	if err != nil {
		return nil, err
	}
	peer := &slo.Peer{ID: app.ID, Name: app.Name, EntityID: app.EntityID, Certs: sp.SigningCerts, Quirks: q, NoFrame: app.NoFrameLogout}
	for _, e := range sp.SLO {
		peer.SLO = append(peer.SLO, providers.Endpoint{Binding: providers.Binding(e.Binding), Location: e.Location, ResponseLocation: e.ResponseLocation})
	}
	return peer, nil
}

// ConnectionPeer is one of the tenant's IdP connections as a logout peer (without a subject).
func (p Peers) ConnectionPeer(ctx context.Context, tenantID, connectionID string) (*slo.Peer, error) {
	conn, up, err := p.h.tenants.Connection(ctx, tenantID, connectionID)
	if err != nil {
		return nil, err
	}
	return &slo.Peer{Upstream: true, ID: conn.ID, Name: conn.Name, EntityID: up.EntityID, SLO: up.SLO, Certs: up.SigningCerts, Quirks: up.Quirks}, nil
}

// Upstream is the session's IdP as a logout peer, with the NameID and SessionIndex it issued.
func (p Peers) Upstream(ctx context.Context, tenantID string, s *db.Session) (*slo.Peer, error) {
	peer, err := p.ConnectionPeer(ctx, tenantID, s.ConnectionID)
	if err != nil {
		return nil, err
	}
	peer.NameID = slo.NameID{Value: s.NameID, Format: s.NameIDFormat, NameQualifier: s.NameQualifier, SPNameQualifier: s.SPNameQualifier}
	if s.UpstreamSessionIndex != "" {
		peer.SessionIndexes = []string{s.UpstreamSessionIndex}
	}
	return peer, nil
}

// Issuers are the broker's entity IDs for the tenant, as IdP and as SP.
func (p Peers) Issuers(ctx context.Context, tenantID string) (string, string, error) {
	t, err := p.h.tenants.Tenant(ctx, tenantID)
	if err != nil {
		return "", "", err
	}
	return p.h.IdPEntityID(t.Slug), p.h.SPEntityID(t.Slug), nil
}

// Signers returns the tenant's signer for an algorithm (RSA-SHA256 when empty).
func (h *Handler) Signers() slo.Signers {
	return func(ctx context.Context, tenantID, sigAlg string) (*slo.Signer, error) {
		kp, err := h.keys.KeyPair(ctx, tenantID)
		if err != nil {
			return nil, err
		}
		if sigAlg == "" {
			sigAlg = binding.SigAlgRSASHA256
		}
		return &slo.Signer{Key: kp.Signer, Cert: kp.Certificate, SigAlg: sigAlg}, nil
	}
}
