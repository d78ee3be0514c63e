package app

import (
	"net/http"
	"regexp"
	"strings"

	"github.com/gin-gonic/gin"
)

var ginParam = regexp.MustCompile(`[:*]([A-Za-z_][A-Za-z0-9_]*)`)

// openAPI serves an OpenAPI 3.1 document built from the registered API
// routes, so it cannot drift from what the router serves.
func (a *App) openAPI(c *gin.Context) {
	paths := map[string]map[string]any{}
	for _, rt := range a.routes {
		if rt.Surface != SurfaceAPI {
			continue
		}
		path := ginParam.ReplaceAllString(strings.TrimPrefix(rt.Path, SurfaceAPI.prefix()), "{$1}")
		op := map[string]any{
			"summary":      rt.Summary,
			"tags":         []string{rt.Module},
			"x-permission": rt.Perm.String(),
			"responses": map[string]any{
				"default": map[string]any{"description": "Error", "content": map[string]any{
					ProblemContentType: map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}},
			},
		}
		var params []map[string]any
		for _, m := range ginParam.FindAllStringSubmatch(rt.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.Perm.Kind != PermPublic {
			op["security"] = []map[string][]string{{"bearer": {}}}
		}
		if paths[path] == nil {
			paths[path] = map[string]any{}
		}
		paths[path][strings.ToLower(rt.Method)] = op
	}
	// Documented platform routes (those with a summary) live on the base
	// host, not under /api/v1: their path item names its own server. One
	// takes the place of a chain route at the same relative path (the
	// deprecated per-chain Stripe webhook): a path item has one server list,
	// and the document points clients at the successor.
	for _, rt := range a.routes {
		if rt.Surface != SurfacePlatform || rt.Summary == "" {
			continue
		}
		item := map[string]any{"servers": []gin.H{{"url": "/", "description": "the platform's base host (" + a.Config.BaseDomain + "), not a chain's"}}}
		if prev := paths[rt.Path]; prev != nil && prev["servers"] != nil {
			item = prev
		}
		item[strings.ToLower(rt.Method)] = map[string]any{
			"summary":      rt.Summary,
			"tags":         []string{rt.Module},
			"x-permission": rt.Perm.String(),
			"responses": map[string]any{
				"default": map[string]any{"description": "Error", "content": map[string]any{
					ProblemContentType: map[string]any{"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}}},
			},
		}
		paths[rt.Path] = item
	}
	c.JSON(http.StatusOK, gin.H{
		"openapi": "3.1.0",
		"info":    gin.H{"title": "Marquee API", "version": "1"},
		"servers": []gin.H{{"url": "/api/v1"}},
		"paths":   paths,
		"components": gin.H{
			"securitySchemes": gin.H{"bearer": gin.H{"type": "http", "scheme": "bearer"}},
			"schemas": gin.H{"Problem": gin.H{"type": "object", "required": []string{"type", "title", "status", "code", "detail"},
				"properties": gin.H{"type": gin.H{"type": "string"}, "title": gin.H{"type": "string"}, "status": gin.H{"type": "integer"},
					"code": gin.H{"type": "string"}, "detail": gin.H{"type": "string"}, "request_id": gin.H{"type": "string"}}}},
		},
	})
}
