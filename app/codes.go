package app

import (
	"fmt"
	"log/slog"
	"testing"
)

// CodeInfo describes one code the API may return: its kind (and so its
// HTTP status) and what it means, for clients and the docs.
type CodeInfo struct {
	Code    string
	Kind    Kind
	Meaning string
}

// HTTPStatus is the status a response with this code carries.
func (ci CodeInfo) HTTPStatus() int { return ci.Kind.status() }

// Codes lists every code the API may return. A code not listed here fails
// TestEveryCodeIsListed (which reads the source) and, at run time, Fail
// (which panics under test and logs in production). Codes are stable: a
// client may switch on them.
var Codes = []CodeInfo{
	{"internal", KindInternal, "an unexpected server fault; the request id finds it in the logs"},
	{"not_found", KindNotFound, "the resource does not exist, or is not visible to the caller"},
	{"unauthenticated", KindUnauthenticated, "the request carries no valid credentials"},
	{"forbidden", KindForbidden, "the caller's roles do not allow this action"},
	{"conflict", KindConflict, "the change conflicts with existing records"},
	{"rate_limited", KindRateLimited, "too many requests from this client; Retry-After says when to return"},
	{"payload_too_large", KindPayloadTooLarge, "the request body exceeds the server's limit"},
	{"method_not_allowed", KindMethodNotAllowed, "the route exists, but not with this HTTP method"},
	{"unsupported_media_type", KindUnsupportedMediaType, "the request body is not JSON"},
	{"request_timeout", KindRequestTimeout, "the request body did not arrive in time"},
	{"overloaded", KindUnavailable, "the server is shedding load; retry after Retry-After"},
	{"not_ready", KindUnavailable, "a dependency is unreachable (readiness probe)"},
	{"realtime_unavailable", KindUnavailable, "live updates are unavailable; reload instead"},
	{"invalid_json", KindInvalid, "the body is not one well-formed JSON value of the expected shape"},
	{"invalid_text", KindInvalid, "a field holds a NUL character or invalid UTF-8; field names it"},
	{"out_of_range", KindInvalid, "a number is outside the range its column can store"},
	{"invalid_form", KindInvalid, "the form post could not be read"},
	{"invalid_body", KindInvalid, "the request body could not be read"},
	{"body_not_allowed", KindInvalid, "the route takes no request body"},
	{"invalid_request", KindInvalid, "a field's value is refused; field names it (also: an empty change)"},
	{"invalid_input", KindInvalid, "a value was refused by a database check"},
	{"invalid_cursor", KindInvalid, "after (or a search's cursor) is not a cursor this list returned: malformed, altered, or of another search"},
	{"invalid_limit", KindInvalid, "limit is not an integer from 1 to 200"},
	{"tenant_not_found", KindNotFound, "no chain has this name"},
	{"tenant_required", KindNotFound, "the route belongs to a chain and none was named"},
	{"tenant_mismatch", KindInvalid, "the chain named twice disagrees, or a payment belongs to another chain"},
	{"tenant_suspended", KindForbidden, "the chain is suspended"},
	{"tenant_moving", KindUnavailable, "the chain is being moved to another database server; retry after Retry-After seconds"},
	{"wrong_tenant", KindForbidden, "the credentials belong to another chain"},
	{"invalid_token", KindUnauthenticated, "the API token is unknown, expired or revoked"},
	{"invalid_credentials", KindUnauthenticated, "email or password is wrong"},
	{"invalid_entry", KindForbidden, "a support entry link is invalid, used or expired"},
	{"invalid_minutes", KindInvalid, "a support visit grant lasts 5 to 1440 minutes"},
	{"request_decided", KindConflict, "the support visit request was granted or refused already"},
	{"csrf_failed", KindForbidden, "the form's CSRF token does not match the session"},
	{"weak_password", KindInvalid, "the password is not 10 to 72 characters"},
	{"invalid_email", KindInvalid, "the email address is not valid"},
	{"invalid_ref", KindInvalid, "ref is longer than 200 characters"},
	{"mail_not_retryable", KindConflict, "only a failed or bounced message can be sent again"},
	{"wallet_not_configured", KindUnavailable, "wallet passes are not set up for this deployment"},
	{"invalid_device", KindInvalid, "deviceId is not 1 to 128 printable characters"},
	{"invalid_push_token", KindInvalid, "the registration body is not {\"pushToken\": \"…\"} (at most 256 characters)"},
	{"ip_rate_limited", KindRateLimited, "too many holds or orders from one address in a minute (the chain's limits); Retry-After says when"},
	{"risk_blocked", KindForbidden, "the checkout was blocked by the chain's limits (tickets per buyer, card testing); reasons lists why"},
	{"challenge_required", KindForbidden, "the checkout needs the buyer to prove a human first (declined payments); reasons lists why, captcha is the check to answer (send its id and answer back as the order's captcha)"},
	{"captcha_invalid", KindForbidden, "the CAPTCHA's answer is wrong, or the check was shown to another buyer or device; captcha is a new check"},
	{"captcha_expired", KindForbidden, "the CAPTCHA is unknown or older than its five minutes; captcha is a new check"},
	{"captcha_replayed", KindForbidden, "the CAPTCHA was answered already (each is good for one try); captcha is a new check"},
	{"captcha_unavailable", KindUnavailable, "the CAPTCHA could not be made or checked just now; retry"},
	{"invalid_device_token", KindInvalid, "X-Device-Id is not a device token this chain issued (POST /api/v1/buyer-sessions gives one)"},
	{"invalid_threshold", KindInvalid, "a limit's threshold is out of its range; field names it"},
	{"already_reviewed", KindConflict, "the decision is not waiting for a review"},
	{"invalid_tag", KindInvalid, "passesUpdatedSince is not a lastUpdated this service answered"},
	{"invalid_name", KindInvalid, "the name is not 1 to 200 characters"},
	{"email_taken", KindConflict, "a user with this email exists already"},
	{"invalid_user_id", KindInvalid, "user_id is not a UUID"},
	{"invalid_venue_id", KindInvalid, "venue_id is not a UUID; field names it"},
	{"invalid_assignment", KindInvalid, "the role assignment is not valid"},
	{"idempotency_key_required", KindInvalid, "the route needs an Idempotency-Key header"},
	{"invalid_idempotency_key", KindInvalid, "the Idempotency-Key is not 1 to 255 printable characters"},
	{"idempotency_in_progress", KindConflict, "the first request with this key is still running; Retry-After says when to retry"},
	{"idempotency_key_reused", KindUnprocessable, "the Idempotency-Key was used with a different request"},
	{"schedule_conflict", KindConflict, "the window overlaps other events; conflicts lists them"},
	{"invalid_transition", KindConflict, "the event or booking cannot move to that status or state; allowed lists where it can"},
	{"version_mismatch", KindConflict, "the event or booking changed meanwhile (its version moved on); reload and retry"},
	{"event_final", KindConflict, "the event is in a final status and cannot change"},
	{"hold_confirmed", KindConflict, "the calendar hold already became an event; event_id names it"},
	{"hold_not_active", KindConflict, "the calendar hold is released or expired"},
	{"stage_name_taken", KindConflict, "the venue has a stage of this name already"},
	{"stage_in_use", KindConflict, "events still use the stage"},
	{"venue_in_use", KindConflict, "stages or events still use the venue"},
	{"in_use", KindConflict, "other records still refer to this one"},
	{"invalid_week", KindInvalid, "week is not a date (YYYY-MM-DD)"},
	{"invalid_after", KindInvalid, "after is not an event id"},
	{"invalid_capacity", KindInvalid, "the capacity is not valid"},
	{"invalid_category", KindInvalid, "category is too long"},
	{"invalid_channel", KindInvalid, "the sales channel is unknown"},
	{"invalid_event", KindInvalid, "the payment event carries no PaymentIntent"},
	{"invalid_event_id", KindInvalid, "event_id is not an id"},
	{"invalid_format", KindInvalid, "format is not full or bitmap"},
	{"invalid_from", KindInvalid, "from is not a date or RFC 3339 time"},
	{"invalid_to", KindInvalid, "to is not a date or RFC 3339 time"},
	{"invalid_hold_id", KindInvalid, "hold_id is not a UUID"},
	{"invalid_layout", KindInvalid, "the seat map is not valid"},
	{"invalid_outcome", KindInvalid, "outcome is not one of the values the route takes (succeeded or failed; for a review approved or rejected)"},
	{"invalid_quantity", KindInvalid, "the quantity is out of bounds"},
	{"invalid_quotas", KindInvalid, "the channel quotas are not valid"},
	{"invalid_reason", KindInvalid, "the cancellation reason is not valid"},
	{"invalid_seats", KindInvalid, "a seat id is malformed, repeated, or there are too many"},
	{"invalid_settings", KindInvalid, "a waiting-room setting is out of bounds"},
	{"invalid_signature", KindInvalid, "the Stripe webhook signature does not verify"},
	{"invalid_status", KindInvalid, "the status filter is not one of the values the list takes (on_sale or sold_out; for mail queued, sent, failed or bounced)"},
	{"invalid_tier_id", KindInvalid, "tier_id is missing, not a UUID, or not sold for these seats"},
	{"invalid_tiers", KindInvalid, "tiers repeat or mix currencies"},
	{"invalid_zones", KindInvalid, "the zones are not valid"},
	{"buyer_required", KindInvalid, "the route needs an X-Buyer-Token"},
	{"mine_required", KindInvalid, "buyers may list only their own holds (?mine)"},
	{"no_inventory", KindNotFound, "the event has no tickets configured"},
	{"events_unavailable", KindUnavailable, "no module provides events"},
	{"not_on_sale", KindConflict, "the event is not on sale"},
	{"seats_unavailable", KindConflict, "some seats are taken; unavailable lists them"},
	{"sold_out", KindConflict, "not enough tickets left; available says how many"},
	{"quota_exceeded", KindConflict, "the sales channel has no more tickets; channel names it"},
	{"quota_exceeds_capacity", KindConflict, "the channel quotas add up to more than the capacity"},
	{"zones_exceed_capacity", KindConflict, "the zones add up to more than the capacity"},
	{"quota_below_sold", KindConflict, "a quota is below what the channel sold already"},
	{"tier_not_ga", KindConflict, "outside channels sell general-admission tiers only"},
	{"channel_return_exceeds_sold", KindConflict, "a channel refund returns more units than the channel sold"},
	{"invalid_connector", KindInvalid, "a channel connector's provider, name, API base, account or time zone is malformed; field names it"},
	{"invalid_channel_credentials", KindInvalid, "a channel connector's credentials are not the provider's shape"},
	{"connector_not_found", KindNotFound, "no channel connector with this id"},
	{"invalid_listing", KindInvalid, "a channel listing's external event, event or tier mapping is malformed"},
	{"listing_exists", KindConflict, "the external event is listed already, or the event already has a listing on that channel"},
	{"listing_not_found", KindNotFound, "the event is not listed on that channel"},
	{"invalid_allocation", KindInvalid, "a channel allocation is from 0 to 1000000"},
	{"channel_refused_allocation", KindConflict, "our quota changed, but the channel refused the allocation (its side sold more); detail quotes it"},
	{"provider_auth_failed", KindConflict, "the provider refused the connector's credentials"},
	{"provider_refused", KindConflict, "the provider refused the call; detail quotes its error"},
	{"provider_unavailable", KindUpstream, "the provider did not answer in time (rate limit, maintenance or outage); Retry-After says when to try again"},
	{"not_polled", KindConflict, "only Ticketmaster connectors are polled"},
	{"webhook_not_found", KindNotFound, "no webhook endpoint at this path (unknown connector or wrong path secret)"},
	{"invalid_webhook", KindInvalid, "the body is not an Eventbrite webhook delivery"},
	{"foreign_api_url", KindInvalid, "the delivery's api_url is not on the connector's API host; nothing was fetched"},
	{"reconciliation_failed", KindConflict, "the final reconciliation found a channel over its quota or sales over capacity"},
	{"quota_in_use", KindConflict, "the channel holds or sold tickets; set its quota instead of removing it"},
	{"inventory_in_use", KindConflict, "tickets were held or sold; the change would alter a sold ticket (the detail says which)"},
	{"duplicate", KindConflict, "a record with these values exists already"},
	{"hold_limit", KindRateLimited, "the buyer holds too many tickets; Retry-After says when to return"},
	{"hold_expired", KindGone, "the hold expired or was released; hold again"},
	{"hold_has_order", KindConflict, "the hold has an order already"},
	{"last_item", KindConflict, "this is the hold's last ticket: release the hold instead"},
	{"no_payment_intent", KindConflict, "the order has no payment started"},
	{"order_not_paid", KindConflict, "only a paid order can be refunded, or have its tickets sent again"},
	{"order_in_cancellation", KindConflict, "the order is being cancelled"},
	{"refund_tickets_not_valid", KindConflict, "some of the tickets to refund are not valid tickets of the order any more (refunded, transferred or resold already)"},
	{"refund_ticket_resold", KindConflict, "a ticket to refund was resold to another order, or came to this one on resale"},
	{"invalid_tickets", KindInvalid, "the tickets to refund: 1 to 100 ticket ids of the order"},
	{"last_owner", KindConflict, "the chain's last owner cannot lose the owner role; make someone else owner first"},
	{"invite_invalid", KindGone, "the invitation link was used, expired or altered"},
	{"invalid_order_cursor", KindInvalid, "the orders list's page link does not belong to this sort, or was altered"},
	{"event_cancelled", KindGone, "the event was cancelled and every ticket refunded"},
	{"payment_provider_unavailable", KindUpstream, "the payment provider did not answer; retry the same request"},
	{"queue_required", KindForbidden, "the on-sale has a waiting room: join it first"},
	{"queue_unavailable", KindUnavailable, "the waiting room is overloaded; Retry-After says when to retry"},
	{"queue_expired", KindNotFound, "the place in the queue is unknown or lapsed"},
	{"queue_token_foreign", KindForbidden, "the place in the queue belongs to another buyer"},
	{"ticket_invalid", KindInvalid, "the ticket token does not verify (forged, damaged, another chain's): result invalid, nothing recorded"},
	{"ticket_not_valid", KindConflict, "the ticket is void or was re-issued already"},
	{"invalid_ticket_token", KindInvalid, "token is missing or longer than 2,048 characters"},
	{"invalid_type", KindInvalid, "type is not entry or exit"},
	{"invalid_gate", KindInvalid, "gate is not 1 to 40 characters"},
	{"invalid_device_id", KindInvalid, "device_id is not 1 to 64 characters"},
	{"invalid_nonce", KindInvalid, "nonce is not 1 to 64 characters"},
	{"invalid_scanned_at", KindInvalid, "scanned_at is more than an hour ahead or a week behind the server"},
	{"invalid_since", KindInvalid, "since is not a revocation sequence number"},
	{"invalid_before", KindInvalid, "before is not a check-in id"},
	{"invalid_validity", KindInvalid, "valid_from is not before valid_until"},
	{"invalid_gates", KindInvalid, "a gate is unnamed, repeated, admits no zone or names another event's zone"},
	{"ticket_transferred", KindConflict, "the ticket was transferred to its holder and cannot be transferred again"},
	{"ticket_checked_in", KindConflict, "the ticket was used at the door and cannot change hands"},
	{"ticket_listed", KindConflict, "the ticket is listed for resale (delist it first), or listed already"},
	{"listing_not_open", KindConflict, "the ticket has no open resale listing"},
	{"listing_unavailable", KindConflict, "the resale listing is reserved by another buyer, sold or withdrawn"},
	{"resale_free_ticket", KindConflict, "a ticket that cost nothing cannot be resold"},
	{"price_above_cap", KindInvalid, "the resale price is above the cap (what the ticket cost, times the chain's percentage); cap says it"},
	{"invalid_price", KindInvalid, "price is not a positive amount in minor units"},
	{"invalid_cap_percent", KindInvalid, "cap_percent is not 50 to 120"},
	{"invalid_commission_bps", KindInvalid, "commission_bps is not 0 to 5000"},
	{"waitlist_joined", KindConflict, "the address is in the tier's waiting list already"},
	{"tier_available", KindConflict, "the tier has tickets on sale now: buy them instead of waiting"},
	{"waitlist_closed", KindConflict, "the waiting-list entry is not waiting any more"},
	{"hold_not_a_cart", KindConflict, "the hold reserves one resale ticket and takes nothing more"},
	{"no_offer", KindConflict, "the waiting-list entry has no open offer"},
	{"invalid_offer_minutes", KindInvalid, "offer_minutes is not 5 to 2880"},
	{"invalid_sent_at", KindInvalid, "sent_at (the device's clock when it sent a sync batch) is missing"},
	{"invalid_clock_offset", KindInvalid, "clock_offset_ms (a scanner's round-trip measurement of its clock offset) is beyond a week"},
	{"invalid_revocation_seq", KindInvalid, "revocation_seq is negative"},
	{"invalid_scans", KindInvalid, "a sync batch lists no scans"},
	{"invalid_device_result", KindInvalid, "a synced scan's result is not one a device shows for its type; field names it"},
	{"sync_too_many_scans", KindPayloadTooLarge, "a sync batch holds more scans than the limit (max_scans); send several batches"},
	{"sync_nonce_raced", KindConflict, "a synced scan reused a nonce an online scan committed meanwhile; send the batch again"},
	{"invalid_manifest", KindInvalid, "the bytes are not a door manifest"},
	{"annul_other_device", KindForbidden, "only the device that made a scan may annul it"},
	{"annul_unsuccessful", KindConflict, "the scan admitted or let out nobody: nothing to annul"},
	{"annul_too_late", KindConflict, "the scan is older than the 15-minute annul window"},
	{"annul_not_latest", KindConflict, "the ticket was scanned again since: only its latest passage can be annulled"},
	{"invalid_terms", KindInvalid, "an offer's terms are refused; field names the term"},
	{"invalid_amount", KindInvalid, "an amount is negative or beyond the limit; field names it"},
	{"invalid_percentage", KindInvalid, "a percentage (in basis points) is outside 0 to 10000; field names it"},
	{"invalid_currency", KindInvalid, "currency is not an ISO 4217 code the platform knows"},
	{"invalid_version", KindInvalid, "version is missing, or not a version the resource had"},
	{"invalid_state", KindInvalid, "the state filter is not a booking state"},
	{"agent_link_invalid", KindUnauthenticated, "the agent link is missing, malformed or not signed for this chain"},
	{"agent_link_expired", KindUnauthenticated, "the agent link has expired; ask the promoter for a new one"},
	{"no_accepted_terms", KindConflict, "the booking has no accepted terms yet"},
	{"contract_already_signed", KindConflict, "this party signed the booking's contract already"},
	{"contract_signing_closed", KindConflict, "every party signed the contract (or it went to the e-signature provider); no more signing here"},
	{"contract_document_changed", KindConflict, "the SHA-256 signed is not the contract's; reload the contract and sign what it is"},
	{"contract_signed_by_provider", KindConflict, "the contract is signed through the e-signature provider, not click-to-sign"},
	{"contract_not_signed", KindConflict, "the contract waits for signatures; it is sealed once every party signed"},
	{"contract_already_sealed", KindConflict, "the contract is sealed; its signed copy is written once, never again"},
	{"contract_not_sealed", KindConflict, "the contract's signed copy does not exist yet"},
	{"contract_seal_failed", KindUnavailable, "sealing the signed contract failed; it is retried and its error shown on the contract"},
	{"invalid_contract_template", KindInvalid, "a contract template has 1 to 60 clauses, each with a title and a text"},
	{"esign_not_configured", KindConflict, "no e-signature provider is configured; use click-to-sign"},
	{"esign_unavailable", KindUnavailable, "the e-signature provider did not take the envelope; retry later"},
	{"settlement_changed", KindConflict, "the settlement sheet changed since it was read (its SHA-256 differs); reload and acknowledge what it is now"},
	{"settlement_already_acknowledged", KindConflict, "this party acknowledged the settlement already"},
	{"invalid_esign_event", KindInvalid, "the webhook body is not a Connect message with event and data.envelopeId"},
	{"invalid_range", KindInvalid, "a shift ends before it starts, or lasts longer than allowed; field names the end"},
	{"invalid_places", KindInvalid, "places is not 0 to 1000"},
	{"unknown_event", KindInvalid, "event_id names no event of this chain (at this venue)"},
	{"unknown_role", KindInvalid, "a staffing role id is not one of this chain's roles; field names it"},
	{"unknown_staff", KindInvalid, "staff_id names no staff member of this chain"},
	{"unknown_user", KindInvalid, "user_id names no user of this chain"},
	{"unknown_venue", KindInvalid, "a venue id is not one of this chain's venues; field names it"},
	{"unknown_certification", KindInvalid, "a certification id is not one of this chain's; field names it"},
	{"certification_cycle", KindInvalid, "certifications would include each other"},
	{"shift_full", KindConflict, "every place of the shift is taken"},
	{"shift_cancelled", KindConflict, "the shift is cancelled"},
	{"shift_overlap", KindConflict, "the person is on an overlapping shift; shift_id names it"},
	{"already_assigned", KindConflict, "the person is on this shift already"},
	{"not_qualified", KindConflict, "the person does not work the shift's role, or is inactive"},
	{"certification_required", KindConflict, "the role needs a certification the person does not hold unexpired through the shift's end"},
	{"rest_too_short", KindConflict, "the chain's minimum rest between shifts would be broken (hard rule)"},
	{"week_hours_exceeded", KindConflict, "the chain's maximum hours in a week would be passed (hard rule)"},
	{"signup_closed", KindForbidden, "shifts of this role are assigned by managers, not signed up for"},
	{"places_below_assigned", KindConflict, "a shift's places cannot drop below the people holding them"},
	{"timesheet_not_on_shift", KindConflict, "the assignment holds no place on the shift (requested, declined or cancelled): nobody to check in"},
	{"timesheet_checked_in", KindConflict, "the person is checked in on this shift already"},
	{"timesheet_not_checked_in", KindConflict, "the person was never checked in on this shift"},
	{"timesheet_checked_out", KindConflict, "the person is checked out of this shift already"},
	{"timesheet_outside_window", KindConflict, "staff check themselves in from two hours before their shift to its end"},
	{"timesheet_invalid_time", KindInvalid, "at is in the future, twelve hours away from the shift, or a check-out not after the check-in"},
	{"invalid_period", KindInvalid, "from and to are dates (YYYY-MM-DD), from not after to, at most 93 days"},
	{"swap_not_yours", KindConflict, "only the person on an assignment may offer it for a swap, while it holds a place on a published shift to come"},
	{"swap_pending", KindConflict, "the assignment has a swap asked or accepted already"},
	{"swap_taken", KindConflict, "another colleague accepted the swap first"},
	{"swap_not_open", KindConflict, "the swap is no longer asked (or, to approve, not accepted)"},
	{"unknown_zone", KindInvalid, "zone names no zone configured for this event's dashboard"},
	{"invalid_reading", KindInvalid, "an occupancy reading is refused (negative count, both or neither of count and delta); field names it"},
	{"invalid_at", KindInvalid, "at is more than two minutes ahead of the server or more than two days behind"},
	{"incident_resolved", KindConflict, "the incident is resolved; its timeline is closed"},
	{"invalid_pos_event", KindInvalid, "the POS webhook body is not a recognisable event envelope"},
	{"invalid_ops_contacts", KindInvalid, "the ops mail contacts are refused (bad address, unknown venue, listed twice, neither alerts nor incidents); field names it"},
	{"invalid_incident_photo", KindInvalid, "an incident photo is refused: not image/jpeg, png or webp, or its bytes are not what its Content-Type says"},
	{"incident_photos_full", KindConflict, "an incident holds at most 10 photos"},
	{"pos_merchant_mismatch", KindForbidden, "the POS event names another merchant than the one the connector is configured for"},
	{"invalid_pricing", KindInvalid, "demand-pricing bounds are refused (floor above ceiling, step or interval out of range); field names it"},
	{"price_outside_bounds", KindConflict, "the tier's current price lies outside the bounds asked for; set bounds that contain it"},
	{"invalid_query", KindInvalid, "the search text is too long or holds characters a search never needs (; < > = \\ and the like)"},
	{"invalid_near", KindInvalid, "near must be two decimal degrees, latitude,longitude (latitude -90..90, longitude -180..180)"},
	{"invalid_radius", KindInvalid, "radius_km must be above 0 and at most 500, and needs near"},
	{"invalid_filter", KindInvalid, "a search filter is malformed (dates, prices, category, available, sort); field names it"},
	{"invalid_storefront_listing", KindInvalid, "the storefront copy of an event is refused (artist or description too long); field names it"},
}

