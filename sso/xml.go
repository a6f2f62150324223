package sso

import (
	"time"

	"github.com/beevik/etree"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// detach returns a copy of el that carries every namespace declaration it uses from its
// ancestors, so it can be serialised on its own.
func detach(el *etree.Element) *etree.Element {
	ctx, err := etreeutils.NSBuildParentContext(el)
	if err != nil {
		return el.Copy()
	}
	ctx, err = ctx.SubContext(el)
	if err != nil {
		return el.Copy()
	}
	out, err := etreeutils.NSDetatch(ctx, el)
	if err != nil {
		return el.Copy()
	}
	return out
}

// checkIssueInstant refuses a message issued too long ago or in the future (beyond the skew).
func (h *Handler) checkIssueInstant(issued time.Time, now time.Time) error {
	if issued.IsZero() {
		return refuse(ReasonMalformed, nil, "message has no IssueInstant")
	}
	if issued.After(now.Add(h.cfg.ClockSkew)) {
		return refuse(ReasonExpired, nil, "message issued at %s, in the future (now %s)", issued.UTC().Format(time.RFC3339), now.Format(time.RFC3339))
	}
	if now.Sub(issued) > h.cfg.MaxIssueDelay+h.cfg.ClockSkew {
		return refuse(ReasonExpired, nil, "message issued at %s, more than %s ago (now %s)", issued.UTC().Format(time.RFC3339), h.cfg.MaxIssueDelay, now.Format(time.RFC3339))
	}
	return nil
}
