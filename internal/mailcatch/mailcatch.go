// Package mailcatch is a local SMTP server that keeps what it is sent, for
// the demo and for tests: the app sends real SMTP (go-mail) to it, and a
// test reads the messages back, parsed, attachments and all. Recipients at
// bounce.invalid are refused for good (550) and those at tempfail.invalid
// for now (451), so both failure paths can be driven.
package mailcatch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Message is one received message.
type Message struct {
	From        string
	To          []string
	Subject     string
	MessageID   string
	Header      mail.Header
	Text        string
	HTML        string
	Attachments []Attachment
	Raw         []byte
	At          time.Time
}

// Attachment is a file part of a message.
type Attachment struct {
	Name        string
	ContentType string
	Data        []byte
}

// Server is a running catcher.
type Server struct {
	srv      *smtp.Server
	ln       net.Listener
	mu       sync.Mutex
	messages []Message
	notify   chan struct{}
	// Refused counts refused recipients (bounce and tempfail).
	refused int
}

// Start listens on addr ("127.0.0.1:0" for any free port) and serves.
func Start(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, notify: make(chan struct{}, 1)}
	s.srv = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &session{s: s}, nil }))
	s.srv.Domain = "mailcatch.localhost"
	s.srv.AllowInsecureAuth = true
	s.srv.MaxMessageBytes = 50 << 20
	s.srv.ReadTimeout, s.srv.WriteTimeout = time.Minute, time.Minute
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Addr is the host:port it listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the MARQUEE_SMTP_URL that reaches it.
func (s *Server) URL() string { return "smtp://" + s.Addr() + "?tls=none" }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// Messages returns a copy of what arrived, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Count is how many messages arrived.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.messages)
}

// Refused is how many recipients were refused.
func (s *Server) Refused() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused
}

// To returns the messages sent to addr.
func (s *Server) To(addr string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		for _, to := range m.To {
			if strings.EqualFold(to, addr) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Arrived is signalled (without blocking) on each message.
func (s *Server) Arrived() <-chan struct{} { return s.notify }

func (s *Server) add(m Message) {
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

type session struct {
	s    *Server
	from string
	to   []string
}

func (x *session) Reset()        { x.from, x.to = "", nil }
func (x *session) Logout() error { return nil }

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	domain := strings.ToLower(to[strings.LastIndexByte(to, '@')+1:])
	switch domain {
	case "bounce.invalid":
		x.s.mu.Lock()
		x.s.refused++
		x.s.mu.Unlock()
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	case "tempfail.invalid":
		x.s.mu.Lock()
		x.s.refused++
		x.s.mu.Unlock()
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m, err := Parse(raw)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "message not understood: " + err.Error()}
	}
	m.From, m.To, m.At = x.from, append([]string(nil), x.to...), time.Now()
	x.s.add(m)
	return nil
}

// Parse reads a MIME message: its text and HTML bodies and its attachments.
func Parse(raw []byte) (Message, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return Message{}, err
	}
	dec := new(mime.WordDecoder)
	subject, err := dec.DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	m := Message{Header: msg.Header, Subject: subject, MessageID: strings.Trim(msg.Header.Get("Message-Id"), "<>"), Raw: raw}
	if err := walk(&m, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body); err != nil {
		return Message{}, err
	}
	return m, nil
}

func walk(m *Message, contentType, encoding, disposition string, body io.Reader) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walk(m, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Disposition"), p); err != nil {
				return err
			}
		}
	}
	data, err := decode(encoding, body)
	if err != nil {
		return err
	}
	disp, dparams, _ := mime.ParseMediaType(disposition)
	name := dparams["filename"]
	if name == "" {
		name = params["name"]
	}
	switch {
	case disp == "attachment" || name != "":
		m.Attachments = append(m.Attachments, Attachment{Name: name, ContentType: mt, Data: data})
	case mt == "text/html":
		m.HTML = string(data)
	case mt == "text/plain":
		m.Text = string(data)
	}
	return nil
}

func decode(encoding string, r io.Reader) ([]byte, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		return io.ReadAll(newBase64Reader(r))
	case "quoted-printable":
		return io.ReadAll(newQPReader(r))
	case "", "7bit", "8bit", "binary":
		return io.ReadAll(r)
	}
	return nil, fmt.Errorf("unknown transfer encoding %q", encoding)
}
