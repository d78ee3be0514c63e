package tenants_test

import (
	"testing"

	"marquee/app/apptest"
)

// redisDB is this package's Redis database (see apptest).
const redisDB = 2

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "tenants", redisDB, &dbURL) }
