package booking_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"marquee/app"
	"marquee/app/apptest"
	"marquee/modules/booking"
	"marquee/modules/calendar"
)

// accepted is an offer for a hold, sent by the promoter and accepted by
// agent A: its contract is rendered.
func (c *chain) accepted(t testing.TB, day int) booking.Detail {
	t.Helper()
	d := c.act(t, c.create(t, c.artistA, "hold_id", c.hold(t, day), "title", "Velvet Static live"), "send", nil)
	return c.agentAct(t, c.linkA, d, "accept", nil)
}

// sealed has both parties sign the accepted offer's contract and seals it
// (as the seal job would), so it may be contracted.
func (c *chain) sealed(t testing.TB, d booking.Detail) booking.Detail {
	t.Helper()
	id := d.ID.String()
	sum := c.contractOf(t, id).SHA256
	mustStatus(t, c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/sign", map[string]any{"name": "Dana Promoter", "document_sha256": sum}), http.StatusOK)
	mustStatus(t, c.agent(t, c.linkA, "PUT", "/api/v1/agent/bookings/"+id+"/contract/sign", map[string]any{"name": "Maya for Velvet Static", "document_sha256": sum}), http.StatusOK)
	res := c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/seal", nil)
	if res.Status != http.StatusOK && res.Code() != "contract_already_sealed" {
		t.Fatalf("seal: %d %s", res.Status, res.Body)
	}
	if ct := c.contractOf(t, id); ct.Status != booking.ContractSealed {
		t.Fatalf("contract not sealed: %+v", ct)
	}
	return decode[booking.Detail](t, c.do(t, "GET", "/api/v1/bookings/"+id, nil).Body)
}

func (c *chain) contractOf(t testing.TB, id string) booking.ContractView {
	t.Helper()
	res := c.do(t, "GET", "/api/v1/bookings/"+id+"/contract", nil)
	mustStatus(t, res, http.StatusOK)
	return decode[booking.ContractView](t, res.Body)
}

func digest(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// renderPNG renders a PDF's first pages with pdftoppm under the screenshots
// directory, for a person to look at, and fails if it does not render.
func renderPNG(t *testing.T, pdf []byte, name string) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "marquee-screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(dir, name+".pdf")
	if err := os.WriteFile(in, pdf, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	if b, err := exec.Command("pdftoppm", "-png", "-r", "60", in, out).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, b)
	}
	t.Logf("rendered %s-*.png", out)
	return out
}

