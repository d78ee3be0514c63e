package app

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"marquee/policies"
	"marquee/tenants"
)

// VenueName names a venue, for pages of the core that show venue roles.
type VenueName struct {
	ID   uuid.UUID
	Name string
}

// VenueLister is what a VenueDirectory may add: the chain's venues by name.
type VenueLister interface {
	VenueNames(ctx context.Context, t tenants.Tenant) ([]VenueName, error)
}

// inviteTTL is how long an invitation link stays good.
const inviteTTL = 7 * 24 * time.Hour

// mailKindInvite is the mail kind of staff invitations.
const mailKindInvite = "core.invite"

func (a *App) registerUsersPages(r *Registrar) {
	r.Portal(http.MethodGet, "/users", Require("users", policies.Read), a.portalUsers)
	r.Portal(http.MethodPost, "/users/invite", Require("users", policies.Write), a.portalInvite)
	r.Portal(http.MethodPost, "/users/:userId/roles", Require("role_assignments", policies.Write), a.portalAssignRole)
	r.Portal(http.MethodPost, "/users/:userId/roles/remove", Require("role_assignments", policies.Write), a.portalRemoveRole)
	r.Portal(http.MethodGet, "/invite", Public(), a.portalInvitePage)
	r.Portal(http.MethodPost, "/invite", Public(), a.portalAcceptInvite)
	r.Nav("Users and roles", "/portal/users", 85, Require("users", policies.Read))
}

// unassignRole removes a role, refusing to remove the chain's last owner.
// Removals of the owner role of one chain serialise on an advisory lock and
// count the owners in the policy table itself (not an instance's cached
// copy), so two owners removing each other at once leave one.
func (a *App) unassignRole(ctx context.Context, t tenants.Tenant, asg policies.Assignment) (bool, error) {
	if asg.Role != policies.RoleOwner || asg.Venue != "" {
		return a.Enforcer.Unassign(t.Slug, asg)
	}
	var held bool
	err := a.DB.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`SELECT pg_advisory_xact_lock(hashtext(?))`, "marquee-owners:"+t.Slug).Error; err != nil {
			return err
		}
		var owners int64
		if err := tx.Raw(`SELECT count(*) FROM `+policies.RuleTable+` WHERE ptype = 'g' AND v1 = ? AND v2 = ? AND v0 LIKE ?`,
			policies.RoleOwner, policies.ChainDomain(t.Slug), "u:"+t.Slug+":%").Scan(&owners).Error; err != nil {
			return err
		}
		var mine int64
		if err := tx.Raw(`SELECT count(*) FROM `+policies.RuleTable+` WHERE ptype = 'g' AND v1 = ? AND v2 = ? AND v0 = ?`,
			policies.RoleOwner, policies.ChainDomain(t.Slug), policies.Subject(t.Slug, asg.UserID)).Scan(&mine).Error; err != nil {
			return err
		}
		if mine > 0 && owners <= 1 {
			return Conflict("last_owner", "this is the chain's last owner: make someone else owner first")
		}
		// The adapter writes on its own connection and commits before the
		// lock is released, so the next remover counts without this owner.
		var err error
		held, err = a.Enforcer.Unassign(t.Slug, asg)
		return err
	})
	return held, err
}

type userRow struct {
	User
	Roles []roleChip
}

type roleChip struct {
	Role, Label, Venue, VenueName string
}

type usersPageView struct {
	Users                []userRow
	ChainRoles           []roleOption
	VenueRoles           []roleOption
	Venues               []VenueName
	CanInvite, CanAssign bool
	CSRF                 string
	Flash, Error         string
	Invite               inviteForm
	Query                string
}

type inviteForm struct {
	Email, Name, Role, Venue string
	Field, Error             string
}

var usersFlashes = map[string]string{
	"invited":  "Invited: the invitation is on its way by e-mail. The link is good for 7 days.",
	"assigned": "Role given.",
	"removed":  "Role removed.",
}

func roleLabel(r string) string { return strings.ReplaceAll(r, "_", " ") }

type roleOption struct{ Key, Label string }

func roleOptions(roles []string) []roleOption {
	out := make([]roleOption, len(roles))
	for i, r := range roles {
		out[i] = roleOption{r, roleLabel(r)}
	}
	return out
}

func (a *App) venueNames(ctx context.Context, t tenants.Tenant) []VenueName {
	if l, ok := a.venues.(VenueLister); ok {
		if vs, err := l.VenueNames(ctx, t); err == nil {
			return vs
		}
	}
	return nil
}

