package tenants_test

import (
	"testing"

	"marquee/app/apptest"
)

var dbURL string

func TestMain(m *testing.M) { apptest.Main(m, "tenants", &dbURL) }
