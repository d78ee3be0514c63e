package delivery

import (
	"bytes"
	"html/template"

	"github.com/google/uuid"

	"marquee/tenants"
)

var mailTemplate = template.Must(template.New("mail").Parse(`<!doctype html><html><body style="font-family:Helvetica,Arial,sans-serif;color:#141428">
<h2 style="margin:0 0 4px">{{.Event.Title}}</h2>
<p style="margin:0 0 16px;color:#555">{{.Event.Venue}} · {{.Event.Local}}</p>
<p>Hello {{.Name}}, your tickets are attached as one PDF. You can also keep each ticket in your phone's wallet:</p>
<table cellpadding="6" style="border-collapse:collapse">{{range .Tickets}}<tr style="border-top:1px solid #ddd">
<td><strong>{{.Zone}}</strong><br><span style="color:#555">{{.Seat}} · {{.Tier}}</span></td>
<td>{{if .Apple}}<a href="{{.Apple}}">Add to Apple Wallet</a>{{end}}</td>
<td>{{if .Google}}<a href="{{.Google}}">Add to Google Wallet</a>{{end}}</td></tr>{{end}}</table>
<p><a href="{{.OrderURL}}">Your order page</a> shows your tickets and can send this mail again.</p>
<p style="color:#777;font-size:12px">{{.Terms}}</p></body></html>`))

type mailTicket struct {
	Zone, Seat, Tier, Apple, Google string
}

func (s *Service) mailHTML(t tenants.Tenant, base string, o Order, google func(uuid.UUID) string) (string, error) {
	v := struct {
		Event    Event
		Name     string
		Tickets  []mailTicket
		OrderURL string
		Terms    string
	}{Event: o.Event, Name: o.Name, OrderURL: base + s.Links.OrderPath(t, o.ID), Terms: Terms}
	for _, tk := range o.Tickets {
		if tk.Status != "valid" {
			continue
		}
		apple, _ := s.TicketLinks(t, base, tk.ID)
		v.Tickets = append(v.Tickets, mailTicket{Zone: tk.Zone, Seat: SeatInWords(tk.Seat), Tier: tk.Tier, Apple: apple, Google: google(tk.ID)})
	}
	var buf bytes.Buffer
	err := mailTemplate.Execute(&buf, v)
	return buf.String(), err
}
