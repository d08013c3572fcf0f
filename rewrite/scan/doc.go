// Package scan finds e-mail addresses in decoded body text (plain, HTML and
// XML, iCalendar and vCard) and replaces them in the form of the text
// around them. It is the address scanner of the rewriter and of its leak
// guard: ReplaceAddresses is its whole interface, with AddrFunc deciding
// what becomes of each address found.
//
// The scanner only finds and replaces; what an address becomes (a token,
// the original address, a leak) is the caller's decision. It imports no
// other package of the module, so it can be tested and fuzzed alone
// (FuzzReplaceAddresses checks the property the leak guard rests on).
package scan