// portalUsers lists the chain's staff with their chain and venue roles, an
// invitation form, and the forms to give or take back roles.
func (a *App) portalUsers(c *gin.Context) {
	ctx, t := c.Request.Context(), TenantOf(c)
	v := usersPageView{ChainRoles: roleOptions(policies.ChainRoles), VenueRoles: roleOptions(policies.VenueRoles), Venues: a.venueNames(ctx, t),
		CanInvite: a.Can(c, "users", policies.Write) && a.Can(c, "role_assignments", policies.Write),
		CanAssign: a.Can(c, "role_assignments", policies.Write), CSRF: a.CSRFToken(PrincipalOf(c).SessionID.String()),
		Flash: usersFlashes[c.Query("done")], Query: strings.TrimSpace(c.Query("q"))}
	if len(v.Query) > 100 {
		v.Query = v.Query[:100]
	}
	if key := c.Query("form"); key != "" {
		var kept usersStash
		if (&Core{a: a}).TakeForm(c, key, &kept) {
			v.Error, v.Invite = kept.Error, kept.Invite
		}
	}
	var users []User
	err := a.Tx(ctx, t, func(tx *gorm.DB) error {
		q := tx.Table("users").Select("id, email, name, created_at")
		if v.Query != "" {
			like := "%" + strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(v.Query) + "%"
			q = q.Where("email ILIKE ? OR name ILIKE ?", like, like)
		}
		return q.Order("lower(name), id").Limit(500).Scan(&users).Error
	})
	if err != nil {
		Fail(c, err)
		return
	}
	all, err := a.Enforcer.Assignments(t.Slug, "")
	if err != nil {
		Fail(c, err)
		return
	}
	venueName := map[string]string{}
	for _, vn := range v.Venues {
		venueName[vn.ID.String()] = vn.Name
	}
	byUser := map[string][]roleChip{}
	for _, as := range all {
		chip := roleChip{Role: as.Role, Label: roleLabel(as.Role), Venue: as.Venue}
		if as.Venue != "" {
			chip.VenueName = venueName[as.Venue]
			if chip.VenueName == "" {
				chip.VenueName = "a venue no longer listed"
			}
		}
		byUser[as.UserID] = append(byUser[as.UserID], chip)
	}
	for _, u := range users {
		roles := byUser[u.ID.String()]
		sort.Slice(roles, func(i, j int) bool {
			if (roles[i].Venue == "") != (roles[j].Venue == "") {
				return roles[i].Venue == ""
			}
			return roles[i].Label+roles[i].VenueName < roles[j].Label+roles[j].VenueName
		})
		v.Users = append(v.Users, userRow{User: u, Roles: roles})
	}
	content, err := RenderTemplate(coreTemplates, "users", v)
	if err != nil {
		Fail(c, err)
		return
	}
	a.RenderPortal(c, http.StatusOK, "Users and roles", content)
}

// usersStash is a refused form of the users page, kept for the page after
// the redirect.
type usersStash struct {
	Error  string
	Invite inviteForm
}

func (a *App) usersBack(c *gin.Context, s usersStash) {
	q := ""
	if key := (&Core{a: a}).StashForm(c, s); key != "" {
		q = "?form=" + key
	}
	c.Redirect(http.StatusSeeOther, "/portal/users"+q)
}

// formAssignment reads the role (and venue, for a venue role) a form asks for.
func formAssignment(userID, role, venue string) (assignmentRequest, string) {
	switch {
	case policies.IsChainRole(role):
		return assignmentRequest{UserID: userID, Role: role}, ""
	case policies.IsVenueRole(role):
		if venue == "" {
			return assignmentRequest{}, "choose the venue this role is for"
		}
		return assignmentRequest{UserID: userID, Role: role, VenueID: venue}, ""
	}
	return assignmentRequest{}, "choose a role from the list"
}

func errorText(err error) (string, bool) {
	var e *Error
	if !errors.As(err, &e) {
		return "", false
	}
	return e.Detail, true
}

