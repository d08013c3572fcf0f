package policy

import "time"

// Attachments configures what becomes of attachments, per kind of content
// (rewrite.attachments; rewrite/attach applies it, inbound only).
type Attachments struct {
	Office     string `yaml:"office"`     // OOXML and OpenDocument: rewrite | strip | refuse
	Archive    string `yaml:"archive"`    // zip, gzip, tar: rewrite | strip | refuse
	Text       string `yaml:"text"`       // text files in archives: rewrite | strip | refuse
	Signed     string `yaml:"signed"`     // a signed document that would change: rewrite | strip | refuse
	PDF        string `yaml:"pdf"`        // a PDF naming a customer: strip | refuse | pass (refused as well)
	Media      string `yaml:"media"`      // images, audio, video, fonts: pass | strip | refuse
	Unreadable string `yaml:"unreadable"` // encrypted, damaged, unknown binary: pass | strip | refuse

	// QuarantineRetention is how long the originals of stripped
	// attachments are kept (<data_dir>/quarantine, sealed with the record
	// key) before the sweep deletes them.
	QuarantineRetention time.Duration `yaml:"quarantine_retention"`

	Limits AttachmentLimits `yaml:"limits"`
}

// AttachmentLimits bound the work one attachment may cause; a zip bomb
// over them is refused (552 5.3.4).
type AttachmentLimits struct {
	MaxBytes         int64 `yaml:"max_bytes"`          // larger attachments are not opened: unreadable
	MaxDepth         int   `yaml:"max_depth"`          // archives and documents nested in one another
	MaxMembers       int   `yaml:"max_members"`        // members of all archives in one attachment
	MaxExpandedBytes int64 `yaml:"max_expanded_bytes"` // decompressed bytes for one attachment
	MaxRatio         int   `yaml:"max_ratio"`          // expansion ratio, for members over 1 MiB
}

func defaultAttachments(c *Config) {
	c.Rewrite.Attachments = Attachments{
		Office: "rewrite", Archive: "rewrite", Text: "rewrite", Signed: "refuse",
		PDF: "strip", Media: "pass", Unreadable: "pass", QuarantineRetention: 30 * 24 * time.Hour,
		Limits: AttachmentLimits{MaxBytes: 16 << 20, MaxDepth: 4, MaxMembers: 2000,
			MaxExpandedBytes: 64 << 20, MaxRatio: 100},
	}
}
