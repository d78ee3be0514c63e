// Package policies holds the Casbin model, the default role permissions of
// every chain, and the enforcer shared by all requests of a process.
package policies

import (
	_ "embed"
	"fmt"
	"slices"
	"strings"
)

//go:embed model.conf
var modelText string

// Chain-wide roles cover every venue of their chain.
const (
	RoleOwner      = "owner"
	RoleChainAdmin = "chain_admin"
	RoleFinance    = "finance"
	RolePromoter   = "promoter"
	// RoleStaffMember is a person on the chain's rota (crew, security, bar):
	// chain-wide because their shifts may be at any venue, and granted
	// nothing but the portal: their own schedule is theirs by who they are
	// (staffing matches the signed-in user to their staff record), not by a
	// permission over others' data.
	RoleStaffMember = "staff_member"
)

// Venue-level roles grant nothing outside the venue they were given at.
const (
	RoleVenueManager = "venue_manager"
	RoleBoxOffice    = "box_office"
	RoleOpsLead      = "ops_lead"
	RoleSecurityLead = "security_lead"
	RoleDoorStaff    = "door_staff"
)

// RoleSupport is what platform support staff act as during an audited visit.
const RoleSupport = "support"

// ChainRoles and VenueRoles list the assignable roles.
var (
	ChainRoles = []string{RoleOwner, RoleChainAdmin, RoleFinance, RolePromoter, RoleStaffMember}
	VenueRoles = []string{RoleVenueManager, RoleBoxOffice, RoleOpsLead, RoleSecurityLead, RoleDoorStaff}
)

// IsChainRole reports whether role is granted chain-wide.
func IsChainRole(role string) bool { return slices.Contains(ChainRoles, role) }

// IsVenueRole reports whether role is granted per venue.
func IsVenueRole(role string) bool { return slices.Contains(VenueRoles, role) }

// Actions used by permissions.
const (
	Read  = "read"
	Write = "write"
)

// Grant is one default permission of a role: it may do Action on Object.
type Grant struct {
	Role, Object, Action string
}

// CoreGrants are the defaults for the objects the core owns. Modules add
// theirs when they register.
func CoreGrants() []Grant {
	var g []Grant
	add := func(object, action string, roles ...string) {
		for _, r := range roles {
			g = append(g, Grant{Role: r, Object: object, Action: action})
		}
	}
	everyone := append(append([]string{}, ChainRoles[1:]...), VenueRoles...)
	everyone = append(everyone, RoleSupport)
	g = append(g, Grant{Role: RoleOwner, Object: "*", Action: "*"})
	add("portal", Read, everyone...)
	add("role_assignments", Read, RoleChainAdmin, RoleSupport)
	add("role_assignments", Write, RoleChainAdmin)
	add("users", Read, RoleChainAdmin, RoleSupport)
	// Support may fix accounts during a visit; every change is in the access log.
	add("users", Write, RoleChainAdmin, RoleSupport)
	add("ledger", Read, RoleFinance)
	// The chain's outgoing mail and its delivery status (control migration
	// 00180 gives chains that exist already the same).
	add("mail", Read, RoleChainAdmin, RoleSupport)
	add("mail", Write, RoleChainAdmin, RoleSupport)
	return g
}

// renamedObjects maps each permission object that control migration 00070
// moved into its module's namespace to its old name. While a release rolls
// out, instances of the release before it authorize by the old names only,
// and may still write rules under them (defaults of a tenant they
// provision); 00070 copied the rules that existed then. So until the
// contract step (migrations/contract/control/00901) ships, this release
// writes default grants under both names and, when a namespaced object is
// denied, asks again under its old name. Empty this map in the release that
// ships the contract step.
var renamedObjects = map[string]string{
	"calendar.venues":     "venues",
	"calendar.events":     "events",
	"calendar.holds":      "holds",
	"inventory.catalogue": "inventory",
	"inventory.orders":    "orders",
}

// Subject names a tenant user in policies.
func Subject(tenant, userID string) string { return "u:" + tenant + ":" + userID }

// ChainDomain is the domain of chain-wide grants and chain-level requests.
func ChainDomain(tenant string) string { return tenant + "/*" }

// VenueDomain is the domain of one venue.
func VenueDomain(tenant, venueID string) string { return tenant + "/" + venueID }

// Assignment is one role held by a user, chain-wide (Venue empty) or at one venue.
type Assignment struct {
	UserID string `json:"user_id"`
	Role   string `json:"role"`
	Venue  string `json:"venue_id,omitempty"`
}

// domainFor returns the domain of an assignment, refusing roles given at the
// wrong level.
func domainFor(tenant string, a Assignment) (string, error) {
	switch {
	case IsChainRole(a.Role) && a.Venue == "":
		return ChainDomain(tenant), nil
	case IsVenueRole(a.Role) && a.Venue != "" && !strings.ContainsAny(a.Venue, "/*"):
		return VenueDomain(tenant, a.Venue), nil
	case IsChainRole(a.Role):
		return "", fmt.Errorf("role %s is chain-wide and takes no venue", a.Role)
	case IsVenueRole(a.Role):
		return "", fmt.Errorf("role %s needs a venue", a.Role)
	}
	return "", fmt.Errorf("unknown role %q", a.Role)
}