// portalInvite creates a staff user with the role chosen, and mails them a
// link to choose their password.
func (a *App) portalInvite(c *gin.Context) {
	ctx, t := c.Request.Context(), TenantOf(c)
	f := inviteForm{Email: strings.TrimSpace(c.PostForm("email")), Name: strings.TrimSpace(c.PostForm("name")), Role: c.PostForm("role"), Venue: c.PostForm("venue_id")}
	refuse := func(field, msg string) {
		f.Field, f.Error = field, msg
		a.usersBack(c, usersStash{Error: "Not invited: " + msg, Invite: f})
	}
	if _, msg := formAssignment(uuid.Nil.String(), f.Role, f.Venue); msg != "" {
		refuse("role", msg)
		return
	}
	if f.Role == policies.RoleOwner && !a.isOwner(c) {
		refuse("role", "only owners make someone owner")
		return
	}
	secret := make([]byte, 24)
	_, _ = rand.Read(secret)
	u, err := a.CreateUser(ctx, t, f.Email, f.Name, base64.RawURLEncoding.EncodeToString(secret)) // nobody knows it; the link sets theirs
	if err != nil {
		msg, ok := errorText(err)
		if !ok {
			Fail(c, err)
			return
		}
		field := "email"
		if strings.Contains(msg, "name") {
			field = "name"
		}
		refuse(field, msg)
		return
	}
	req, _ := formAssignment(u.ID.String(), f.Role, f.Venue)
	asg, err := a.checkAssignment(c, req)
	if err == nil {
		err = assignmentError(a.Enforcer.Assign(t.Slug, asg))
	}
	if err != nil {
		msg, ok := errorText(err)
		if !ok {
			Fail(c, err)
			return
		}
		refuse("role", "the user was created without a role: "+msg)
		return
	}
	link, err := a.inviteLink(ctx, c, t, u.ID)
	if err != nil {
		Fail(c, err)
		return
	}
	inviter := "Your colleague"
	if me, err := a.UserByID(ctx, t, PrincipalOf(c).UserID); err == nil {
		inviter = me.Name
	}
	var id uuid.UUID
	err = a.Tx(ctx, t, func(tx *gorm.DB) error {
		var err error
		id, _, err = a.Mail.Queue(tx, MailMessage{Key: "user:" + u.ID.String() + ":invite", Kind: mailKindInvite, Ref: "user:" + u.ID.String(), To: u.Email,
			Subject: "You are invited to " + t.Name + " on Marquee",
			Body: fmt.Sprintf("Hello %s,\n\n%s invited you to %s's portal as %s.\nChoose your password here (the link is good for 7 days):\n%s\n",
				u.Name, inviter, t.Name, roleLabel(f.Role), link)})
		return err
	})
	if err != nil {
		Fail(c, err)
		return
	}
	a.Mail.Dispatch(ctx, t, id)
	c.Redirect(http.StatusSeeOther, "/portal/users?done=invited")
}

// inviteLink signs a link for a user to set their password. It carries a
// fingerprint of the password hash they have now, so it works once: the
// password set, the fingerprint no longer matches.
func (a *App) inviteLink(ctx context.Context, c *gin.Context, t tenants.Tenant, userID uuid.UUID) (string, error) {
	hash, err := a.passwordHash(ctx, t, userID)
	if err != nil {
		return "", err
	}
	exp := a.Now().Add(inviteTTL).Unix()
	q := url.Values{"u": {userID.String()}, "x": {strconv.FormatInt(exp, 10)}, "s": {a.inviteSig(t, userID, exp, hash)}}
	return a.TenantURL(c, t.Slug) + "/portal/invite?" + q.Encode(), nil
}

func (a *App) inviteSig(t tenants.Tenant, userID uuid.UUID, exp int64, hash string) string {
	m := hmac.New(sha256.New, a.signingKey("user-invite"))
	fmt.Fprintf(m, "%s\x00%s\x00%d\x00%s", t.Slug, userID, exp, hash)
	return hex.EncodeToString(m.Sum(nil))
}

func (a *App) passwordHash(ctx context.Context, t tenants.Tenant, userID uuid.UUID) (string, error) {
	var hashes []string
	err := a.Tx(ctx, t, func(tx *gorm.DB) error {
		return tx.Raw(`SELECT password_hash FROM users WHERE id = ?`, userID).Scan(&hashes).Error
	})
	if err == nil && len(hashes) == 0 {
		err = NotFound("user")
	}
	if err != nil {
		return "", err
	}
	return hashes[0], nil
}

// checkInvite verifies an invitation link's parameters.
func (a *App) checkInvite(c *gin.Context, uid, x, sig string) (User, error) {
	ctx, t := c.Request.Context(), TenantOf(c)
	bad := Gone("invite_invalid", "this invitation link is not valid any more (used, expired or altered); ask for a new one")
	id, err := uuid.Parse(uid)
	if err != nil {
		return User{}, bad
	}
	exp, err := strconv.ParseInt(x, 10, 64)
	if err != nil || a.Now().Unix() > exp {
		return User{}, bad
	}
	hash, err := a.passwordHash(ctx, t, id)
	if err != nil {
		return User{}, bad
	}
	if !hmac.Equal([]byte(a.inviteSig(t, id, exp, hash)), []byte(sig)) {
		return User{}, bad
	}
	return a.UserByID(ctx, t, id)
}

