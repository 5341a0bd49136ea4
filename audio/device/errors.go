package device

import "errors"

var errMono = errors.New("capture delivers mono only")
