// Package console is the compliance console: server-rendered web pages on
// the admin listener at /console/ for the principals of the compliance
// API. Officers resolve tokens, look up, export and erase subjects, and
// list, export and delete the originals of stripped attachments kept in
// the quarantine; auditors read, filter, export and verify the audit
// trail; everyone sees the overview (mail flow, refusals, tokens created,
// trail status) and the principals.
//
// # Same acts as the API
//
// Every action calls the compliance.Service method the API calls, under
// the principal's actor ("principal:<name>"), so it is audited exactly as
// through the API; refusals (no session, missing role, missing CSRF token)
// are counted into the API's aggregate refusal records. Each result page
// shows the audit record the action produced (compliance.WithReceipt).
//
// # Care
//
// HTTPS only (the admin listener's certificate); a session cookie
// (__Host- prefix, Secure, HttpOnly, SameSite=Strict) with an idle
// timeout; a CSRF token in every form; a strict Content-Security-Policy
// (nothing inline, nothing from elsewhere: templates, CSS and script are
// embedded in the binary). An address is only ever sent in a POST body,
// never put in a URL, a log line or a page after the action (the subject
// an officer looked up is held in the session's memory for the export and
// erase that follow, and dropped with it), and subject pages are
// Cache-Control: no-store like every other console page. The pages work
// without JavaScript; the script only refreshes a verification's progress
// in place.
package console