type invitePageView struct {
	User    User
	U, X, S string
	CSRF    string
	Error   string
	Invalid string
}

func (a *App) renderInvite(c *gin.Context, status int, v invitePageView) {
	v.CSRF = a.preAuthCSRF(c)
	content, err := RenderTemplate(coreTemplates, "invite", v)
	if err != nil {
		Fail(c, err)
		return
	}
	a.RenderPortal(c, status, "Choose your password", content)
}

// portalInvitePage is the invitation's first visit: choose a password.
func (a *App) portalInvitePage(c *gin.Context) {
	v := invitePageView{U: c.Query("u"), X: c.Query("x"), S: c.Query("s")}
	u, err := a.checkInvite(c, v.U, v.X, v.S)
	if err != nil {
		Fail(c, err) // the error page, in the portal's chrome, says why
		return
	}
	v.User = u
	a.renderInvite(c, http.StatusOK, v)
}

// portalAcceptInvite sets the invited user's password (the link then stops
// working) and sends them to sign in.
func (a *App) portalAcceptInvite(c *gin.Context) {
	v := invitePageView{U: c.PostForm("u"), X: c.PostForm("x"), S: c.PostForm("s")}
	u, err := a.checkInvite(c, v.U, v.X, v.S)
	if err != nil {
		Fail(c, err) // the error page, in the portal's chrome, says why
		return
	}
	v.User = u
	if !a.validPreAuthCSRF(c) {
		v.Error = "The form expired. Please try again."
		a.renderInvite(c, http.StatusForbidden, v)
		return
	}
	pw := c.PostForm("password")
	if pw != c.PostForm("password2") {
		v.Error = "The two passwords differ."
		a.renderInvite(c, http.StatusBadRequest, v)
		return
	}
	if err := validatePassword(pw); err != nil {
		msg, _ := errorText(err)
		v.Error = msg
		a.renderInvite(c, http.StatusBadRequest, v)
		return
	}
	hash, err := a.hashPassword(pw)
	if err != nil {
		Fail(c, err)
		return
	}
	old, _ := a.passwordHash(c.Request.Context(), TenantOf(c), u.ID)
	var changed int64
	err = a.Tx(c.Request.Context(), TenantOf(c), func(tx *gorm.DB) error {
		// Only over the hash the link was signed for: a link used twice at once sets one password.
		res := tx.Exec(`UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?`, hash, u.ID, old)
		changed = res.RowsAffected
		return res.Error
	})
	if err != nil {
		Fail(c, err)
		return
	}
	if changed == 0 {
		Fail(c, Gone("invite_invalid", "this invitation link was used already; sign in with the password chosen then"))
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/login?next=/portal")
}

func (a *App) portalAssignRole(c *gin.Context) {
	uid := c.Param("userId")
	req, msg := formAssignment(uid, c.PostForm("role"), c.PostForm("venue_id"))
	if msg != "" {
		a.usersBack(c, usersStash{Error: "No role given: " + msg})
		return
	}
	asg, err := a.checkAssignment(c, req)
	if err == nil {
		err = assignmentError(a.Enforcer.Assign(TenantOf(c).Slug, asg))
	}
	if err != nil {
		msg, ok := errorText(err)
		if !ok {
			Fail(c, err)
			return
		}
		a.usersBack(c, usersStash{Error: "No role given: " + msg})
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/users?done=assigned")
}

func (a *App) portalRemoveRole(c *gin.Context) {
	req := assignmentRequest{UserID: c.Param("userId"), Role: c.PostForm("role"), VenueID: c.PostForm("venue_id")}
	if !slices.Contains(policies.ChainRoles, req.Role) && !slices.Contains(policies.VenueRoles, req.Role) {
		a.usersBack(c, usersStash{Error: "Not removed: choose a role from the list"})
		return
	}
	asg, err := a.checkAssignment(c, req)
	held := false
	if err == nil {
		held, err = a.unassignRole(c.Request.Context(), TenantOf(c), asg)
		err = assignmentError(err)
	}
	if err == nil && !held {
		err = NotFound("role assignment")
	}
	if err != nil {
		msg, ok := errorText(err)
		if !ok {
			Fail(c, err)
			return
		}
		a.usersBack(c, usersStash{Error: "Not removed: " + msg})
		return
	}
	c.Redirect(http.StatusSeeOther, "/portal/users?done=removed")
}