// TestContractSignAndSeal: accepting renders the contract PDF into object
// storage with its digest; each party signs over that digest once (a wrong
// digest, a second signature and another agent are refused, nothing
// written); the last signature queues the seal, which writes the signed copy
// once; the original's digest is unchanged after signing and sealing twice
// is refused.
func TestContractSignAndSeal(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "contract")
	srv := env.App.Jobs.NewServer(2)
	if err := srv.Start(env.App.Jobs.Mux()); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()

	d := c.accepted(t, 3)
	id := d.ID.String()
	ct := c.contractOf(t, id)
	if ct.Status != booking.ContractSigning || ct.TermsVersion != 1 || len(ct.Signatures) != 0 || len(ct.Unsigned) != 2 {
		t.Fatalf("fresh contract: %+v", ct)
	}
	res := c.do(t, "GET", "/api/v1/bookings/"+id+"/contract/pdf", nil)
	mustStatus(t, res, http.StatusOK)
	original := res.Body
	if !strings.HasPrefix(string(original), "%PDF-") || digest(original) != ct.SHA256 || int64(len(original)) != ct.SizeBytes {
		t.Fatalf("the PDF served (%d bytes, %s) is not the contract's (%d, %s)", len(original), digest(original), ct.SizeBytes, ct.SHA256)
	}
	renderPNG(t, original, "booking-contract")

	sign := func(who, sum string) apptest.Response {
		body := map[string]any{"name": "Dana Promoter", "document_sha256": sum}
		if who == "agentA" {
			body["name"] = "Maya for Velvet Static"
			return c.agent(t, c.linkA, "PUT", "/api/v1/agent/bookings/"+id+"/contract/sign", body)
		}
		if who == "agentB" {
			return c.agent(t, c.linkB, "PUT", "/api/v1/agent/bookings/"+id+"/contract/sign", body)
		}
		return c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/sign", body)
	}
	wrong := digest([]byte("another document"))
	mustProblem(t, sign("staff", wrong), http.StatusConflict, "contract_document_changed")
	mustProblem(t, sign("staff", "not-a-digest"), http.StatusBadRequest, "invalid_request")
	mustProblem(t, sign("agentB", ct.SHA256), http.StatusNotFound, "not_found")
	if n := c.count(t, "bkg_signatures"); n != 0 {
		t.Fatalf("refused signatures wrote %d rows", n)
	}
	mustStatus(t, sign("staff", ct.SHA256), http.StatusOK)
	mustProblem(t, sign("staff", ct.SHA256), http.StatusConflict, "contract_already_signed")
	mustProblem(t, c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/seal", nil), http.StatusConflict, "contract_not_signed")

	res = sign("agentA", ct.SHA256)
	mustStatus(t, res, http.StatusOK)
	if v := decode[booking.ContractView](t, res.Body); len(v.Unsigned) != 0 || len(v.Signatures) != 2 {
		t.Fatalf("after both signatures: %+v", v)
	}
	apptest.Eventually(t, 20*time.Second, "the seal job seals the contract", func() bool {
		return c.contractOf(t, id).Status == booking.ContractSealed
	})
	ct = c.contractOf(t, id)
	for _, s := range ct.Signatures {
		if s.DocumentSHA256 != ct.SHA256 || s.IP == "" || s.Name == "" || s.SignedAt.IsZero() {
			t.Errorf("signature without its name, time, address or the document's digest: %+v", s)
		}
	}
	res = c.do(t, "GET", "/api/v1/bookings/"+id+"/contract/pdf?copy=signed", nil)
	mustStatus(t, res, http.StatusOK)
	if ct.SealedSHA256 == nil || digest(res.Body) != *ct.SealedSHA256 || *ct.SealedSHA256 == ct.SHA256 {
		t.Fatalf("signed copy digest %s, contract says %v", digest(res.Body), ct.SealedSHA256)
	}
	renderPNG(t, res.Body, "booking-contract-signed")
	agentCopy := c.agent(t, c.linkA, "GET", "/api/v1/agent/bookings/"+id+"/contract/pdf?copy=signed", nil)
	mustStatus(t, agentCopy, http.StatusOK)
	if digest(agentCopy.Body) != *ct.SealedSHA256 {
		t.Fatal("the agent's signed copy differs from the promoter's")
	}
	res = c.do(t, "GET", "/api/v1/bookings/"+id+"/contract/pdf", nil)
	if digest(res.Body) != ct.SHA256 {
		t.Fatal("the original contract changed after signing")
	}

	mustProblem(t, c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/seal", nil), http.StatusConflict, "contract_already_sealed")
	mustProblem(t, sign("agentA", ct.SHA256), http.StatusConflict, "contract_signing_closed")
	mustProblem(t, c.agent(t, c.linkB, "GET", "/api/v1/agent/bookings/"+id+"/contract", nil), http.StatusNotFound, "not_found")
	after := c.contractOf(t, id)
	if *after.SealedSHA256 != *ct.SealedSHA256 || !after.SealedAt.Equal(*ct.SealedAt) || after.SealAttempts != 1 {
		t.Fatalf("a refused second seal changed the contract: %+v → %+v", ct, after)
	}
	seals := 0
	for _, h := range decode[booking.Detail](t, c.do(t, "GET", "/api/v1/bookings/"+id, nil).Body).History {
		if h.Action == "seal" {
			seals++
		}
	}
	if seals != 1 {
		t.Fatalf("%d seals in the history, want 1", seals)
	}
}

// TestContractSigningRace: on many contracts, both parties sign at the same
// moment (both signatures land, the contract moves to sealing once), then
// several seal jobs run at once: exactly one writes the signed copy, the
// others are refused with contract_already_sealed.
func TestContractSigningRace(t *testing.T) {
	env, mod := startEnv(t)
	c := newChain(t, env, "sealrace")
	ctx := context.Background()
	const contracts, sealers = 4, 6
	for i := range contracts {
		d := c.accepted(t, 10+i)
		id := d.ID.String()
		sum := c.contractOf(t, id).SHA256
		var wg sync.WaitGroup
		codes := make([]int, 2)
		for j := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var res apptest.Response
				var err error
				body := map[string]any{"name": "Signer", "document_sha256": sum}
				if j == 0 {
					res, err = env.Try("PUT", c.slug, "/api/v1/bookings/"+id+"/contract/sign", c.tok, body)
				} else {
					res, err = env.Try("PUT", c.slug, "/api/v1/agent/bookings/"+id+"/contract/sign", "", body, booking.AgentTokenHeader, c.linkA)
				}
				if err == nil {
					codes[j] = res.Status
				}
			}()
		}
		wg.Wait()
		if codes[0] != http.StatusOK || codes[1] != http.StatusOK {
			t.Fatalf("simultaneous signatures answered %v", codes)
		}
		if ct := c.contractOf(t, id); ct.Status != booking.ContractSealing || len(ct.Signatures) != 2 {
			t.Fatalf("after both signed at once: %s with %d signatures", ct.Status, len(ct.Signatures))
		}

		var sealed, refused, other int
		var mu sync.Mutex
		for range sealers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := mod.Service().Seal(ctx, c.t, d.ID, booking.Actor{Kind: "system", Name: "seal job", Party: booking.Promoter})
				mu.Lock()
				defer mu.Unlock()
				var e *app.Error
				switch {
				case err == nil:
					sealed++
				case errors.As(err, &e) && e.Code == "contract_already_sealed":
					refused++
				default:
					other++
					t.Errorf("seal: %v", err)
				}
			}()
		}
		wg.Wait()
		if sealed != 1 || refused != sealers-1 || other != 0 {
			t.Fatalf("contract %d: %d seals, %d refused, %d errors; want exactly one seal", i, sealed, refused, other)
		}
	}
	var seals int
	if err := env.App.DB.Raw(`SELECT count(*) FROM "` + c.t.Schema + `".bkg_history WHERE action = 'seal'`).Row().Scan(&seals); err != nil {
		t.Fatal(err)
	}
	if seals != contracts {
		t.Fatalf("%d seals recorded for %d contracts", seals, contracts)
	}
}

