package mailcatch

import (
	"encoding/base64"
	"io"
	"mime/quotedprintable"
	"strings"
)

func newBase64Reader(r io.Reader) io.Reader {
	// Line breaks between base64 lines are not part of the data.
	return base64.NewDecoder(base64.StdEncoding, &skipSpace{r: r})
}

func newQPReader(r io.Reader) io.Reader { return quotedprintable.NewReader(r) }

type skipSpace struct{ r io.Reader }

func (s *skipSpace) Read(p []byte) (int, error) {
	for {
		n, err := s.r.Read(p)
		k := 0
		for _, b := range p[:n] {
			if !strings.ContainsRune(" \r\n\t", rune(b)) {
				p[k] = b
				k++
			}
		}
		if k > 0 || err != nil {
			return k, err
		}
	}
}