// codeKinds indexes Codes.
var codeKinds = func() map[string]Kind {
	m := make(map[string]Kind, len(Codes))
	for _, ci := range Codes {
		if _, dup := m[ci.Code]; dup {
			panic("app.Codes lists " + ci.Code + " twice")
		}
		m[ci.Code] = ci.Kind
	}
	return m
}()

// Listed reports whether code is in Codes, and its kind.
func Listed(code string) (Kind, bool) {
	k, ok := codeKinds[code]
	return k, ok
}

// checkListed refuses an error whose code is not in Codes, or is listed
// under another kind: loudly under test, in the log in production (where
// the client still gets its answer).
func checkListed(e *Error) {
	k, ok := codeKinds[e.Code]
	if ok && k == e.Kind {
		return
	}
	msg := fmt.Sprintf("error code %q (kind %q) is not listed in app/codes.go", e.Code, e.Kind)
	if ok {
		msg = fmt.Sprintf("error code %q has kind %q but app/codes.go lists it as %q", e.Code, e.Kind, k)
	}
	if testing.Testing() {
		panic(msg)
	}
	slog.Error(msg)
}

// allKinds is the closed set of kinds.
var allKinds = []Kind{
	KindInvalid, KindNotFound, KindConflict, KindForbidden, KindUnauthenticated, KindRateLimited,
	KindUnavailable, KindGone, KindPayloadTooLarge,
	KindMethodNotAllowed, KindUnsupportedMediaType, KindRequestTimeout, KindUnprocessable, KindUpstream, KindInternal,
}
