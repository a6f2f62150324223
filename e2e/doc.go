// Package e2e holds the broker's real-browser tests: Chromium, driven through the DevTools
// protocol (chromedp), signs in to test apps through the broker and a test IdP, each on its own
// local server, and signs out again through the broker's logout page.
//
// The tests need Chromium: run e2e/install.sh (Debian/Ubuntu, apt) or set CHROMIUM to the
// browser's path. Without it they skip, or fail when the environment variable CI is set.
// Set E2E_ARTIFACTS to a directory to keep the screenshots the tests take.
package e2e
