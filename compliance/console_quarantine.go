package compliance

import (
	"context"
	"errors"
	"net/http"

	"github.com/tokenproxy/tokenproxy/quarantine"
)

// This file is what the console's Quarantine page uses of the service:
// the API's own audited operations (quarantine.go), exported, so that the
// browser and the API list, export and delete alike and are audited
// alike (quarantine.list, quarantine.export, quarantine.delete).

// QuarantineItem describes one kept original: reference, kind, file name
// as the CRM saw it (tokenized), size and time; never its content.
type QuarantineItem = quarantine.Item

// QuarantineList lists the kept originals, oldest first (audited
// quarantine.list).
func (c *Service) QuarantineList(ctx context.Context) ([]QuarantineItem, error) {
	return c.quarantineList(ctx)
}

// QuarantineExport returns one original with its description (officer,
// with a reason; audited quarantine.export before the content leaves).
func (c *Service) QuarantineExport(ctx context.Context, ref, reason string) (QuarantineItem, []byte, error) {
	return c.quarantineExport(ctx, ref, reason)
}

// QuarantineDelete deletes one original (officer, with a reason; audited
// quarantine.delete before it goes).
func (c *Service) QuarantineDelete(ctx context.Context, ref, reason string) error {
	return c.quarantineDelete(ctx, ref, reason)
}

// ValidQuarantineRef says whether ref has the form of a quarantine
// reference (what the console may put back into a page or a link).
func ValidQuarantineRef(ref string) bool { return quarantine.ValidRef(ref) }

// QuarantineErrorStatus is the API's status and text for a quarantine
// operation's error (quarantineFail): the quarantine's own refusals, then
// as ErrorStatus.
func QuarantineErrorStatus(err error) (code int, msg string) {
	switch {
	case errors.Is(err, errNoQuarantine):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, errNotFound):
		return http.StatusNotFound, "no such quarantined attachment"
	}
	return ErrorStatus(err)
}
