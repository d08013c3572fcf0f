package smtp

import (
	"errors"

	"github.com/emersion/go-sasl"
)

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login): the client sends the user name, then the
// password, each in answer to a fixed challenge. go-sasl only has the
// client side. Outlook and many CRMs' SMTP connectors still use it.
type loginServer struct {
	check func(user, password string) error
	user  string
	step  int
}

func newLoginServer(check func(user, password string) error) sasl.Server {
	return &loginServer{check: check}
}

var errLoginExpected = errors.New("sasl login: unexpected response")

func (l *loginServer) Next(response []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		l.step++
		if response != nil {
			// An initial response carries the user name (RFC 4954 §4).
			l.user = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check(l.user, string(response))
	default:
		return nil, false, errLoginExpected
	}
}
