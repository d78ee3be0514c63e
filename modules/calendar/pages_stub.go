package calendar

import (
	"context"
	"html/template"

	"github.com/gin-gonic/gin"

	"marquee/tenants"
)

func parsePages() (*template.Template, error)                      { return template.New("x"), nil }
func (m *Module) venuesPage(c *gin.Context)                        {}
func (m *Module) calendarHome(c *gin.Context)                      {}
func (m *Module) calendarPage(c *gin.Context)                      {}
func (m *Module) portalCreateEvent(c *gin.Context)                 {}
func (m *Module) portalCancelEvent(c *gin.Context)                 {}
func (m *Module) portalCreateHold(c *gin.Context)                  {}
func (m *Module) portalReleaseHold(c *gin.Context)                 {}
func (m *Module) portalConfirmHold(c *gin.Context)                 {}
func (m *Module) seed(ctx context.Context, t tenants.Tenant) error { return nil }
