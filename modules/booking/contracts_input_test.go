package booking_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"marquee/app/apptest"
)

// TestContractBadInput: signing and acknowledging with an expired, forged
// or foreign link, a malformed body, a huge name or a wrong digest are
// clear problems and write nothing; an oversized webhook body is refused
// before it is read.
func TestContractBadInput(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	env, _ := startEnv(t, func(o *apptest.Options) { o.Clock = clock.Now })
	c := newChain(t, env, "contractbad")
	d := c.settled(t, 12)
	id := d.ID.String()
	sum := c.contractOf(t, id).SHA256
	nothing := map[string]int{"bkg_signatures": 0, "bkg_settlement_acks": 0, "bkg_history": 0, "bkg_contracts": 0}
	agentHdr := func(link string) map[string]string { return map[string]string{"X-Agent-Token": link} }
	sign := "/api/v1/agent/bookings/" + id + "/contract/sign"
	ack := "/api/v1/agent/bookings/" + id + "/settlement/acknowledge"
	other := newChain(t, env, "contractbad-other")
	scenarios := []apptest.Scenario{
		{Name: "forged link", Method: "PUT", Path: sign, Tenant: c.slug, Headers: agentHdr(c.linkA[:len(c.linkA)-3] + "abc"),
			Body: map[string]any{"name": "Maya", "document_sha256": sum}, Status: http.StatusUnauthorized, Code: "agent_link_invalid", Changes: nothing},
		{Name: "another chain's link", Method: "PUT", Path: sign, Tenant: c.slug, Headers: agentHdr(other.linkA),
			Body: map[string]any{"name": "Maya", "document_sha256": sum}, Status: http.StatusUnauthorized, Code: "agent_link_invalid", Changes: nothing},
		{Name: "malformed body", Method: "PUT", Path: sign, Tenant: c.slug, Headers: agentHdr(c.linkA),
			Body: `{"name": 12}`, Status: http.StatusBadRequest, Problem: true, Changes: nothing},
		{Name: "unknown field", Method: "PUT", Path: sign, Tenant: c.slug, Headers: agentHdr(c.linkA),
			Body: map[string]any{"name": "Maya", "document_sha256": sum, "signed_at": "2020-01-01T00:00:00Z"}, Status: http.StatusBadRequest, Problem: true, Changes: nothing},
		{Name: "huge name", Method: "PUT", Path: sign, Tenant: c.slug, Headers: agentHdr(c.linkA),
			Body: map[string]any{"name": strings.Repeat("M", 201), "document_sha256": sum}, Status: http.StatusBadRequest, Code: "invalid_request", Changes: nothing},
		{Name: "digest of another document", Method: "PUT", Path: sign, Tenant: c.slug, Headers: agentHdr(c.linkA),
			Body: map[string]any{"name": "Maya", "document_sha256": strings.Repeat("0", 64)}, Status: http.StatusConflict, Code: "contract_document_changed", Changes: nothing},
		{Name: "acknowledge a stale sheet", Method: "PUT", Path: ack, Tenant: c.slug, Headers: agentHdr(c.linkA),
			Body: map[string]any{"name": "Maya", "sheet_sha256": strings.Repeat("b", 64)}, Status: http.StatusConflict, Code: "settlement_changed", Changes: nothing},
		{Name: "webhook body too large", Method: "POST", Path: "/api/v1/booking/esign/connect", Tenant: c.slug,
			Body: `{"event":"` + strings.Repeat("x", 300<<10) + `"}`, Status: http.StatusRequestEntityTooLarge, Problem: true, Changes: nothing},
		{Name: "webhook without a provider", Method: "POST", Path: "/api/v1/booking/esign/connect", Tenant: c.slug,
			Headers: map[string]string{"X-DocuSign-Signature-1": "eA=="}, Body: `{"event":"envelope-completed"}`, Status: http.StatusNotFound, Code: "not_found", Changes: nothing},
		{Name: "unknown chain", Method: "PUT", Path: sign, Tenant: "no-such-chain", Headers: agentHdr(c.linkA),
			Body: map[string]any{"name": "Maya", "document_sha256": sum}, Status: http.StatusNotFound, Problem: true},
	}
	apptest.RunScenarios(t, env, scenarios)

	clock.advance(25 * time.Hour)
	apptest.RunScenarios(t, env, []apptest.Scenario{
		{Name: "expired link signs", Method: "PUT", Path: sign, Tenant: c.slug, Headers: agentHdr(c.linkA),
			Body: map[string]any{"name": "Maya", "document_sha256": sum}, Status: http.StatusUnauthorized, Code: "agent_link_expired", Changes: nothing},
		{Name: "expired link acknowledges", Method: "PUT", Path: ack, Tenant: c.slug, Headers: agentHdr(c.linkA),
			Body: map[string]any{"name": "Maya", "sheet_sha256": strings.Repeat("b", 64)}, Status: http.StatusUnauthorized, Code: "agent_link_expired", Changes: nothing},
		{Name: "expired link reads the contract page", Path: "/agent/bookings/" + id + "?token=" + c.linkA, Tenant: c.slug,
			Status: http.StatusUnauthorized, Problem: true},
	})
}
