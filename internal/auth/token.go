package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// A login password is what `aws ecr get-login-password` and
// `drydock login-password` print and what clients send as the password of
// HTTP Basic authentication with the user name "AWS". ECR's
// GetAuthorizationToken returns it as base64("AWS:" + password), and the
// AWS CLI splits that on ':', so a password never contains one.
//
// Drydock's password is unpadded base64url (alphabet A-Z a-z 0-9 - _) of
//
//	version (1 byte) | len(key id) (1 byte) | key id | expiry (8 bytes,
//	Unix seconds, big endian) | nonce (16 bytes) | HMAC-SHA256 (32 bytes)
//
// where the HMAC covers everything before it and is keyed by a key derived
// from the access key's secret. Any replica that shares the store can check
// it, no session is kept anywhere, and disabling or deleting the access key
// revokes every password made from it.
const (
	passwordVersion = 1
	nonceLen        = 16
	macLen          = sha256.Size
	maxKeyIDLen     = 64
	// maxPasswordLen bounds what the parser decodes.
	maxPasswordLen = 4 * (2 + maxKeyIDLen + 8 + nonceLen + macLen) / 3
)

// errBadPassword is returned for any password that does not parse or
// verify; callers see it wrapped in ErrUnauthenticated.
var errBadPassword = errors.New("invalid login password")

// passwordKey derives the HMAC key for login passwords from a secret, so
// the secret itself signs nothing but SigV4 requests.
func passwordKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("drydock login password v1"))
	return m.Sum(nil)
}

// NewLoginPassword makes a login password for the access key keyID with
// the given secret, valid until expires.
func NewLoginPassword(keyID, secret string, expires time.Time) (string, error) {
	if keyID == "" || len(keyID) > maxKeyIDLen {
		return "", fmt.Errorf("auth: access key id must be 1 to %d characters", maxKeyIDLen)
	}
	if secret == "" {
		return "", errors.New("auth: empty secret")
	}
	buf := make([]byte, 0, 2+len(keyID)+8+nonceLen+macLen)
	buf = append(buf, passwordVersion, byte(len(keyID)))
	buf = append(buf, keyID...)
	buf = binary.BigEndian.AppendUint64(buf, uint64(expires.Unix()))
	var nonce [nonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return "", fmt.Errorf("auth: nonce: %w", err)
	}
	buf = append(buf, nonce[:]...)
	m := hmac.New(sha256.New, passwordKey(secret))
	m.Write(buf)
	buf = m.Sum(buf)
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

// parsedPassword is a login password split into its parts, not yet
// verified.
type parsedPassword struct {
	keyID   string
	expires time.Time
	signed  []byte // the bytes the MAC covers
	mac     []byte
}

// parsePassword splits a password without checking its MAC.
func parsePassword(pw string) (parsedPassword, error) {
	if len(pw) > maxPasswordLen {
		return parsedPassword{}, errBadPassword
	}
	// The decoder skips '\r' and '\n'; only the exact encoding is accepted.
	for i := 0; i < len(pw); i++ {
		c := pw[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return parsedPassword{}, errBadPassword
		}
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(pw)
	if err != nil || len(b) < 2 || b[0] != passwordVersion {
		return parsedPassword{}, errBadPassword
	}
	n := int(b[1])
	if n == 0 || n > maxKeyIDLen || len(b) != 2+n+8+nonceLen+macLen {
		return parsedPassword{}, errBadPassword
	}
	keyID := string(b[2 : 2+n])
	exp := int64(binary.BigEndian.Uint64(b[2+n:]))
	signedEnd := len(b) - macLen
	return parsedPassword{
		keyID:   keyID,
		expires: time.Unix(exp, 0),
		signed:  b[:signedEnd],
		mac:     b[signedEnd:],
	}, nil
}

// verify checks the MAC with the key's secret, in constant time.
func (p parsedPassword) verify(secret string) bool {
	m := hmac.New(sha256.New, passwordKey(secret))
	m.Write(p.signed)
	return hmac.Equal(m.Sum(nil), p.mac)
}

// AuthorizationToken returns what ECR's GetAuthorizationToken answers in
// authorizationData[].authorizationToken for a password:
// base64("AWS:" + password), standard alphabet, padded.
func AuthorizationToken(password string) string {
	return base64.StdEncoding.EncodeToString([]byte("AWS:" + password))
}
