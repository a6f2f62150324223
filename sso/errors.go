package sso

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// Reason classifies why a SAML message was refused.
type Reason string

// Reasons a message is refused. They are stable identifiers (logs, metrics, tests).
const (
	ReasonMalformed    Reason = "malformed"
	ReasonSignature    Reason = "signature"
	ReasonIssuer       Reason = "issuer"
	ReasonUnknownApp   Reason = "unknown_app"
	ReasonACS          Reason = "acs"
	ReasonDestination  Reason = "destination"
	ReasonAudience     Reason = "audience"
	ReasonRecipient    Reason = "recipient"
	ReasonExpired      Reason = "expired"
	ReasonInResponseTo Reason = "in_response_to"
	ReasonReplay       Reason = "replay"
	ReasonStatus       Reason = "status"
	ReasonSubject      Reason = "subject"
	ReasonEnded        Reason = "session_ended"
)

// ValidationError is a SAML message refused by a check. Detail is for logs and support staff;
// the end user sees only the public text of the Reason and an error ID.
type ValidationError struct {
	Reason Reason
	Detail string
	Err    error
}

func (e *ValidationError) Error() string {
	s := "saml validation failed (" + string(e.Reason) + "): " + e.Detail
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *ValidationError) Unwrap() error { return e.Err }

func refuse(r Reason, err error, format string, args ...any) *ValidationError {
	return &ValidationError{Reason: r, Detail: fmt.Sprintf(format, args...), Err: err}
}

// publicText is what an end user reads for each reason: what happened, in plain words.
var publicText = map[Reason]string{
	ReasonMalformed:    "The sign-in message was not a valid SAML message.",
	ReasonSignature:    "The sign-in message was not signed by a party this organisation trusts.",
	ReasonIssuer:       "The sign-in message came from a party this organisation does not trust.",
	ReasonUnknownApp:   "The application that sent you here is not registered with this organisation.",
	ReasonACS:          "The application asked to receive the sign-in at an address that is not registered for it.",
	ReasonDestination:  "The sign-in message was meant for another address.",
	ReasonAudience:     "The sign-in message was meant for another service.",
	ReasonRecipient:    "The sign-in message was meant for another address.",
	ReasonExpired:      "The sign-in message has expired. Start the sign-in again from the application.",
	ReasonInResponseTo: "The sign-in does not match a sign-in started here, or it was already used. Start the sign-in again from the application.",
	ReasonReplay:       "The sign-in message was already used. Start the sign-in again from the application.",
	ReasonStatus:       "Your identity provider did not sign you in.",
	ReasonSubject:      "The sign-in message does not say who you are.",
	ReasonEnded:        "This sign-in belongs to a session that was signed out. Start the sign-in again from the application.",
}

// PageError is an error shown to an end user as a page: a status, a fixed public message, and
// the detail that only the logs get.
type PageError struct {
	Status  int
	Message string
	Err     error
}

func (e *PageError) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *PageError) Unwrap() error { return e.Err }

func newErrorID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

var errorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}
code{background:#f3f3f3;padding:.1rem .3rem}</style></head>
<body><h1>{{.Title}}</h1><p>{{.Message}}</p>
<p>If this keeps happening, give this error ID to your administrator: <code>{{.ID}}</code></p></body></html>
`))

// HTTPErrorHandler is the one error handler of the server: it logs the detail with an error ID
// and shows the user a fixed message with that ID (HTML for pages, JSON under /api/).
func HTTPErrorHandler(logger *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		id := newErrorID()
		status := http.StatusInternalServerError
		msg := "Something went wrong on our side."
		title := "Sign-in failed"
		var ve *ValidationError
		var pe *PageError
		var he *echo.HTTPError
		switch {
		case errors.As(err, &ve):
			status = http.StatusBadRequest
			msg = publicText[ve.Reason]
			if msg == "" {
				msg = "The SAML message was refused."
			}
			logger.WarnContext(c.Request().Context(), "saml message refused", "error_id", id, "reason", string(ve.Reason), "path", c.Path(), "error", err)
		case errors.As(err, &pe):
			status, msg = pe.Status, pe.Message
			logLevel := slog.LevelWarn
			if status >= 500 {
				logLevel = slog.LevelError
			}
			logger.Log(c.Request().Context(), logLevel, "request failed", "error_id", id, "status", status, "path", c.Path(), "error", err)
		case errors.As(err, &he):
			status = he.Code
			msg = http.StatusText(status)
			if m, ok := he.Message.(string); ok && status < 500 {
				msg = m
			}
			if status >= 500 {
				logger.ErrorContext(c.Request().Context(), "request failed", "error_id", id, "status", status, "path", c.Path(), "error", err)
			}
		default:
			logger.ErrorContext(c.Request().Context(), "request failed", "error_id", id, "path", c.Path(), "error", err)
		}
		if status == http.StatusNotFound {
			title = "Not found"
		}
		if p := c.Request().URL.Path; strings.Contains(p, "/slo") || strings.Contains(p, "/logout/") {
			title = "Sign-out failed"
			msg = strings.ReplaceAll(msg, "sign-in", "sign-out")
		}
		if strings.HasPrefix(c.Request().URL.Path, "/api/") {
			_ = c.JSON(status, map[string]any{"error": map[string]string{"code": strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "_")), "message": msg, "error_id": id}})
			return
		}
		c.Response().Header().Set("Content-Type", "text/html; charset=utf-8")
		c.Response().Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		c.Response().WriteHeader(status)
		_ = errorPage.Execute(c.Response(), map[string]string{"Title": title, "Message": msg, "ID": id})
	}
}
