// Package safeio is the project's one way to write a file atomically (after
// chasquid's safeio): the content goes to a temporary file in the target's
// directory, which is given its mode, filled, fsynced, closed and renamed
// over the target, and the directory is fsynced so the rename survives a
// crash. A reader or a crash sees the old file or the new one, never half
// of one; on any failure the temporary file is removed and the target is
// left as it was.
//
// tokenize's store keeps its own routine for now (to be merged), and
// deploy/package is a module of its own.
package safeio
