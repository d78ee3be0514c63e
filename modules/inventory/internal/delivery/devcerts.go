package delivery

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// DevCredentials are throwaway wallet signing credentials: a root standing
// in for Apple's, a WWDR intermediate under it, a pass certificate under
// that, and a Google service-account RSA key, written as PEM files. The
// demo makes them at start; tests sign with them and verify against Root.
type DevCredentials struct {
	CertFile, KeyFile, WWDRFile, GoogleKeyFile string
	Root                                       *x509.Certificate
	GoogleKey                                  *rsa.PrivateKey
}

// NewDevCredentials writes fresh credentials into dir.
func NewDevCredentials(dir, passTypeID, teamID string) (DevCredentials, error) {
	var d DevCredentials
	now := time.Now()
	newKey := func() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
	rootKey, err := newKey()
	if err != nil {
		return d, err
	}
	tmpl := func(cn string, ca bool, serial int64) *x509.Certificate {
		c := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: cn, OrganizationalUnit: []string{teamID}},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(365 * 24 * time.Hour), BasicConstraintsValid: true, IsCA: ca}
		if ca {
			c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
		} else {
			c.KeyUsage = x509.KeyUsageDigitalSignature
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
		}
		return c
	}
	rootT := tmpl("Development Root CA (not Apple)", true, 1)
	rootDER, err := x509.CreateCertificate(rand.Reader, rootT, rootT, &rootKey.PublicKey, rootKey)
	if err != nil {
		return d, err
	}
	if d.Root, err = x509.ParseCertificate(rootDER); err != nil {
		return d, err
	}
	wwdrKey, err := newKey()
	if err != nil {
		return d, err
	}
	wwdrDER, err := x509.CreateCertificate(rand.Reader, tmpl("Development WWDR (not Apple)", true, 2), d.Root, &wwdrKey.PublicKey, rootKey)
	if err != nil {
		return d, err
	}
	wwdr, err := x509.ParseCertificate(wwdrDER)
	if err != nil {
		return d, err
	}
	passKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return d, err
	}
	passDER, err := x509.CreateCertificate(rand.Reader, tmpl("Pass Type ID: "+passTypeID, false, 3), wwdr, &passKey.PublicKey, wwdrKey)
	if err != nil {
		return d, err
	}
	if d.GoogleKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return d, err
	}
	passKeyDER, err := x509.MarshalPKCS8PrivateKey(passKey)
	if err != nil {
		return d, err
	}
	googleDER, err := x509.MarshalPKCS8PrivateKey(d.GoogleKey)
	if err != nil {
		return d, err
	}
	d.CertFile, d.KeyFile = filepath.Join(dir, "pass-cert.pem"), filepath.Join(dir, "pass-key.pem")
	d.WWDRFile, d.GoogleKeyFile = filepath.Join(dir, "wwdr.pem"), filepath.Join(dir, "google-key.pem")
	for _, f := range []struct {
		path, kind string
		der        []byte
	}{{d.CertFile, "CERTIFICATE", passDER}, {d.KeyFile, "PRIVATE KEY", passKeyDER}, {d.WWDRFile, "CERTIFICATE", wwdrDER}, {d.GoogleKeyFile, "PRIVATE KEY", googleDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der}), 0o600); err != nil {
			return d, err
		}
	}
	return d, nil
}
