// Package compliance holds the audited compliance operations on the token
// map.
package compliance
