package generic

import "github.com/sloworks/broker/providers"

// Presets: products that differ from plain SAML in a few quirks. Each is the generic provider
// with other data; every non-default value cites its source. Presets take metadata_url or
// metadata_xml (and their own options); the generic override keys are for the generic provider.

// SAML status codes the diagnoses are keyed by (saml-core 3.2.2.2).
const statusRequester = "urn:oasis:names:tc:SAML:2.0:status:Requester"

// Error classes of the logout log the diagnoses are keyed by (slo.Class*; the contract suite
// checks that they are the engine's).
const (
	classNoAnswer     = "no_answer"
	classStatus       = "status"
	classNotSupported = "not_supported"
)

// Sources cited by the presets.
const (
	srcOkta             = "Okta: Configure Single Logout in app integrations, https://help.okta.com/oie/en-us/content/topics/apps/apps_single_logout.htm"
	srcOktaMetadata     = "Kantega SSO: SLO with Okta, https://kantega-sso.atlassian.net/wiki/spaces/KSE/pages/1737432/SLO%3A+Okta"
	srcEntra            = "Microsoft: Single Sign-Out SAML Protocol, https://learn.microsoft.com/entra/identity-platform/single-sign-out-saml-protocol"
	srcEntraIssuer      = "ory/polis#4076 (AADSTS50068 when the LogoutRequest Issuer differs from the one used at sign-in)"
	srcADFS368          = "AD FS event 368, SAML Logout Name Identifier Not Found (Microsoft AD FS management pack, https://systemcenter.wiki/?GetElement=Microsoft.ActiveDirectoryFederationServices.2016.TokenAcceptanceSamlLogoutNameIdentifierNotFoundErrorRule)"
	srcADFSMSIS1014     = "catalyst/moodle-auth_saml2#33 and SAML-Toolkits/php-saml#424 (MSIS1014, MSIS7084: logout messages must be signed)"
	srcADFSSessionIndex = "crewjam/saml#504 (AD FS refuses a LogoutRequest without SessionIndex)"
	srcGoogle           = "Google Workspace IdP metadata has no SingleLogoutService; \"Google does not support SAML SLO as an identity or service provider\" (https://stackoverflow.com/questions/51360680)"
	srcKeycloakFront    = "Keycloak Server Administration, Creating a SAML client, Logout settings (docs/documentation/server_admin/topics/clients/saml/proc-creating-saml-client.adoc)"
	srcKeycloakSOAP     = "Keycloak SamlEcpProfileService.java: the SOAP endpoint serves the ECP profile and answers a logout with the fault \"Logout not supported.\""
)

// Okta is the generic provider with Okta's quirks: SLO only SP-initiated (Okta never sends the
// broker a LogoutRequest), the LogoutRequest must be signed with the certificate uploaded in
// Okta (the broker always signs), and Okta answers by POST to the app's Single Logout URL (the
// broker's SLO endpoint takes POST).
func Okta() *Provider {
	return &Provider{
		Name: "Okta",
		Quirks: providers.Quirks{
			// "Okta supports this sign out process only when initiated by a Service Provider" (srcOkta).
			SPInitiatedSLOOnly: true,
			Diagnoses: []providers.Diagnosis{{
				ErrorClass: classNoAnswer,
				Text: "Okta shows its own error page instead of answering when it cannot verify the LogoutRequest's signature with the " +
					"Signature Certificate uploaded in the app's SAML settings, or when \"Allow application to initiate Single Logout\" is off. " +
					"Okta sends its LogoutResponse by POST to the app's Single Logout URL, which must be the broker's .../sp/slo URL. " +
					"Check that the broker's current signing certificate is the one uploaded in Okta.",
				Source: srcOkta,
			}},
		},
		// Okta's metadata lists SingleLogoutService only once SLO is enabled in the app (srcOktaMetadata).
		NoSLOHint: "Okta publishes its SingleLogoutService only once \"Allow application to initiate Single Logout\" is on in the app's " +
			"SAML settings (with the broker's SLO URL and certificate): turn it on, then connect again with the new metadata",
	}
}

// Entra is the generic provider with Microsoft Entra ID's quirks: logout by the HTTP-Redirect
// binding only; the Issuer must be exactly the SP entity ID the user signed in with (the broker
// always sends its SP entity ID).
func Entra() *Provider {
	return &Provider{
		Name: "Microsoft Entra ID",
		Quirks: providers.Quirks{
			// "Microsoft Entra ID supports redirect binding (HTTP GET), and not HTTP POST binding" (srcEntra).
			LogoutBindings: []providers.Binding{providers.BindingRedirect},
			Diagnoses: []providers.Diagnosis{{
				Contains: "AADSTS50068",
				Text: "Entra ID answered AADSTS50068 (sign-out failed: the initiating application is not a participant in the current session): " +
					"the LogoutRequest's Issuer must be exactly the Identifier (Entity ID) the user signed in with. The broker sends its SP entity ID " +
					"(.../sp/metadata); check that the Identifier in the app's Basic SAML Configuration is exactly that URL.",
				Source: srcEntraIssuer,
			}, {
				ErrorClass: classNoAnswer,
				Text: "Entra ID shows its own error page (often AADSTS50068, an Issuer that is not the app's Identifier) instead of sending the browser back. " +
					"Entra takes LogoutRequests by HTTP-Redirect only and sends the browser back to the Logout URL of the app's Basic SAML Configuration, " +
					"which must be the broker's .../sp/slo URL.",
				Source: srcEntra,
			}},
		},
		// Entra: Redirect only (srcEntra).
		OnlySLOBindings: []providers.Binding{providers.BindingRedirect},
	}
}

