package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenTTL is how long a minted access token is valid. A fresh token is
// minted per request and per connection, as the reference SDK does.
const TokenTTL = 600 * time.Second

// ErrNoCredentials means a key or a secret is missing.
var ErrNoCredentials = errors.New("gateway: API key and secret are required (LIVEKIT_API_KEY, LIVEKIT_API_SECRET)")

// claims is a LiveKit access token with the inference grant.
type claims struct {
	jwt.RegisteredClaims
	Inference struct {
		Perform bool `json:"perform"`
	} `json:"inference"`
}

// Token mints an HS256 access token: iss = key, sub = identity, nbf = now,
// exp = now + TokenTTL, and the grant "inference": {"perform": true}.
func Token(key, secret, identity string, now time.Time) (string, error) {
	if key == "" || secret == "" {
		return "", ErrNoCredentials
	}
	var c claims
	c.Issuer = key
	c.Subject = identity
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(TokenTTL))
	c.Inference.Perform = true
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("gateway: sign token: %w", err)
	}
	return s, nil
}

// VerifyToken checks a token minted by Token with the given credentials
// (for the embedded gateway and tests): signature, issuer, validity window
// and the inference grant.
func VerifyToken(token, key, secret string, now time.Time) error {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(key),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired())
	if err != nil {
		return fmt.Errorf("gateway: token refused: %w", err)
	}
	if !c.Inference.Perform {
		return errors.New("gateway: token refused: no inference grant")
	}
	return nil
}
