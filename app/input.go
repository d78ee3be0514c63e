package app

import (
	"errors"
	"io"
	"mime"
	"net/http"

	"github.com/gin-gonic/gin"
)

// maxFormMemory is what a multipart form may hold in memory; the body limit
// applies first.
const maxFormMemory = 1 << 20

// guardInput runs before every route's handlers and refuses, in one place:
// a body on a route that takes none, or one declared larger than the limit
// (neither is read); and text that PostgreSQL cannot store (a NUL character
// or invalid UTF-8) in path parameters, the query string and form posts.
// JSON bodies are checked by DecodeJSON, through which every JSON route
// decodes.
func (a *App) guardInput(rt Route) gin.HandlerFunc {
	return func(c *gin.Context) {
		if err := a.checkBodySize(c, rt.NoBody); err != nil {
			Fail(c, err)
			return
		}
		if err := checkRequestText(c); err != nil {
			Fail(c, err)
			return
		}
		c.Next()
	}
}

func (a *App) checkBodySize(c *gin.Context, noBody bool) error {
	r := c.Request
	if r.ContentLength > a.Config.MaxBodyBytes {
		return PayloadTooLarge("request body exceeds %d bytes", a.Config.MaxBodyBytes)
	}
	if !noBody {
		return nil
	}
	if r.ContentLength == -1 && r.Body != nil && r.Body != http.NoBody {
		// A body of unknown length (chunked): one byte tells.
		var one [1]byte
		if n, _ := io.ReadFull(r.Body, one[:]); n == 0 {
			return nil
		}
	} else if r.ContentLength <= 0 {
		return nil
	}
	return Invalid("body_not_allowed", "%s %s takes no request body", r.Method, c.FullPath())
}

func checkRequestText(c *gin.Context) error {
	for _, p := range c.Params {
		if !textOK(p.Value) {
			return invalidText("path parameter " + p.Key)
		}
	}
	if err := checkValues("query parameter", c.Request.URL.Query()); err != nil {
		return err
	}
	mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type"))
	switch mt {
	case "application/x-www-form-urlencoded":
		if err := c.Request.ParseForm(); err != nil {
			return formProblem(err)
		}
		return checkValues("form field", c.Request.PostForm)
	case "multipart/form-data":
		if err := c.Request.ParseMultipartForm(maxFormMemory); err != nil {
			return formProblem(err)
		}
		return checkValues("form field", c.Request.MultipartForm.Value)
	}
	return nil
}

func checkValues(kind string, values map[string][]string) error {
	for k, vs := range values {
		if !textOK(k) {
			return invalidText(kind + " " + printableName(k))
		}
		for _, v := range vs {
			if !textOK(v) {
				return invalidText(kind + " " + k)
			}
		}
	}
	return nil
}

func formProblem(err error) *Error {
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return jsonProblem(err)
	}
	return Invalid("invalid_form", "the form could not be read: %v", err)
}