// ADFS is the generic provider with AD FS's quirks: the LogoutRequest must echo the NameID's
// Format, NameQualifier and SPNameQualifier exactly as issued (the broker always does), and must
// carry the SessionIndex; a logout with none is recorded, not sent.
func ADFS() *Provider {
	return &Provider{
		Name: "AD FS",
		Quirks: providers.Quirks{
			// AD FS fails a LogoutRequest without SessionIndex ("'Element' is an invalid
			// XmlNodeType", srcADFSSessionIndex); saml-profiles 4.4.4.1 requires one from a session
			// participant.
			RequireSessionIndex: true,
			Diagnoses: []providers.Diagnosis{{
				ErrorClass: classStatus,
				Status:     statusRequester,
				Text: "AD FS answered Requester: the LogoutRequest does not match the logged-in session participant (event 368 in the AD FS Admin log). " +
					"The NameID's Format, NameQualifier and SPNameQualifier must be exactly those AD FS issued, and the relying party trust's " +
					"name ID rule must issue the format the broker echoes; event 368 lists what AD FS expected.",
				Source: srcADFS368,
			}, {
				ErrorClass: classNoAnswer,
				Text: "AD FS shows an error page instead of answering. Look in the AD FS Admin event log: event 368 means the NameID (Format, NameQualifier, " +
					"SPNameQualifier) does not match the session participant; MSIS1014 or MSIS7084 mean the message was not signed with the certificate " +
					"in the relying party trust's Signature tab. The trust's SAML Logout endpoint must be the broker's .../sp/slo URL.",
				Source: srcADFS368 + "; " + srcADFSMSIS1014,
			}},
		},
	}
}

// Google is the generic provider with Google Workspace's quirks: no SAML Single Logout at all (a
// logout is local: the upstream leg is recorded as not supported), and ForceAuthn on the next
// sign-in so that the user is not silently signed in again.
func Google() *Provider {
	return &Provider{
		Name: "Google Workspace",
		Quirks: providers.Quirks{
			NoSLO:                 true, // srcGoogle
			SPInitiatedSLOOnly:    true, // Google sends no LogoutRequests either (srcGoogle)
			ForceAuthnAfterLogout: true, // the Google session outlives the logout (DESIGN.md, providers table)
			Diagnoses: []providers.Diagnosis{{
				ErrorClass: classNotSupported,
				Text: "Google Workspace has no SAML Single Logout: the user's Google session stays open after a logout from the broker. " +
					"The next sign-in asks Google to authenticate the user again (ForceAuthn).",
				Source: srcGoogle,
			}},
		},
	}
}

// KeyFrontChannelLogout is the keycloak preset's option: the "Front channel logout" switch of
// the broker's client in Keycloak.
const KeyFrontChannelLogout = "front_channel_logout"

// Keycloak is the generic provider with Keycloak's quirks: the broker logs out of Keycloak through
// the browser (Keycloak's SOAP endpoint does not take logout), and Keycloak logs the broker out
// through the browser, or server to server when the client's "Front channel logout" is off
// (config "front_channel_logout": false).
func Keycloak() *Provider {
	return &Provider{
		Name: "Keycloak",
		Quirks: providers.Quirks{
			// Keycloak's metadata lists a SOAP SingleLogoutService, but its SOAP endpoint answers a
			// logout with "Logout not supported." (srcKeycloakSOAP).
			FrontChannelOnly: true,
			Diagnoses: []providers.Diagnosis{{
				Contains: "Logout not supported",
				Text: "Keycloak answered \"Logout not supported.\": its SOAP endpoint serves the ECP profile only. " +
					"The broker logs out of Keycloak through the browser.",
				Source: srcKeycloakSOAP,
			}, {
				ErrorClass: classNoAnswer,
				Text: "Keycloak did not send the browser back. Its client for the broker must have the broker's .../sp/slo URL as " +
					"Logout Service Redirect and POST Binding URL (Advanced tab), and, with \"Client signature required\" on, the broker's " +
					"certificate in its Keys tab.",
				Source: srcKeycloakFront,
			}},
		},
		Options: []Option{{
			Key:     KeyFrontChannelLogout,
			Default: true,
			// "If Front Channel Logout is disabled, Keycloak invokes a background SAML request to
			// log out of the application" (srcKeycloakFront).
			Apply: func(q *providers.Quirks, on bool) { q.IdPLogoutBackChannel = !on },
		}},
	}
}
