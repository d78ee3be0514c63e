package bench

import (
	"marquee/modules/inventory/internal/buyers"
	"marquee/tenants"
)

// ReuseLimitsBuyers makes bench limits hold for only n buyers, each again
// and again (as the bench did before one cart per buyer), until restore.
func ReuseLimitsBuyers(n int) (restore func()) {
	fresh := mintSessions
	mintSessions = func(signer *buyers.Signer, t tenants.Tenant, count int) [][2]string {
		few := fresh(signer, t, n)
		out := make([][2]string, count)
		for i := range out {
			out[i] = few[i%n]
		}
		return out
	}
	return func() { mintSessions = fresh }
}