// TestContractSealFailureIsVisible: when the stored contract no longer
// matches its digest, sealing fails: the contract stays "sealing" with the
// attempt counted and the error shown (never a silent pending), and once
// the document is restored a retry seals it.
func TestContractSealFailureIsVisible(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "sealfail")
	d := c.accepted(t, 20)
	id := d.ID.String()
	sum := c.contractOf(t, id).SHA256
	mustStatus(t, c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/sign", map[string]any{"name": "Dana", "document_sha256": sum}), http.StatusOK)

	path := filepath.Join(apptest.ObjectsDir(dbURL), "data", c.t.ID.String(), "booking", "contracts", id, "terms-v1.pdf")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the contract is not where the disk store keeps it: %v", err)
	}
	if err := os.WriteFile(path, append([]byte(nil), good[:len(good)/2]...), 0o644); err != nil {
		t.Fatal(err)
	}
	// No worker runs here: the agent's signature queues the job, and the
	// test seals by hand, as staff would after a failure.
	mustStatus(t, c.agent(t, c.linkA, "PUT", "/api/v1/agent/bookings/"+id+"/contract/sign", map[string]any{"name": "Maya", "document_sha256": sum}), http.StatusOK)
	mustProblem(t, c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/seal", nil), http.StatusServiceUnavailable, "contract_seal_failed")
	ct := c.contractOf(t, id)
	if ct.Status != booking.ContractSealing || ct.SealAttempts != 1 || !strings.Contains(ct.SealError, "changed") || ct.SealedSHA256 != nil {
		t.Fatalf("a failed seal is not visible on the contract: %+v", ct)
	}
	mustProblem(t, c.do(t, "GET", "/api/v1/bookings/"+id+"/contract/pdf?copy=signed", nil), http.StatusConflict, "contract_not_sealed")

	if err := os.WriteFile(path, good, 0o644); err != nil {
		t.Fatal(err)
	}
	mustStatus(t, c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/seal", nil), http.StatusOK)
	ct = c.contractOf(t, id)
	if ct.Status != booking.ContractSealed || ct.SealAttempts != 2 || ct.SealError != "" {
		t.Fatalf("after the retry: %+v", ct)
	}
}

// TestContractTemplate: the chain edits its clauses; a contract rendered
// afterwards carries them, one rendered before keeps its own; bad
// templates are refused and change nothing.
func TestContractTemplate(t *testing.T) {
	env, _ := startEnv(t)
	c := newChain(t, env, "template")
	res := c.do(t, "GET", "/api/v1/booking/contract-template", nil)
	mustStatus(t, res, http.StatusOK)
	if tpl := decode[booking.ContractTemplate](t, res.Body); !tpl.IsDefault || len(tpl.Clauses) < 5 {
		t.Fatalf("default template: %+v", tpl)
	}
	before := c.contractOf(t, c.accepted(t, 4).ID.String())
	mustProblem(t, c.do(t, "PUT", "/api/v1/booking/contract-template", map[string]any{"clauses": []any{}}), http.StatusBadRequest, "invalid_contract_template")
	mustProblem(t, c.do(t, "PUT", "/api/v1/booking/contract-template", map[string]any{"clauses": []any{map[string]any{"title": "", "text": "x"}}}), http.StatusBadRequest, "invalid_request")
	if n := c.count(t, "bkg_contract_template"); n != 0 {
		t.Fatalf("refused templates wrote %d rows", n)
	}
	res = c.do(t, "PUT", "/api/v1/booking/contract-template", map[string]any{"clauses": []any{
		map[string]any{"title": "Curfew", "text": "{{artist}} ends the set by 23:00 at {{show}}."}}})
	mustStatus(t, res, http.StatusOK)
	after := c.contractOf(t, c.accepted(t, 5).ID.String())
	if after.SHA256 == before.SHA256 {
		t.Fatal("two contracts with different clauses have one digest")
	}
	if again := c.contractOf(t, before.BookingID.String()); again.SHA256 != before.SHA256 {
		t.Fatal("editing the template changed a contract already rendered")
	}
}

// TestESignProvider: the contract goes to a DocuSign-shaped provider; its
// Connect deliveries are verified over the raw body before anything is
// read (a forged or missing signature is 401 and writes nothing); a signed
// delivery records the signatures once (a redelivery is a duplicate) and
// the contract is then sealed.
func TestESignProvider(t *testing.T) {
	key := []byte("connect-hmac-key-of-the-test-account")
	fake := newFakeESign(t, key)
	mod := booking.New(booking.WithESign(fake.provider(), []byte("an-older-rotated-key"), key))
	env := apptest.Start(t, dbURL, apptest.Options{Modules: []app.Module{calendar.New(), mod}})
	c := newChain(t, env, "esign")
	fake.callback, fake.host = env.Server.URL+"/api/v1/booking/esign/connect", c.slug+".localhost"

	d := c.accepted(t, 6)
	id := d.ID.String()
	res := c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/esign", nil)
	mustStatus(t, res, http.StatusOK)
	ct := decode[booking.ContractView](t, res.Body)
	if ct.Provider != "esign" || ct.EnvelopeID == nil {
		t.Fatalf("sent contract: %+v", ct)
	}
	env1 := *ct.EnvelopeID
	if got := fake.documentSHA256(t, env1); got != ct.SHA256 {
		t.Fatalf("the provider received a document with digest %s, the contract's is %s", got, ct.SHA256)
	}
	mustProblem(t, c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/sign", map[string]any{"name": "Dana", "document_sha256": ct.SHA256}),
		http.StatusConflict, "contract_signed_by_provider")

	body := fake.message(t, env1, "envelope-completed", "promoter", "artist")
	forged := booking.ConnectSignature([]byte("not the key"), body)
	for _, sig := range []string{forged, "eA==", "!!!"} {
		r := fake.deliver(t, body, sig)
		if r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("forged signature %q answered %d", sig, r.StatusCode)
		}
	}
	tampered := fake.deliver(t, []byte(strings.Replace(string(body), "completed", "declined", 1)), booking.ConnectSignature(key, body))
	if tampered.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a body changed after signing answered %d", tampered.StatusCode)
	}
	if n := c.count(t, "bkg_signatures"); n != 0 {
		t.Fatalf("forged deliveries wrote %d signatures", n)
	}

	r := fake.deliver(t, fake.message(t, env1, "recipient-completed", "promoter"), "")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("signed delivery answered %d", r.StatusCode)
	}
	r = fake.deliver(t, body, "")
	var out booking.ConnectResult
	if r.StatusCode != http.StatusOK || decodeJSON(t, r, &out) != nil || out.Outcome != "recorded" || !out.Sealing || len(out.Signed) != 1 {
		t.Fatalf("completion delivery: %d %+v", r.StatusCode, out)
	}
	r = fake.deliver(t, body, "")
	if decodeJSON(t, r, &out) != nil || out.Outcome != "duplicate" {
		t.Fatalf("redelivery: %+v", out)
	}
	ct = c.contractOf(t, id)
	if ct.Status != booking.ContractSealing || len(ct.Signatures) != 2 || ct.Signatures[0].Via != "docusign" {
		t.Fatalf("after the provider's deliveries: %+v", ct)
	}
	mustStatus(t, c.do(t, "PUT", "/api/v1/bookings/"+id+"/contract/seal", nil), http.StatusOK)
	if ct = c.contractOf(t, id); ct.Status != booking.ContractSealed {
		t.Fatalf("not sealed: %+v", ct)
	}
}

func decodeJSON(t *testing.T, r *http.Response, v any) error {
	t.Helper()
	b := new(strings.Builder)
	if _, err := io.Copy(b, r.Body); err != nil {
		return err
	}
	return json.Unmarshal([]byte(b.String()), v)
}
