package awsapi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrBadToken is returned by Tokens.Open for a token this installation did
// not make for this request, or one that expired. Operations answer it with
// their protocol's validation error.
var ErrBadToken = errors.New("invalid or expired nextToken")

// TokenTTL is how long a pagination token stays valid, as with AWS.
const TokenTTL = 24 * time.Hour

// maxTokenLen bounds what Open decodes; real tokens are far shorter.
const maxTokenLen = 4096

// Tokens makes the opaque nextToken values of paginated operations. A
// token seals (AES-256-GCM) a cursor — where the next page starts — with an
// expiry and a random nonce, bound to a scope naming the operation and the
// request's filters. So a token cannot be forged, read, or replayed against
// another listing, and no two tokens are ever equal: the AWS CLI aborts
// when a token repeats, and the Go SDK's paginator would loop.
type Tokens struct {
	aead cipher.AEAD
	now  func() time.Time
}

// NewTokens returns Tokens sealing with a 32-byte key.
func NewTokens(key []byte) (*Tokens, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("awsapi: token key must be 32 bytes, not %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("awsapi: token key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("awsapi: token key: %w", err)
	}
	return &Tokens{aead: aead, now: time.Now}, nil
}

// Seal returns a token carrying cursor (any JSON-marshalable value) for
// the given scope.
func (t *Tokens) Seal(scope string, cursor any) (string, error) {
	c, err := json.Marshal(cursor)
	if err != nil {
		return "", fmt.Errorf("awsapi: token cursor: %w", err)
	}
	plain := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(c)), uint64(t.now().Add(TokenTTL).Unix()))
	plain = append(plain, c...)
	nonce := make([]byte, t.aead.NonceSize(), t.aead.NonceSize()+len(plain)+t.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("awsapi: token nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(t.aead.Seal(nonce, nonce, plain, []byte(scope))), nil
}

// Open reads the cursor of a token made by Seal for the same scope into
// cursor. It returns ErrBadToken for anything else.
func (t *Tokens) Open(scope, token string, cursor any) error {
	if len(token) > maxTokenLen {
		return ErrBadToken
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	ns := t.aead.NonceSize()
	if err != nil || len(b) < ns+t.aead.Overhead() {
		return ErrBadToken
	}
	plain, err := t.aead.Open(nil, b[:ns], b[ns:], []byte(scope))
	if err != nil || len(plain) < 8 {
		return ErrBadToken
	}
	if exp := int64(binary.BigEndian.Uint64(plain)); t.now().Unix() >= exp {
		return ErrBadToken
	}
	if err := json.Unmarshal(plain[8:], cursor); err != nil {
		return ErrBadToken
	}
	return nil
}
