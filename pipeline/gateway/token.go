package gateway

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/livekit/protocol/auth"

	"github.com/voicetui/voicetui/pipeline/wire"
)

// TokenTTL is how long a minted access token is valid. A fresh token is
// minted per request and per connection, as the reference SDK does.
const TokenTTL = 600 * time.Second

// ErrNoCredentials means a key or a secret is missing.
var ErrNoCredentials = errors.New("gateway: API key and secret are required (LIVEKIT_API_KEY, LIVEKIT_API_SECRET)")

// claims is a LiveKit access token: the registered JWT claims and
// livekit/protocol's grants, as auth.AccessToken signs them. auth's own
// minter reads the clock itself; this one takes now, so that tests can
// mint tokens that are expired or not yet valid.
type claims struct {
	jwt.RegisteredClaims
	auth.ClaimGrants
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
	c.Inference = &auth.InferenceGrant{Perform: true}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
	if err != nil {
		return "", fmt.Errorf("gateway: sign token: %w", err)
	}
	return s, nil
}

// VerifyToken checks a token with the given credentials as a strict
// gateway would (for the embedded gateway and tests): the payload's claim
// names exactly as documented (a JSON decoder alone would take
// "Inference" for "inference"), the signature, issuer, validity window and
// the inference grant.
func VerifyToken(token, key, secret string, now time.Time) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return errors.New("gateway: token refused: not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return errors.New("gateway: token refused: payload is not base64url")
	}
	if err := wire.Check(wire.AccessToken, payload); err != nil {
		var we *wire.Error
		if errors.As(err, &we) {
			return fmt.Errorf("gateway: token refused: %s", we.Message)
		}
		return fmt.Errorf("gateway: token refused: %w", err)
	}
	var c claims
	_, err = jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return []byte(secret), nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(key),
		jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithExpirationRequired())
	if err != nil {
		return fmt.Errorf("gateway: token refused: %w", err)
	}
	if c.Inference == nil || !c.Inference.Perform {
		return errors.New("gateway: token refused: no inference grant")
	}
	return nil
}
