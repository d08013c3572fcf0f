package attach

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"path"
	"strings"
	"sync"
)

// Thumbnails: a package may carry a picture of its first page (OOXML
// docProps/thumbnail.*, ECMA-376 part 2 section 11.3.4; ODF
// Thumbnails/thumbnail.png, ODF 1.2 part 3 section 3.10). Once the text
// changed, that picture still shows the addresses as they were, in pixels
// no scanner reads: a rewritten document gets a blank one of the same
// format instead. Formats with no encoder here (WMF, EMF) are kept.
func isThumbnail(name string) bool {
	return strings.HasPrefix(name, "docProps/thumbnail.") || strings.HasPrefix(name, "Thumbnails/thumbnail.")
}

var (
	blankOnce sync.Once
	blankPNG  []byte
	blankJPEG []byte
)

// blankThumbnail returns a blank picture in the format the name says, or
// nil for a format it cannot write.
func blankThumbnail(name string) []byte {
	blankOnce.Do(func() {
		img := image.NewGray(image.Rect(0, 0, 1, 1))
		img.SetGray(0, 0, color.Gray{Y: 0xff})
		var b bytes.Buffer
		png.Encode(&b, img)
		blankPNG = bytes.Clone(b.Bytes())
		b.Reset()
		jpeg.Encode(&b, img, nil)
		blankJPEG = bytes.Clone(b.Bytes())
	})
	switch strings.ToLower(path.Ext(name)) {
	case ".png":
		return blankPNG
	case ".jpeg", ".jpg":
		return blankJPEG
	}
	return nil
}
