package terms

import (
	"math/bits"
	"strconv"
	"strings"
)

// MulDiv returns x × num / den rounded half up, for x, num ≥ 0 and den > 0,
// computed in 128 bits so the product never overflows (an amount of 10^12
// times 10^4 bps does not fit in 64). The one rounding rule of the
// settlement: every share, percentage or inclusive tax is rounded to the
// nearest minor unit, a half going up (all bases are non-negative, so this
// is also "half away from zero").
func MulDiv(x int64, num, den int64) int64 {
	if x <= 0 || num <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(x), uint64(num))
	// Add den/2 before dividing: round half up.
	var carry uint64
	lo, carry = bits.Add64(lo, uint64(den)/2, 0)
	hi += carry
	if hi >= uint64(den) {
		// The quotient would not fit in 64 bits; the validation limits
		// make this unreachable.
		panic("terms.MulDiv: overflow")
	}
	q, _ := bits.Div64(hi, lo, uint64(den))
	return int64(q)
}

// MulBps is x × bps / 10000, rounded half up.
func MulBps(x int64, bps int) int64 { return MulDiv(x, int64(bps), MaxBps) }

// exponents are the minor-unit exponents of the ISO 4217 currencies the
// platform accepts (2 unless listed otherwise).
var exponents = func() map[string]int {
	m := map[string]int{}
	for _, c := range strings.Fields(`AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN BZD
		CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF
		IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR
		MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN
		SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VES WST XCD YER ZAR ZMW ZWL`) {
		m[c] = 2
	}
	for _, c := range strings.Fields(`BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF`) {
		m[c] = 0
	}
	for _, c := range strings.Fields(`BHD IQD JOD KWD LYD OMR TND`) {
		m[c] = 3
	}
	return m
}()

// Exponent is the number of minor-unit digits of an ISO 4217 currency, and
// whether the platform knows the code.
func Exponent(currency string) (int, bool) {
	e, ok := exponents[currency]
	return e, ok
}

// Format writes an amount of minor units as a decimal with its currency,
// e.g. 1234567 USD → "12,345.67 USD".
func Format(minor int64, currency string) string {
	exp, ok := Exponent(currency)
	if !ok {
		exp = 2
	}
	neg := minor < 0
	if neg {
		minor = -minor
	}
	s := strconv.FormatInt(minor, 10)
	for len(s) <= exp {
		s = "0" + s
	}
	whole, frac := s[:len(s)-exp], s[len(s)-exp:]
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	out := b.String()
	if exp > 0 {
		out += "." + frac
	}
	if neg {
		out = "−" + out
	}
	return out + " " + currency
}
